#!/usr/bin/env bash
# Install the Debian packages the tests run for real, then check that each tool can do what the
# tests and the lab ask of it:
#   Postfix and Dovecot (the lab runs them; `postconf -d` and `doveconf -d` check every setting
#   the course shows), iproute2 (the native lab's namespaces), Podman with its network's
#   firewall tools and debootstrap (the lab's containers and their base image), swaks with
#   Net::SSLeay and openssl (third-party clients that speak STARTTLS and implicit TLS), and
#   Chromium with a font (the browser tests).
# Only as root; otherwise it says what is missing and leaves it to the tests to skip (or, with
# CI=true, to fail). Services are not started: the packages' own start-up is held back with
# policy-rc.d while installing (an existing policy-rc.d is left as it is), and Postfix is
# installed as "No configuration".
# Exit status: 0 when every tool works (or, without root, when nothing could be done), 1 with one
# line per tool that does not.
set -euo pipefail

packages=(
  postfix dovecot-core dovecot-imapd dovecot-lmtpd iproute2   # the lab's native backend
  podman netavark aardvark-dns iptables nftables runc         # the lab's containers backend:
  debootstrap                                                 #   netavark uses iptables on Debian 12,
                                                              #   nft on 13; debootstrap: base image
  openssl swaks libnet-ssleay-perl                            # third-party clients in the tests
  chromium fonts-dejavu-core                                  # the browser tests
)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  if [ ${#missing[@]} -gt 0 ]; then
    echo "Not installing Debian packages (needs root on Debian/Ubuntu): ${missing[*]}" >&2
    echo "Tests that need them will be skipped (with CI=true they fail)." >&2
  fi
  exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  policy=/usr/sbin/policy-rc.d
  created_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    created_policy=yes
  fi
  cleanup() {
    if [ "$created_policy" = yes ]; then rm -f "$policy"; fi
  }
  trap cleanup EXIT

  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "Installed: ${missing[*]}"
fi

# What each tool must be able to do: check WHAT PACKAGE [--prints TEXT] COMMAND...
# A failure is one line naming the tool, the package and what the command said.
failed=0
check() {
  local what=$1 package=$2 text=""
  shift 2
  if [ "$1" = --prints ]; then text=$2; shift 2; fi
  local output reason=""
  if ! output=$("$@" 2>&1); then
    reason="exit status $?: $(tail -n 1 <<<"$output")"
  elif [ -n "$text" ] && ! grep -qF -- "$text" <<<"$output"; then
    reason="it does not print '$text'"
  fi
  if [ -n "$reason" ]; then
    echo "Debian packages: $what does not work (package $package): \`$*\`: $reason" >&2
    failed=1
  fi
}

check "Postfix" postfix --prints . postconf -d -h mail_version
check "Postfix's control program" postfix test -x /usr/sbin/postfix
check "Dovecot" dovecot-core --prints ssl_min_protocol doveconf -d
check "Dovecot's IMAP server" dovecot-imapd test -x /usr/lib/dovecot/imap
check "Dovecot's LMTP server" dovecot-lmtpd test -x /usr/lib/dovecot/lmtp
check "network namespaces" iproute2 ip netns list
check "Podman" podman --prints netavark podman info --format '{{.Host.NetworkBackend}}'
check "runc" runc runc --version
check "iptables (netavark's firewall on Debian 12)" iptables iptables --version
check "nft (netavark's firewall on Debian 13)" nftables nft --version
check "debootstrap" debootstrap test -x /usr/sbin/debootstrap
check "openssl" openssl openssl version
check "swaks with TLS" libnet-ssleay-perl --prints "TLS supported" swaks --support
check "swaks with AUTH" swaks --prints "Basic AUTH supported" swaks --support
check "Chromium" chromium --prints Chromium chromium --version
check "a font for Chromium" fonts-dejavu-core test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "Debian packages: every tool the tests use works (Postfix $(postconf -d -h mail_version), Dovecot $(dovecot --version | cut -d' ' -f1))"
