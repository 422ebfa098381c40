#!/usr/bin/env bash
# Check the external links of both editions with Sphinx's linkcheck builder.
# Offline (no name resolution for the hosts the pages link to), it says so and exits 0 without
# claiming to have checked anything.
set -euo pipefail
bin=$1 builddir=$2
shift 2

if ! "$bin/python" - <<'PY'
import socket, sys
try:
    socket.getaddrinfo("www.rfc-editor.org", 443)
except OSError:
    sys.exit(1)
PY
then
  echo "linkcheck: offline (cannot resolve external host names): external links were NOT checked."
  exit 0
fi

for lang in "$@"; do
  "$bin/sphinx-build" -c . -b linkcheck -D language="$lang" -q \
    -d "$builddir/doctrees/$lang" "docs/$lang" "$builddir/linkcheck/$lang"
done
echo "linkcheck: all external links answered (reports in $builddir/linkcheck/)."
