#!/usr/bin/env bash
# Install the Debian packages the tests run for real: Postfix and Dovecot (the lab runs them,
# and their `postconf -d` and `doveconf -d` check every setting the course shows), Podman and
# debootstrap (the lab's containers and their base image), swaks and openssl (third-party
# clients), and Chromium with a font (the browser tests).
# Only as root; otherwise it says what is missing and leaves it to the tests to skip (or, with
# CI=true, to fail). Services are not started: the packages' own start-up is held back with
# policy-rc.d while installing, and Postfix is installed as "No configuration".
set -euo pipefail

packages=(
  postfix dovecot-core dovecot-imapd dovecot-lmtpd iproute2   # the lab's native backend
  podman netavark aardvark-dns iptables runc debootstrap      # the lab's containers backend
  openssl swaks                                               # third-party clients in the tests
  chromium fonts-dejavu-core                                  # the browser tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "Not installing Debian packages (needs root on Debian/Ubuntu): ${missing[*]}" >&2
  echo "Tests that need them will be skipped (with CI=true they fail)." >&2
  exit 0
fi

echo "Installing Debian packages: ${missing[*]}"
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  created_policy=yes
fi
cleanup() { [ "$created_policy" = yes ] && rm -f "$policy"; }
trap cleanup EXIT

echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "Installed: ${missing[*]}"
