"""The simulated lab: the lab's hosts simulated in one Python process, from the same files.

- ``config``: main.cf, master.cf, lookup tables and dovecot.conf, read as the servers read them;
- ``smtpd`` and ``imapd``: Postfix's smtpd and Dovecot's IMAP as sans-IO sessions (line in, reply out);
- ``network``: the lab's addresses inside this process (socket pairs served by threads);
- ``lab``: the five hosts put together, with queues, logs, mailboxes and the wiretap.

``mailtls.lab.connect(backend="sim")`` (or ``MAILTLS_BACKEND=sim``) starts it.
"""
