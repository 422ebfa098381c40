"""What the tests and the benchmarks share, one module per concern.

- ``paths``: the repository's folders;
- ``requirements``: skip (or, under CI, fail) a test that lacks a program or a backend;
- ``polling``: wait until something is true, within a time limit;
- ``cli``: run ``python -m mailtls ...``;
- ``labs``: a scratch copy of labs/, edits to it, the container engine's listing;
- ``mail``: send a message, read a mailbox, follow a message through the relay;
- ``sessions``: raw line-based SMTP and IMAP conversations;
- ``transcripts``: the chapters' quoted ``text`` blocks and how they match real lines;
- ``notebooks``: which Markdown files are notebooks, and executing them;
- ``site``: the Sphinx command that builds an edition;
- ``web``: a quiet local web server and Chromium run offline.

The tests import it as ``helpers`` (pytest puts ``tests/`` on ``sys.path``); a benchmark puts
``tests/`` on ``sys.path`` itself before importing it.
"""
