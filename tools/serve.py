"""Serve the built site on one local address and say where.

Why not ``python -m http.server`` directly: when the port is taken it prints a traceback; a
reader should instead be told which port and how to pick another.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the built site (the folder with index.html)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()

    if not (args.root / "index.html").is_file():
        print(f"error: {args.root}/index.html does not exist; build the site first (make html)",
              file=sys.stderr)
        return 2
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(args.root))
    try:
        server = http.server.ThreadingHTTPServer((args.host, args.port), handler)
    except OSError as error:
        print(
            f"error: cannot listen on {args.host}:{args.port}: {error.strerror}.\n"
            f"Another program is using that port; choose another one, e.g. make serve PORT={args.port + 1}",
            file=sys.stderr,
        )
        return 1
    print(f"Serving the course at http://{args.host}:{args.port}/  (English: /en/, Español: /es/)")
    print("Press Ctrl+C to stop.")
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
