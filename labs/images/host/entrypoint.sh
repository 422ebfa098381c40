#!/bin/sh
# A lab host in its container. The host's files (labs/hosts/HOST/) are mounted read-only at
# /etc/mailtls-config; the lab's generated files (CA, certificates, users, mailboxes) at
# /run/mailtls.
#   serve     install the files, check them, start Dovecot if the host has a dovecot.conf,
#             and run Postfix in the foreground
#   reload    install the files again, check them, and reload Postfix and Dovecot
#   wiretap   run the wiretap (mitm.lab.test) in the mode written in /run/mailtls/wiretap.mode, read at each connection
set -eu
config=/etc/mailtls-config

install_files() {
  # Check a copy first: a file Postfix or Dovecot refuses is reported as they wrote it, and the
  # running servers keep the files they had.
  staging=$(mktemp -d)
  for name in main.cf master.cf tls_policy transport; do
    if [ -f "$config/$name" ]; then cp "$config/$name" "$staging/$name"; fi
  done
  problems=$(postfix -c "$staging" check 2>&1 || true)
  if [ -n "$problems" ]; then echo "$problems" >&2; rm -rf "$staging"; exit 1; fi
  if [ -f "$config/dovecot.conf" ]; then
    if ! doveconf -c "$config/dovecot.conf" -n >/dev/null; then rm -rf "$staging"; exit 1; fi
  fi
  for name in main.cf master.cf tls_policy transport; do
    if [ -f "$staging/$name" ]; then cp "$staging/$name" "/etc/postfix/$name"; fi
  done
  rm -rf "$staging"
  if [ -f "$config/dovecot.conf" ]; then cp "$config/dovecot.conf" /etc/dovecot/dovecot.conf; fi
}

case "${1:-serve}" in
  serve)
    install_files
    if [ -f "$config/dovecot.conf" ]; then dovecot; fi
    exec postfix start-fg
    ;;
  reload)
    install_files
    # Dovecot first, and restarted: a reload would keep listening on a port whose listener was
    # removed. Its auth service restarts with it, and Postfix's running smtpd processes must
    # reconnect to the new one (else: 454 Temporary authentication failure).
    if [ -f "$config/dovecot.conf" ]; then
      if pid=$(cat /run/dovecot/master.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null; then
        doveadm stop
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
      fi
      dovecot  # also brings back a Dovecot that died
    fi
    postfix reload
    ;;
  wiretap)
    shift
    cd /opt/mailtls/src
    exec python3 -m mailtls.wiretap --mode-file /run/mailtls/wiretap.mode \
      --transcript /run/mailtls/transcripts/wiretap.jsonl "$@"
    ;;
  *)
    echo "usage: mailtls-host serve|reload|wiretap ROUTE..." >&2
    exit 2
    ;;
esac
