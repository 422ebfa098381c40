#!/bin/sh
# A lab host in its container. The host's files (labs/hosts/HOST/) are mounted read-only at
# /etc/mailtls-config; the lab's generated files (CA, certificates, users, mailboxes) at
# /run/mailtls; the project's src/ at /opt/mailtls/src (the servers' files are put in place by
# mailtls.hostfiles, as the native backend does).
#   serve     install the files, check them, start Dovecot if the host has a dovecot.conf,
#             and run Postfix in the foreground
#   reload    install the files again, check them, and reload Postfix and Dovecot
#   wiretap   run the wiretap (mitm.lab.test) in the mode written in /run/mailtls/wiretap.mode, read at each connection
set -eu
action=${1:-serve}
case "$action" in
  serve|reload)
    # The same checks as the native backend's, in Python: see src/mailtls/hostfiles.py.
    cd /opt/mailtls/src
    exec python3 -m mailtls.hostfiles "$action"
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
