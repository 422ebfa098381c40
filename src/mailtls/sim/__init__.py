"""The simulated lab: the lab's hosts simulated in one Python process, from the same files.

- ``modelled_settings``: which settings it models, which it accepts as changing nothing the lab
  can show, and at which values (data; the site's page "What the simulated lab simplifies" is
  made from it); ``names/`` holds every setting's name and default, from the real binaries;
- ``config``: main.cf, master.cf, lookup tables and dovecot.conf, read as the servers read them;
  a setting the simulation does not model, set to anything but its default, stops the host
  (``NotModelled``), and what the real servers refuse, they refuse with the servers' words;
- ``smtpd`` and ``imapd``: Postfix's smtpd and Dovecot's IMAP as sans-IO sessions (line in, reply out);
- ``session``: what such a session answers (:class:`~mailtls.sim.session.Reply`) and its interface;
- ``sockets``: the socket interface that the network's sockets and the TLS sockets over them share;
- ``network``: the lab's addresses inside this process (virtual sockets and reactive servers:
  no threads, no operating-system sockets, as in the browser);
- ``tls``: TLS on that network with the standard ``ssl`` module over memory BIOs;
- ``browser_tls``: the same with tlslite-ng, for Pyodide, whose ``ssl`` cannot do a handshake;
- ``x509``: the lab's certificates made, read and verified in pure Python (no ``cryptography``
  in the browser);
- ``lab``: the five hosts put together, with queues, logs, mailboxes and the wiretap.

It imports only what runs in the browser: no lab backend, no process (``tests/test_imports.py``
checks it with the contracts in ``pyproject.toml``). Its hosts' logs are written with
:mod:`mailtls.maillog`, which the checker reads them with.

``mailtls.lab.connect(backend="sim")`` (or ``MAILTLS_BACKEND=sim``) starts it; in the browser
it is the only lab, and ``connect()`` picks it there.
"""
