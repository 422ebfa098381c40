"""The simulated lab: the five hosts of ``labs/``, simulated in this Python process.

It runs from the same ``labs/hosts/*`` files as the real lab and keeps the same kind of files
(CA, certificates, users, logs, the wiretap's mode and transcript, ``status.json``) in a
temporary folder, so ``mailtls.lab.connect()`` describes it exactly as it describes a real lab.
What it simplifies is listed on the site's page "What the simulated lab simplifies".
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import hashlib
import re
import secrets
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mailtls import generations, maillog, runtime, smtp_reply, wiretap
from mailtls.config import LabConfig
from mailtls.generations import Generation
from mailtls.hosts import HOSTS, SHIPPED_LABS, Host
from mailtls.provision import provision
from mailtls.sim import network, x509
from mailtls.sim import tls as tls_engines
from mailtls.sim.config import (
    CERT_SETTINGS,
    MISSING_DATABASE,
    DovecotConfig,
    PostfixConfig,
    read_table,
    real_lab_command,
    split_tables,
)
from mailtls.sim.imapd import ImapSession
from mailtls.sim.openssl_errors import postfix_handshake_problem, postfix_missing_file
from mailtls.sim.smtpd import (
    SYSTEM_CA_FILE,
    SYSTEM_CA_PATH,
    Envelope,
    NotModelled,
    Recipients,
    ServerTls,
    SmtpServerSettings,
    SmtpSession,
    boolean,
    lab_path,
    new_queue_id,
    protocol_range,
    tls_level,
)
from mailtls.sim.sockets import SocketLike

# The simulated lab is the single lab of a machine, at the real lab's addresses.
SIMULATED = LabConfig()
address = SIMULATED.address

LEVELS_REQUIRING_TLS = ("encrypt", "fingerprint", "verify", "secure")  # tls.h TLS_REQUIRED
# The packages' full versions, as the servers name themselves in their logs when they start
# (``postconf -d -h mail_version``; ``dovecot --version``), Debian 12 and 13.
POSTFIX_RELEASES = {"3.7": "3.7.11", "3.10": "3.10.13"}
DOVECOT_RELEASES = {"2.3": "v2.3.19.1 (9b53102964)", "2.4": "v2.4.1-4 (7d8c0e5759)"}
LAB_FILES = "/run/mailtls/"  # where the hosts' files name the lab's generated files


def tls_summary(tls: Any, resumed: bool = False, postfix: str = "3.10") -> str:
    """How Postfix ``postfix`` describes a TLS session (an ``ssl`` or tlslite one) in its logs and
    Received headers."""
    name, _, bits = tls.cipher()
    return maillog.tls_summary(tls.version(), name, bits, resumed, postfix=postfix)


def versions(generation: Generation) -> dict[str, str]:
    """What ``status.json`` says of the servers: ``{"postfix": "3.10 (simulated)", ...}``."""
    return {"postfix": f"{generation.postfix} (simulated)", "dovecot": f"{generation.dovecot} (simulated)"}


class SimLab:
    """Every host of the lab, listening on the simulated network of this process.

    ``generation`` is the Debian release whose servers it simulates (by default
    :data:`mailtls.generations.DEFAULT`, Debian 13): each host runs that generation's files
    (:meth:`mailtls.hosts.Host.config_file`) and its servers answer with that generation's texts.
    Raises :class:`mailtls.sim.config.DovecotRefused` when mail.lab.test's ``dovecot.conf`` is
    one that generation's Dovecot refuses (the other generation's language, an unknown setting).
    """

    def __init__(self, labs: Path = SHIPPED_LABS, files: Path | None = None,
                 generation: Generation | None = None) -> None:
        self.labs = labs
        self.generation = generation or generations.DEFAULT
        # Read first, so that a file Dovecot refuses stops the lab before anything listens.
        self.dovecot = {h.name: DovecotConfig.read(h.config_file(labs, "dovecot.conf", self.generation),
                                                   self.generation) for h in HOSTS if h.dovecot}
        if files is None:  # a folder of our own, removed when this Python ends
            files = Path(tempfile.mkdtemp(prefix="mailtls-sim-"))
            atexit.register(shutil.rmtree, files, ignore_errors=True)
        self.files = files
        users = provision(self.files, {h.name: address(h) for h in HOSTS}, mailbox_owner=None)
        self.passwords = {u.login: u.password for u in users}
        self.mailboxes: dict[str, list[bytes]] = {}
        self.lock = threading.Lock()
        self.tls_sessions: dict[str, Any] = {}  # the relay's session cache
        self.client_contexts: dict[str, Any] = {}
        self.smtp_clients: dict[str, SmtpClient] = {}  # the relay's smtp processes, by host and transport
        (self.files / "wiretap.mode").write_text("pass\n")
        self.postfix: dict[str, PostfixConfig] = {}
        self.listeners: dict[tuple[str, int], network.Listener] = {}
        self.recipients: dict[str, Recipients] = {}
        for dovecot in self.dovecot.values():  # doveconf reads these files when Dovecot starts
            dovecot.check_files(self.lab_file)
        network.clear()
        tls_engines.install()  # before the servers' contexts: their set_ciphers is read by tlslite
        for host in HOSTS:
            (self.files / "hosts" / host.name / "log").mkdir(parents=True, exist_ok=True)
            if host.postfix:
                self.start_postfix(host)
            if host.dovecot:
                self.start_dovecot(host)
            if host.wiretap_for:
                self.start_wiretap(host)
        self.write_status()
        network.install()

    def listen(self, host_address: str, port: int, accept: network.Listener) -> None:
        self.listeners[(host_address, port)] = accept
        network.listen(host_address, port, accept)

    def activate(self) -> None:
        """Make this lab the one the network of this process reaches again (after another
        simulated lab, of another generation, took its addresses)."""
        network.clear()
        for (host_address, port), accept in self.listeners.items():
            network.listen(host_address, port, accept)
        network.install()

    # -- Files ------------------------------------------------------------------------------

    def write_status(self) -> None:
        """Describe the simulated lab in ``status.json``, as the real lab's backends do."""
        runtime.describe(SIMULATED, "sim", self.generation, versions(self.generation),
                         self.files).write(self.files)

    def log_file(self, host_name: str) -> Path:
        """The host's Postfix log (``maillog_file``): where both real backends keep it too,
        ``hosts/HOST/log/postfix.log`` in the lab's files, and what ``status.json``'s "logs" names."""
        return self.files / "hosts" / host_name / "log" / "postfix.log"

    def dovecot_log_file(self, host_name: str) -> Path:
        """The host's Dovecot log: its ``log_path = /var/log/dovecot.log``, which both real backends keep
        beside the Postfix log (the native backend sets ``log_path`` there; the containers mount the
        folder on /var/log). ``lab logs`` shows both; ``status.json`` names only the Postfix one."""
        return self.files / "hosts" / host_name / "log" / "dovecot.log"

    def log(self, host_name: str, program: str, text: str, pid: int | None = None) -> None:
        """Append a line to the host's Postfix log, as ``maillog_file`` gets it (see
        :mod:`mailtls.maillog`); ``pid`` is the process's (one smtpd keeps one for its connection)."""
        pid = pid if pid is not None else threading.get_ident() % 100000
        line = maillog.LogLine.now(host_name.split(".")[0], program, pid, text)
        with self.lock, self.log_file(host_name).open("a") as log:
            log.write(line.format() + "\n")

    def dovecot_log(self, host_name: str, process: str, level: str, text: str) -> None:
        """Append a line to the host's Dovecot log (:class:`mailtls.maillog.DovecotLine`)."""
        line = maillog.DovecotLine.now(process, level, text)
        with self.lock, self.dovecot_log_file(host_name).open("a") as log:
            log.write(line.format() + "\n")

    def lab_file(self, path: str) -> Path | None:
        """The file of this lab that a path of the hosts' files names (``/run/mailtls/NAME``); None for
        a path elsewhere, which the simulated hosts do not have."""
        return self.files / path.removeprefix(LAB_FILES) if path.startswith(LAB_FILES) else None

    def authenticate(self, login: str, password: str) -> bool:
        return self.passwords.get(login) == password

    def mailbox(self, name: str) -> list[bytes]:
        with self.lock:
            return list(self.mailboxes.get(name, []))

    def store(self, name: str, message: bytes) -> None:
        with self.lock:
            self.mailboxes.setdefault(name, []).append(message)

    def server_context(self, host: Host, minimum: str = "TLSv1.2") -> Any:
        return tls_engines.server_context(str(self.files / f"{host.name}.pem"),
                                          str(self.files / f"{host.name}.key"), minimum)

    # -- Postfix ----------------------------------------------------------------------------

    def start_postfix(self, host: Host) -> None:
        """Every smtpd service of the host's master.cf, listening; each with its own TLS engine.

        Raises :class:`mailtls.sim.smtpd.NotModelled` for a setting the simulation cannot follow.
        What an smtpd process logs as it starts (a certificate file it cannot open, a level it
        does not know) is logged at the service's first connection, as a new process logs it; a
        process that dies as it starts (``fatal:``) answers no connection: the client waits for a
        greeting that never comes, as behind the real master, which throttles the service.
        """
        config = PostfixConfig(host.config_dir(self.labs), self.files, self.generation)
        self.postfix[host.name] = config
        # As the containers backend starts Postfix (in the foreground: no postfix-script line; the
        # native backend's ``postfix start`` writes "starting the Postfix mail system" first).
        release = POSTFIX_RELEASES.get(self.generation.postfix, self.generation.postfix)
        self.log(host.name, "postfix/master", maillog.MasterStarted(release).format())
        recipients = self.recipients[host.name] = Recipients(config)
        for port, service in config.listeners().items():
            settings = SmtpServerSettings.read(config, port)
            program = f"{settings.syslog_name}/smtpd"
            context = self.postfix_context(settings.tls) if settings.tls and settings.tls.engine else None
            started: list[bool] = []

            def accept(connection: network.Connection, client: str, settings=settings, program=program,
                       context=context, started=started, name=service.name) -> Any:
                tls = settings.tls
                if tls is not None and tls.fatal:
                    self.log(host.name, program, tls.fatal)
                    for line in ("warning: process /usr/lib/postfix/sbin/smtpd pid 0 exit status 1",
                                 "warning: /usr/lib/postfix/sbin/smtpd: bad command startup -- throttling"):
                        self.log(host.name, "postfix/master", line)
                    return Silent()
                first = not started
                if first and tls is not None:
                    for line in tls.warnings:
                        self.log(host.name, program, line)
                started.append(True)
                events = SmtpdLog(self, host, program, client)
                if settings.wrapper and context is None:  # smtpd_proto, after "connect from"
                    self.log(host.name, program,
                             f"warning: Wrapper-mode request dropped from unknown[{client}] for service "
                             f"{name}. TLS context "
                             "initialization failed. For details see earlier warnings in your logs.")
                    # smtpd hangs up without reading the client's ClientHello. A new process is slow
                    # enough for it to arrive first, and the kernel answers with a reset; a running
                    # one hangs up before, and the client reads the end of the stream (measured with
                    # Postfix 3.7.11 and 3.10.13: the first client of the service gets
                    # ConnectionResetError, the next ones mostly an EOF: a race on a real network).
                    if first:
                        connection.reset()
                    else:
                        connection.close()
                    # smtpd mails the session's transcript to the postmaster (notify_classes has
                    # "software"), which the lab's hosts cannot deliver (measured, both generations).
                    self.log(host.name, "postfix/bounce",
                             f"warning: {new_queue_id()}: undeliverable postmaster notification discarded")
                    events.ended(by_client=False)
                    return Silent()
                session = SmtpSession(settings, recipients, client, self.authenticate,
                                      lambda envelope, s: self.receive_mail(host, envelope, s))

                def on_tls(tls: tls_engines.ServerSide) -> None:
                    session.tls_details = tls_summary(tls, postfix=self.generation.postfix)

                return network.LineServer(connection, session,
                                          lambda send: tls_engines.server_side(context, send),
                                          settings.wrapper, on_tls, events=events)

            self.listen(address(host), port, accept)

    def postfix_context(self, tls: ServerTls) -> Any:
        """smtpd's TLS engine (``tls_server_init``): its certificate and key, or none at all (every
        handshake then fails, as with OpenSSL and no certificate), and its range of versions. The
        OpenSSL security level is 0, as Postfix's tls_server.c sets it, so TLS 1.0 and 1.1 work
        where the versions allow them."""
        certfile, keyfile = tls.certificate if tls.certificate else (None, None)
        arguments: dict[str, Any] = {"certfile": certfile, "keyfile": keyfile, "minimum": tls.versions[0]}
        if tls.versions[1] != "TLSv1.3":  # the engines' default highest version
            arguments["maximum"] = tls.versions[1]
        context = tls_engines.server_context(**arguments)
        if certfile is None and isinstance(context, ssl.SSLContext):
            # Without a certificate only anonymous suites can work, and Postfix's cipher lists keep
            # them (a Postfix client at may or encrypt gets one; clients that offer none fail).
            with contextlib.suppress(ssl.SSLError, NotImplementedError):
                context.set_ciphers("ALL:@SECLEVEL=0")
        return context

    def receive_mail(self, host: Host, envelope: Envelope, session: SmtpSession) -> str:
        """What cleanup and the queue manager do with a message smtpd accepted."""
        queue_id = new_queue_id()
        received = self.received_header(host, session, queue_id, envelope)
        message = received + envelope.content
        self.log(host.name, "postfix/qmgr",
                 maillog.QueueActive(queue_id, envelope.sender, len(message),
                                     len(envelope.recipients)).format())
        for recipient in envelope.recipients:
            domain = recipient.lower().rpartition("@")[2]
            if self.recipients[host.name].is_local(domain):
                self.deliver_locally(host, recipient, envelope.sender, message)
            else:
                # At once, where Postfix's queue manager would take a moment: the network is synchronous.
                self.deliver_remotely(host, queue_id, recipient, envelope.sender, message)
        return queue_id

    def received_header(self, host: Host, session: SmtpSession, queue_id: str, envelope: Envelope) -> bytes:
        date = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000 (UTC)")
        lines = [f"Received: from {session.helo} (unknown [{session.client_address}])"]
        if session.tls_details and session.settings.received_header:
            protocol, _, exchange = session.tls_details.partition(" key-exchange")
            lines += [f"\t(using {protocol}", f"\t key-exchange{exchange})",
                      "\t(No client certificate requested)"]
        lines.append(f"\tby {host.name} (Postfix) with {session.protocol} id {queue_id}")
        if len(envelope.recipients) == 1:
            lines.append(f"\tfor <{envelope.recipients[0]}>; {date}")
        else:
            lines[-1] += f"; {date}"
        return ("\r\n".join(lines) + "\r\n").encode()

    def deliver_locally(self, host: Host, recipient: str, sender: str, message: bytes) -> None:
        """LMTP to Dovecot on mail.lab.test; the virtual delivery agent on the other hosts."""
        config = self.postfix[host.name]
        if host.dovecot:
            delimiter = config.get("recipient_delimiter")
            local, _, domain = recipient.partition("@")
            user = f"{local.split(delimiter, 1)[0] if delimiter else local}@{domain}".lower()
            date = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
            header = (f"Return-Path: <{sender}>\r\nDelivered-To: {user}\r\n"
                      f"Received: from {host.name} ([127.0.0.1])\r\n\tby {host.name} with LMTP\r\n"
                      f"\tid {secrets.token_urlsafe(16)}\r\n\t(envelope-from <{sender}>)\r\n"
                      f"\tfor <{user}>; {date}\r\n")
            self.store(user, header.encode() + message)
            self.log_lmtp(host, user, message)
        else:
            self.store(recipient.rpartition("@")[2].lower(),
                       f"Delivered-To: {recipient}\r\n".encode() + message)

    def log_lmtp(self, host: Host, user: str, message: bytes) -> None:
        """What Dovecot's lmtp logs of one delivery (measured with 2.3.19.1 and 2.4.1 alike: the
        connection, ``msgid=<...>: saved mail to INBOX``, the disconnection)."""
        pid = 1000 + secrets.randbelow(60000)
        session = base64.b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        found = re.search(rb"^Message-ID:[ \t]*(.*?)\r?$", message.split(b"\r\n\r\n", 1)[0],
                          re.IGNORECASE | re.MULTILINE)
        msgid = found[1].decode("latin-1").strip() if found else "unspecified"
        self.dovecot_log(host.name, f"lmtp({pid})", "Info", "Connect from 127.0.0.1")
        self.dovecot_log(host.name, f"lmtp({user})<{pid}><{session}>", "Info",
                         f"msgid={msgid}: saved mail to INBOX")
        self.dovecot_log(host.name, f"lmtp({pid})", "Info",
                         "Disconnect from 127.0.0.1: Logged out (state=READY)")

    # -- The relay's SMTP client (Postfix's smtp with its TLS levels) --------------------------

    def deliver_remotely(self, host: Host, queue_id: str, recipient: str, sender: str,
                         message: bytes) -> None:
        """One delivery attempt of Postfix's smtp client, logged as it logs it.

        The client's TLS policy is :func:`client_policy`'s; the trust in the server's
        certificate :func:`judge`'s. The status codes (``dsn=``) and texts are smtp_proto.c's
        (Postfix 3.7.11 and 3.10.13): the server's own enhanced code when it refuses, 4.7.4 when
        TLS is required and not offered, 4.7.5 for the certificate, the handshake and the
        client's TLS configuration. The first attempt is the only one: a message deferred stays
        deferred (the simulated queue retries nothing), as the real one stays until its next try.
        """
        config = self.postfix[host.name]
        transport, nexthop = route(config, recipient)
        service = config.service(transport)
        overrides = service.overrides if service else {}
        program = config.get("syslog_name", {**overrides, "service_name": transport}) + "/smtp"
        target = nexthop.strip("[]")
        target_host = next(h for h in HOSTS if h.name == target)
        namaddr = f"{target}[{address(target_host)}]"
        where = f"{namaddr}:25"

        def status(dsn: str, state: str, text: str, relay: str = where) -> None:
            self.log(host.name, program,
                     maillog.Delivery(queue_id, recipient, relay, "0.01", "0/0/0/0", dsn, state,
                                      text).format())

        if service is not None and service.fatal:  # its -o options are read first, before -o syslog_name
            program = config.get("syslog_name", {"service_name": transport}) + "/smtp"
            self.smtp_died(host, transport, program, service.fatal, status)
            return
        client = self.smtp_client(host, config, transport, overrides, program)
        if client.fatal:
            self.smtp_died(host, transport, program, client.fatal, status)
            return
        policy = client_policy(config, overrides, nexthop, self.generation)
        for line in policy.warnings:
            self.log(host.name, program, line)
        if policy.failure:
            self.log(host.name, program,
                     f"warning: TLS policy lookup for {nexthop}/{target}: {policy.failure}")
            status("4.7.5", "deferred", policy.failure, "none")
            return
        level = policy.level
        sock = network.open_connection(address(target_host), 25, client_address=address(host), timeout=30)
        reader = sock.makefile("rb")
        try:
            smtp_reply.read(reader.readline)
            offered = ehlo(sock, reader, host.name)
            if level != "none" and "STARTTLS" in offered and client.engine:
                sock.sendall(b"STARTTLS\r\n")
                reply = smtp_reply.read(reader.readline)
                if reply.code // 100 != 2:
                    if level != "may":
                        status(reply_dsn(reply), "deferred" if reply.code < 500 else "bounced",
                               f"TLS is required, but host {namaddr} refused to start TLS: {said(reply)}")
                        return
                else:
                    try:
                        sock, trust = self.client_tls(sock, transport, target, policy, client, host, program,
                                                      where)
                    except (ssl.SSLError, OSError, ValueError):
                        # No fallback to clear text on a first attempt: smtp.h allows it only for a
                        # message older than minimal_backoff_time (PLAINTEXT_FALLBACK_OK_...).
                        # OpenSSL's "TLS library problem" line that follows is not written.
                        self.log(host.name, program, f"SSL_connect error to {where}: -1")
                        status("4.7.5", "deferred", "Cannot start TLS: handshake failure")
                        return
                    reader = sock.makefile("rb")
                    if trust != "Verified" and level in MUST_MATCH:
                        status("4.7.5", "deferred", "Server certificate not verified")
                        sock.sendall(b"QUIT\r\n")
                        return
                    ehlo(sock, reader, host.name)
            elif level in LEVELS_REQUIRING_TLS:
                if "STARTTLS" not in offered:
                    status("4.7.4", "deferred", f"TLS is required, but was not offered by host {namaddr}")
                else:
                    status("4.7.5", "deferred", "TLS is required, but our TLS engine is unavailable")
                return
            commands = ((f"MAIL FROM:<{sender}>", "MAIL FROM"), (f"RCPT TO:<{recipient}>", "RCPT TO"),
                        ("DATA", "DATA"))
            for command, name in commands:
                sock.sendall(command.encode() + b"\r\n")
                reply = smtp_reply.read(reader.readline)
                if reply.code >= 400 or reply.code == 0:
                    status(reply_dsn(reply), "deferred" if reply.code < 500 else "bounced",
                           f"host {namaddr} said: {said(reply)} (in reply to {name} command)")
                    return
            body = b"\r\n".join(b"." + line if line.startswith(b".") else line
                                for line in message.split(b"\r\n"))
            sock.sendall(body.rstrip(b"\r\n") + b"\r\n.\r\n")
            reply = smtp_reply.read(reader.readline)
            if reply.code >= 400 or reply.code == 0:
                status(reply_dsn(reply), "deferred" if reply.code < 500 else "bounced",
                       f"host {namaddr} said: {said(reply)} (in reply to end of DATA command)")
            else:
                status(reply_dsn(reply), "sent", said(reply))
            sock.sendall(b"QUIT\r\n")
        finally:
            sock.close()

    def smtp_client(self, host: Host, config: PostfixConfig, transport: str, overrides: dict[str, str],
                    program: str) -> SmtpClient:
        """What the transport's smtp process started with (smtp.c ``pre_init``); its start-up lines
        are logged once, at its first delivery, as a new process logs them."""
        key = f"{host.name}/{transport}"
        client = self.smtp_clients.get(key)
        if client is None:
            client = self.smtp_clients[key] = smtp_client_init(config, overrides)
            for line in client.messages:
                self.log(host.name, program, line)
        return client

    def smtp_died(self, host: Host, transport: str, program: str, fatal: str, status: Any) -> None:
        """An smtp process that dies as it starts: its fatal line and the master's two lines; the
        message stays in the queue, undelivered (measured: no delivery line within 20 s, as the
        master throttles the transport)."""
        self.log(host.name, program, fatal)
        self.log(host.name, "postfix/master",
                 "warning: process /usr/lib/postfix/sbin/smtp pid 0 exit status 1")
        self.log(host.name, "postfix/master",
                 "warning: /usr/lib/postfix/sbin/smtp: bad command startup -- throttling")

    def client_tls(self, sock: SocketLike, transport: str, target: str, policy: ClientPolicy,
                   client: SmtpClient, host: Host, program: str, where: str) -> tuple[Any, str]:
        """STARTTLS as Postfix's client does it: handshake first, then judge the certificate.

        Returns the TLS socket and the trust (Untrusted, Trusted, Verified); raises ssl.SSLError
        (or OSError) when the handshake fails. Where the level requires a match and the
        certificate fails it, tls_verify.c's reason is logged (tls_client.c: for a resumed session, a
        pointer to the earlier line)."""
        low, high = policy.versions
        key = f"{transport}&[{target}]&{low}&{high}"
        context = self.client_contexts.get(key)
        if context is None:  # one per cache entry: a session resumes only with its own context
            context = self.client_contexts[key] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            if (low, high) != ("TLSv1", "TLSv1.3"):
                context.minimum_version = TLS_VERSIONS[low]
                context.maximum_version = TLS_VERSIONS[high]
            if policy.level in ("may", "encrypt"):
                # Postfix's client offers anonymous cipher suites where it checks no certificate
                # (tls_client.c excludes aNULL only at the levels that must match): a server
                # without a certificate then agrees on one in TLS 1.2 (measured: ADH-AES256-GCM-SHA384).
                with contextlib.suppress(ssl.SSLError, AttributeError, NotImplementedError):
                    context.set_ciphers("ALL:@SECLEVEL=0")  # ALL has aNULL; DEFAULT drops it for good
        if policy.level == "fingerprint":
            unusable = unusable_fingerprints(policy)
            # tls_dane.c: each is a TLSA record of the public key, then one of the certificate
            for fingerprint in unusable:
                for selector in (1, 0):
                    self.log(host.name, program,
                             f"warning: {where}: unusable TLSA RR: 3 {selector} 255 {fingerprint}")
            if unusable and len(unusable) == len(policy.match):
                self.log(host.name, program, f"warning: {where}: all fingerprints unusable")
        tls = context.wrap_socket(sock, server_hostname=target, session=self.tls_sessions.get(key))
        resumed = tls.session_reused
        der = tls.getpeercert(binary_form=True)
        if der is None:
            # The engines have no Diffie-Hellman parameters, so they agree on AECDH-AES256-SHA where
            # smtpd, with its built-in ones, picks ADH-AES256-GCM-SHA384: the line says what Postfix says.
            if client.summary:
                summary = maillog.tls_summary("TLSv1.2", "ADH-AES256-GCM-SHA384", 256, anonymous=True)
                self.log(host.name, program, maillog.TlsConnection("Anonymous", where, summary).format())
            return tls, "Anonymous"
        trust, failure = judge(der, client.anchors, policy, target)
        if trust == "Trusted" and policy.level in MUST_MATCH and self.generation.postfix == "3.7":
            trust = "Untrusted"  # 3.7 marks a chain trusted only when it also matched (measured)
        if policy.level in MUST_MATCH and trust != "Verified" and failure:
            purpose, reason = failure
            said = (maillog.VerificationFailed(where, reason, purpose).format() if not resumed
                    else f"{where}: re-using session with untrusted peer credential, look for details "
                         "earlier in the log")
            self.log(host.name, program, said)
        word = "Trusted" if trust == "Verified" and policy.level not in MUST_MATCH else trust
        if client.summary:
            summary = maillog.TlsConnection(word, where, tls_summary(tls, resumed, self.generation.postfix))
            self.log(host.name, program, summary.format())
        tls.sendall(b"NOOP\r\n")  # a TLS 1.3 session ticket arrives after the handshake
        tls.makefile("rb").readline()
        if tls.session is not None:
            self.tls_sessions[key] = tls.session
        return tls, trust

    # -- Dovecot ----------------------------------------------------------------------------

    def start_dovecot(self, host: Host) -> None:
        """Dovecot's imap-login listeners, with TLS as its settings make it (see :meth:`dovecot_tls`).

        With ``ssl = no`` a listener with ``ssl = yes`` does not listen, and a port of 0 disables its
        listener (measured with Dovecot 2.3.19.1 and 2.4.1: connection refused on both).
        """
        config = self.dovecot[host.name]
        self.dovecot_log(host.name, "master", "Info",
                         f"Dovecot {DOVECOT_RELEASES.get(config.dovecot, config.dovecot)} starting up for "
                         f"{', '.join(config.protocols)} (core dumps disabled)")
        if config.dovecot == "2.4" and config.ssl_min_protocol.lower() == "any":  # measured on 2.4.1
            self.dovecot_log(host.name, "config", "Warning",
                             "ssl_min_protocol=ANY is used - This is insecure and intended only for testing")
        context, tls_error = self.dovecot_tls(host, config)
        for port, implicit in config.listeners.items():
            if port == 0 or (implicit and config.ssl == "no"):
                continue

            def accept(connection: network.Connection, client: str, port=port,
                       implicit=implicit) -> network.Handler:
                session = ImapSession(config, port, self.authenticate, self.mailbox,
                                      log=lambda *line: self.dovecot_log(host.name, *line),
                                      rip=client, lip=address(host), tls_error=tls_error)
                if implicit and tls_error is not None:  # measured: the Error line, then a reset
                    session.log_tls_error()
                    connection.reset()
                    return Silent()
                return network.LineServer(connection, session,
                                          lambda send: tls_engines.server_side(context, send), implicit,
                                          events=session,  # type: ignore[arg-type]
                                          alert_on_failure=config.dovecot != "2.3")

            self.listen(address(host), port, accept)

    def dovecot_tls(self, host: Host, config: DovecotConfig) -> tuple[Any, str | None]:
        """The TLS context Dovecot's settings make, or why imap-login cannot make one.

        Dovecot starts with a key that does not match its certificate, a 2.3 ``ssl_cert`` without ``<``,
        or an ``ssl_min_protocol`` it does not know; then imap-login fails to set up TLS at each
        connection that needs it, and logs why (words measured with 2.3.19.1 and 2.4.1, returned as the
        second item). Raises NotModelled for settings the simulation does not model: a cipher list other
        than the default or the protocols exercise's ``@SECLEVEL=0``, certificate files outside the lab's
        files, no certificate at all.
        """
        if config.ssl == "no":
            return None, None
        cert_name, key_name = CERT_SETTINGS[config.dovecot]
        if not config.cipher_list_modelled():
            raise NotModelled("the simulated lab does not model ssl_cipher_list = "
                              f"{config.ssl_cipher_list}; "
                           "the real lab does: it passes the list to OpenSSL")
        if config.ssl_cert is None or config.ssl_key is None:
            raise NotModelled(f"the simulated lab does not model a Dovecot with ssl = {config.ssl} and no "
                           f"{cert_name} or {key_name}; the real lab does: set both")
        cert_path, key_path = config.file_of(config.ssl_cert), config.file_of(config.ssl_key)
        if cert_path is None:  # 2.3's ssl_cert without "<": the path itself is read as PEM text
            return None, "Can't load SSL certificate (ssl_cert setting): There is no valid PEM certificate."
        for name, path in ((cert_name, cert_path), (key_name, key_path)):
            if path is None or self.lab_file(path) is None:
                named = path or config.ssl_key[0]
                raise NotModelled(f"the simulated lab does not model {name} = {named}; the "
                               "real lab does: the simulated hosts have only the lab's files, under "
                               + LAB_FILES)
        cert_file, key_file = self.lab_file(cert_path), self.lab_file(key_path)  # type: ignore[arg-type]
        if not keys_match(cert_file, key_file):  # type: ignore[arg-type]
            return None, ("Can't load SSL private key (ssl_key setting): Key is for a different cert than "
                          "ssl_cert" if config.dovecot == "2.3" else
                          "Can't load SSL private key (ssl_server_key_file setting): Key file is for a "
                          "different certificate file")
        minimum = config.minimum_version
        if minimum is None:
            value = config.ssl_min_protocol
            return None, (f"Unknown ssl_min_protocol setting '{value}'" if config.dovecot == "2.3" else
                          f"Can't set minimum protocol to '{value}' (ssl_min_protocol setting): "
                          "Unknown value")
        context = tls_engines.server_context(certfile=str(cert_file), keyfile=str(key_file), minimum=minimum)
        return context, None

    # -- The wiretap on mitm.lab.test ---------------------------------------------------------

    def start_wiretap(self, host: Host) -> None:
        """The real wiretap's sessions, relaying to the simulated mail.lab.test."""
        target = next(h for h in HOSTS if h.short == host.wiretap_for)
        tap = wiretap.Wiretap([], wiretap.Mode.PASS, self.files / "transcripts" / "wiretap.jsonl",
                              self.files / "wiretap.mode")
        for service in host.services:
            protocol = "tls" if service.tls == "implicit" else ("imap" if service.name == "imap" else "smtp")
            route = wiretap.Route(protocol, address(host), service.port, address(target), service.port)

            def accept(connection: network.Connection, client: str, route=route) -> WiretapServer:
                upstream = network.open_connection(route.upstream_host, route.upstream_port,
                                                   client_address=address(host))
                return WiretapServer(connection, tap.relay(route), upstream)

            self.listen(address(host), service.port, accept)


class SmtpdLog(network.Events):
    """What Postfix's smtpd logs of one connection, with ``smtpd_tls_loglevel = 1`` and
    ``smtpd_peername_lookup = no`` (the lab's main.cf): ``connect from unknown[ADDR]``, the TLS line,
    a failed handshake, ``lost connection after CMD`` for a client that leaves without QUIT, and the
    ``disconnect from`` line with smtpd's command counters.

    The counters are smtpd's (smtpd.c, ``smtpd_proto``): every command line counts once in its
    command's total (an unknown one as ``unknown``), and once more in its successes when its last
    reply is not an error: AUTH when the exchange ends in 235, DATA when the message is accepted,
    STARTTLS when the handshake completes.
    """

    def __init__(self, lab: SimLab, host: Host, program: str, client_address: str) -> None:
        self.lab, self.host, self.program = lab, host, program
        self.client = f"unknown[{client_address}]"
        self.pid = 1000 + secrets.randbelow(60000)
        self.counts: dict[str, list[int]] = {}  # command -> [successes, total]
        self.where = "CONNECT"  # the last command smtpd recognised (SMTPD_AFTER_CONNECT at first)
        self.pending: str | None = None  # a command whose outcome is not known yet (DATA, AUTH, STARTTLS)
        self.data_bytes = 0
        self.quit = False
        self.auth_mechanism = ""
        self.auth_answers: list[bytes] = []  # the client's answers to AUTH, base64 (the initial one first)
        self.write(maillog.ClientConnect(self.client).format())

    def write(self, text: str) -> None:
        self.lab.log(self.host.name, self.program, text, pid=self.pid)

    def count(self, command: str, success: bool) -> None:
        counts = self.counts.setdefault(command, [0, 0])
        counts[1] += 1
        counts[0] += int(success)

    def tls_started(self, tls: Any) -> None:
        resumed = bool(getattr(getattr(tls, "tls", None), "session_reused", False))
        summary = tls_summary(tls, resumed, self.lab.generation.postfix)
        self.write(maillog.TlsConnection("Anonymous", self.client, summary,
                                         direction="from").format())
        if self.pending == "starttls":
            self.pending = None
            self.count("starttls", True)

    def tls_failed(self, failure: Exception | None) -> None:
        """tls_server.c: ``: -1`` when OpenSSL said why, ``: lost connection`` when the client left."""
        detail = "-1" if failure is not None else "lost connection"
        self.write(maillog.SslAcceptError(self.client, detail).format())
        # tls_print_errors(): OpenSSL's error queue, one warning a line
        for line in postfix_handshake_problem(getattr(failure, "reason", None), self.lab.generation.postfix):
            self.write(line)
        if self.pending == "starttls":
            self.pending = None
            self.count("starttls", False)

    def exchanged(self, line: bytes, reply: Any) -> None:
        last = reply.data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1] if reply is not None else b""
        code = int(last[:3]) if last[:3].isdigit() else 0
        if self.pending == "data":
            self.data_bytes += len(line)
            if reply is not None:  # the end of the message
                self.pending = None
                self.count("data", code < 400)
                self.where = "END-OF-MESSAGE"
            return
        if self.pending == "auth":
            self.auth_answers.append(line.strip())
            if code != 334:
                self.pending = None
                self.auth_done(code)
            return
        words = line.split()
        command = words[0].decode("latin-1").lower() if words else ""
        if command not in maillog.SMTPD_COMMANDS or command == "unknown":
            self.count("unknown", False)
            self.where = "UNKNOWN"
            return
        self.where = command.upper()
        if command == "data" and code == 354:
            self.pending, self.data_bytes = "data", 0
        elif command == "auth":
            self.auth_mechanism = words[1].decode("latin-1").upper() if len(words) > 1 else ""
            self.auth_answers = words[2:3]
            if code == 334:
                self.pending = "auth"
            else:
                self.auth_done(code)
        elif command == "starttls" and reply is not None and reply.start_tls:
            self.pending = "starttls"
        else:
            self.count(command, 0 < code < 400)
        self.quit = self.quit or (command == "quit" and code < 400)

    def auth_done(self, code: int) -> None:
        """An AUTH exchange ended: counted, and a failure logged as smtpd_sasl_glue.c logs it
        (``warning: unknown[ADDR]: SASL PLAIN authentication failed: (reason unavailable),
        sasl_username=USER``: Dovecot's auth service gives no reason), and a client's ``*``
        (``warning: unknown[ADDR]: SASL PLAIN authentication aborted``; measured, 3.7.11 and 3.10.13)."""
        self.count("auth", code < 400)
        if code == 501 and self.auth_mechanism and self.auth_answers[-1:] == [b"*"]:
            self.write(f"warning: {self.client}: SASL {self.auth_mechanism} authentication aborted")
            return
        if code not in (535, 454) or not self.auth_mechanism:
            return
        try:
            decoded = [base64.b64decode(answer, validate=True).decode("utf-8")
                       for answer in self.auth_answers]
        except ValueError:
            decoded = []
        user = ""
        if self.auth_mechanism == "PLAIN" and decoded:
            user = decoded[0].split("\0")[1] if decoded[0].count("\0") == 2 else ""
        elif self.auth_mechanism == "LOGIN" and decoded:
            user = decoded[0]
        self.write(f"warning: {self.client}: SASL {self.auth_mechanism} authentication failed: "
                   f"(reason unavailable), sasl_username={user or '(unavailable)'}")

    def ended(self, by_client: bool) -> None:
        if not self.quit and self.where != "END-OF-MESSAGE":
            queue_id = "NOQUEUE" if self.lab.generation.postfix != "3.7" else None
            size = self.data_bytes if self.pending == "data" else None
            self.write(maillog.LostConnection(self.where, self.client, queue_id, size).format())
        if self.pending is not None:  # a command that never finished counts as failed
            self.count(self.pending, False)
            self.pending = None
        counts = tuple((name, success, total) for name, (success, total) in self.counts.items())
        self.write(maillog.ClientDisconnect(self.client, counts).format())


class Silent:
    """A connection nobody serves: an smtpd that died as it started (the client waits for a
    greeting), or one that dropped the connection."""

    def received(self, data: bytes) -> None:
        pass

    def hung_up(self) -> None:
        pass


def keys_match(certificate: Path, key: Path) -> bool:
    """True when the key file holds the private key of the certificate file's public key.

    Raises NotModelled for a key the simulation cannot read (the lab's keys are ECDSA P-256)."""
    from ecdsa import SigningKey

    try:
        signing = SigningKey.from_pem(key.read_text())
    except (ValueError, OSError) as failure:
        raise NotModelled(f"the simulated lab does not model the key {key.name}: {failure}") from None
    point = signing.get_verifying_key().to_string("uncompressed")
    cert = x509.pem_certificates(certificate.read_bytes())
    return bool(cert) and cert[0].public_point == point


class WiretapServer:
    """The wiretap on the simulated network: the real wiretap's :class:`~mailtls.wiretap.Relay`
    between a client's connection and its own connection to the server."""

    def __init__(self, connection: network.Connection, relay: wiretap.Relay,
                 upstream: network.VirtualSocket) -> None:
        self.connection = connection
        self.relay = relay
        self.upstream = upstream
        self.carry(b"")  # the server's greeting

    def carry(self, to_server: bytes) -> None:
        """Send to the server, and pass on what it answers, until neither side has more to say."""
        while True:
            if to_server:
                try:
                    self.upstream.sendall(to_server)
                except OSError:
                    break
            answer = self.upstream.pending()
            if not answer:
                break
            to_client, to_server = self.relay.from_server(answer)
            self.connection.send(to_client)
        if self.upstream.connection.closed_by_server:
            self.connection.close()

    def received(self, data: bytes) -> None:
        to_server, to_client = self.relay.from_client(data)
        self.connection.send(to_client)
        self.carry(to_server)

    def hung_up(self) -> None:
        self.upstream.close()


# -- Postfix's routing and client policy ------------------------------------------------------------


def route(config: PostfixConfig, recipient: str) -> tuple[str, str]:
    """transport_maps (full address, then domain), else relay_transport with the domain."""
    table = config.table("transport_maps")
    domain = recipient.lower().rpartition("@")[2]
    found = table.get(recipient.lower()) or table.get(domain)
    if found:
        transport, _, nexthop = found.partition(":")
        return transport, nexthop or domain
    return config.get("relay_transport").partition(":")[0], domain


# The levels at which the certificate must match (tls.h TLS_MUST_MATCH), and where TLS is required.
MUST_MATCH = ("fingerprint", "verify", "secure", "dane-only")
TLS_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@dataclass
class SmtpClient:
    """What an smtp process starts with (smtp.c ``pre_init``): the TLS engine (``engine`` False when
    ``tls_client_init`` failed: no STARTTLS then), the CA certificates it trusts, the lines it
    logs as it starts, and the ``fatal:`` line it dies with, if any."""

    engine: bool = True
    anchors: list[x509.Certificate] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    fatal: str | None = None
    summary: bool = True  # smtp_tls_loglevel 1: the "... TLS connection established" line


def smtp_client_init(config: PostfixConfig, overrides: dict[str, str]) -> SmtpClient:
    """An smtp process's start (smtp.c ``pre_init``, tls_certkey.c ``tls_set_ca_certificate_info``).

    A non-empty ``smtp_tls_security_level`` that is no level is fatal; ``smtp_tls_CAfile`` and
    ``smtp_tls_CApath`` are the only trust (Postfix adds OpenSSL's default CAs only with
    ``tls_append_default_CA = yes``). ``smtp_tls_loglevel`` 0 drops the summary line; a failed
    verification at a level that must match is logged at any level (tls_client.c). A CA file that
    cannot be read disables the TLS engine.
    Files under /run/mailtls/ are the lab's; ``/etc/ssl/certs/ca-certificates.crt`` and
    ``/etc/ssl/certs`` are the host's public CAs, which never hold the lab's CA; any other
    path raises NotModelled, as does ``tls_append_default_CA = yes``.
    """
    get = lambda name: config.get(name, overrides)  # noqa: E731
    client = SmtpClient()
    if fatal := config.bad_boolean("smtp_", overrides):
        client.fatal = fatal
        return client
    raw = get("smtp_tls_security_level").strip()
    if raw and tls_level(raw) is None:
        client.fatal = f'fatal: Invalid TLS level "{raw}"'
        return client
    loglevel = get("smtp_tls_loglevel").strip().lower() or "0"
    if loglevel not in ("0", "none", "1", "routine"):
        raise NotModelled(f"the simulated lab does not model smtp_tls_loglevel = {loglevel}; the real lab "
                          "does: it logs the certificates and the handshake")
    client.summary = loglevel in ("1", "routine")
    for table in split_tables(get("smtp_tls_policy_maps")):
        kind, _, path = table.partition(":")
        if kind in MISSING_DATABASE["smtp_tls_policy_maps"]:  # dict_open at the smtp process's start
            missing = f"open database {path}.db: No such file or directory"
            client.messages += [f"error: {missing}", f"warning: {table} is unavailable. {missing}"]
    if boolean(get("tls_append_default_CA")):
        raise NotModelled("the simulated lab does not model tls_append_default_CA = yes; the real lab "
                          "does: it adds OpenSSL's default CAs")
    ca_file, ca_path = get("smtp_tls_CAfile").strip(), get("smtp_tls_CApath").strip()
    readable, problems = True, []
    if ca_file and ca_file != SYSTEM_CA_FILE:
        path = lab_path(ca_file, "smtp_tls_CAfile", config)
        if path.is_file():
            client.anchors += x509.pem_certificates(path.read_bytes())
        else:
            readable = False
            problems = postfix_missing_file(ca_file, config.generation.postfix, "ca")
    if ca_path and ca_path.rstrip("/") != SYSTEM_CA_PATH:
        folder = lab_path(ca_path, "smtp_tls_CApath", config)
        if folder.is_dir():  # OpenSSL looks up a CA by its hashed name (HASH.0): c_rehash's links
            for link in sorted(folder.glob("*.[0-9]")):
                client.anchors += x509.pem_certificates(link.read_bytes())
        elif not readable or not ca_file:
            readable = False
    if not readable:
        named = ", ".join(f'{name}="{value}"' for name, value in (("CAfile", ca_file), ("CApath", ca_path))
                          if value)
        client.messages.append(f"cannot load Certification Authority data, {named}: disabling TLS support")
        client.messages += problems  # tls_certkey.c: tls_print_errors() after that line
        client.engine = False
    return client


@dataclass
class ClientPolicy:
    """The TLS policy for one next hop (smtp_tls_policy.c ``policy_create``): the level, the names
    or fingerprints to match, the TLS versions, what it warns of, and the reason of a
    "client TLS configuration problem" (dsn 4.7.5) that defers the mail before connecting."""

    level: str
    match: list[str] = field(default_factory=list)
    versions: tuple[str, str] = ("TLSv1", "TLSv1.3")
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None
    digest: str = "sha256"  # smtp_tls_fingerprint_digest


CONFIGURATION_PROBLEM = "client TLS configuration problem"
# The DER of an EC P-256 SubjectPublicKeyInfo before its point (RFC 5480): every lab key is one.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


def client_policy(config: PostfixConfig, overrides: dict[str, str], nexthop: str,
                  generation: Generation | None = None) -> ClientPolicy:
    """The TLS policy for a next hop, as smtp_tls_policy.c (Postfix 3.7.11, 3.10.13) makes it.

    The level is ``smtp_tls_security_level``, else (empty) the legacy ``smtp_enforce_tls``
    (verify, or encrypt with ``smtp_tls_enforce_peername = no``) or ``smtp_use_tls`` (may).
    ``smtp_tls_policy_maps`` is looked up with the next hop as it is: ``[host]`` alone, else the
    domain and then its parents (``.lab.test``). A policy's invalid level or attribute, a
    ``fingerprint`` level without fingerprints, and ``dane-only`` are configuration problems (the
    lab has no DNSSEC: ``smtp_dns_support_level`` is not ``dnssec``); ``dane`` falls back to
    ``may`` with a warning. The TLS versions are ``smtp_tls_protocols`` at ``may``, else
    ``smtp_tls_mandatory_protocols``, or the policy's ``protocols=``.
    """
    get = lambda name: config.get(name, overrides)  # noqa: E731
    raw = get("smtp_tls_security_level").strip()
    if raw:
        level = tls_level(raw) or "none"
    elif boolean(get("smtp_enforce_tls")):
        level = "verify" if boolean(get("smtp_tls_enforce_peername") or "yes") else "encrypt"
    else:
        level = "may" if boolean(get("smtp_use_tls")) else "none"
    policy = ClientPolicy(level)
    protocols = None
    if tables := split_tables(get("smtp_tls_policy_maps")):
        names = [nexthop.lower()]
        if not nexthop.startswith("["):
            domain = nexthop.lower()
            names += ["." + domain.split(".", i)[-1] for i in range(1, domain.count(".") + 1)]
        where = f'smtp_tls_policy_maps, next-hop destination "{nexthop}"'
        for name in names:
            entry = None
            for table in tables:  # each key in every table, in order (maps_find)
                if table.partition(":")[0] in MISSING_DATABASE["smtp_tls_policy_maps"]:
                    # the table never opened (smtp_client_init): the first lookup fails
                    policy.warnings += [f'warning: {table} lookup error for "{name}"',
                                        f"warning: {where}: policy table lookup error"]
                    policy.failure = CONFIGURATION_PROBLEM
                    return policy
                entry = read_table(table, config.host_dir, config.lab_files, config.generation).get(name)
                if entry is not None:
                    break
            if entry is None:
                continue
            fields = entry.split()
            level = tls_level(fields[0]) or ""
            if not level:
                policy.warnings.append(f'warning: {where}: invalid security level "{fields[0]}"')
                policy.failure = CONFIGURATION_PROBLEM
                return policy
            policy.level = level
            for attribute in fields[1:]:
                key, equals, value = attribute.partition("=")
                if key.lower() == "match" and equals and value:
                    policy.match += value.split(":") if level != "fingerprint" else value.split("|")
                elif key.lower() == "protocols" and equals and value:
                    protocols = value
                else:
                    raise NotModelled(f"the simulated lab does not model the policy attribute {attribute!r} "
                                      "in smtp_tls_policy_maps; the real lab does: "
                                      f"`{real_lab_command(config.generation)}`")
            break
    if policy.level == "fingerprint":
        # postconf -d: md5 below compatibility_level 3.6, sha256 from it (every lab main.cf has 3.6).
        policy.digest = get("smtp_tls_fingerprint_digest").strip().lower() or "sha256"
        if policy.digest not in ("md5", "sha1", "sha256", "sha512"):
            raise NotModelled("the simulated lab does not model smtp_tls_fingerprint_digest = "
                              f"{policy.digest}; the real lab does: `{real_lab_command(config.generation)}`")
        if not policy.match:
            policy.match = [m for m in re.split(r"[\s,]+", get("smtp_tls_fingerprint_cert_match")) if m]
        if not policy.match:
            policy.warnings.append(f"warning: nexthop domain {nexthop}: configured at "
                                   "fingerprint security level, but with no fingerprints to match.")
            policy.failure = CONFIGURATION_PROBLEM
            return policy
    if policy.level in ("dane", "dane-only"):
        dnssec = get("smtp_dns_support_level").strip() == "dnssec" and "dns" in get("smtp_host_lookup")
        if dnssec:
            raise NotModelled("the simulated lab does not model DANE with smtp_dns_support_level = dnssec; "
                              "the real lab has no DNSSEC either")
        policy.warnings.append(f"warning: {nexthop}: {policy.level} configured with dnssec lookups disabled")
        if policy.level == "dane-only":
            policy.failure = CONFIGURATION_PROBLEM
            return policy
        policy.level = "may"
    if policy.level in ("verify", "secure") and not policy.match:
        name = "smtp_tls_verify_cert_match" if policy.level == "verify" else "smtp_tls_secure_cert_match"
        default = "hostname" if policy.level == "verify" else "nexthop, dot-nexthop"
        policy.match = [m for m in re.split(r"[\s,:]+", get(name) or default) if m]
    if policy.level != "none":
        parameter = "smtp_tls_protocols" if policy.level == "may" else "smtp_tls_mandatory_protocols"
        value = protocols if protocols is not None else get(parameter)
        versions = protocol_range(value, parameter)
        if versions is None:
            policy.warnings.append(f'warning: Invalid TLS protocol list "{value}": aborting TLS session')
            policy.failure = CONFIGURATION_PROBLEM
            return policy
        policy.versions = versions
    return policy


def unusable_fingerprints(policy: ClientPolicy) -> list[str]:
    """The fingerprints of a ``fingerprint`` policy that are not a digest of
    ``smtp_tls_fingerprint_digest``'s size, in upper-case hex without colons, as Postfix names them
    in its "unusable TLSA RR" warnings (tls_dane.c; measured with Postfix 3.7.11 and 3.10.13 for
    one fingerprint of 20 bytes with SHA-256: two warnings, then "all fingerprints unusable")."""
    size = hashlib.new(policy.digest).digest_size
    found = []
    for match in policy.match:
        text = match.replace(":", "").upper()
        if len(text) != 2 * size or not re.fullmatch(r"[0-9A-F]*", text):
            found.append(text)
    return found


def judge(der: bytes, anchors: list[x509.Certificate], policy: ClientPolicy,
          target: str) -> tuple[str, tuple[str, str] | None]:
    """How far the smtp client trusts a certificate, and why not further.

    Returns the trust (Untrusted: no chain to a CA of ``anchors``; Trusted: a chain but no
    match; Verified: the level's match) and, when the certificate falls short, tls_verify.c's
    (purpose, reason) for its "certificate verification failed" line: ``("", "untrusted
    issuer /CN=...")``, ``("", "self-signed certificate")``, ``("server", "num=62:hostname
    mismatch")``. ``fingerprint`` compares the certificate's (or its public key's) digest with
    ``smtp_tls_fingerprint_digest`` (SHA-256 in the lab); the names of verify and secure are
    ``hostname`` (the server's name), ``nexthop`` and ``dot-nexthop`` (the next hop and its
    subdomains, here the same host), or names given with match=.
    """
    certificate = x509.Certificate.from_der(der)
    if policy.level == "fingerprint":
        spki = P256_SPKI_PREFIX + certificate.public_point
        digests = {hashlib.new(policy.digest, der).hexdigest(), hashlib.new(policy.digest, spki).hexdigest()}
        unusable = unusable_fingerprints(policy)
        wanted = {m.replace(":", "").lower() for m in policy.match
                  if m.replace(":", "").upper() not in unusable}
        if not wanted:  # "all fingerprints unusable": nothing to match (measured: OpenSSL's num=1)
            return "Untrusted", ("server", "num=1:unspecified certificate verification error")
        if digests & wanted:
            return "Verified", None
        return "Untrusted", ("server", "num=65:no matching DANE TLSA records")
    try:
        x509.verify_chain([certificate], anchors)
    except x509.VerificationError as failure:
        if failure.code in (20, 19):
            return "Untrusted", ("", f"untrusted issuer /CN={certificate.issuer_name}")
        if failure.code == 18:
            return "Untrusted", ("", "self-signed certificate")
        if failure.code == 10:
            return "Untrusted", ("server", "certificate has expired")
        return "Untrusted", ("server", f"num={failure.code}:{failure.message}")
    names = []
    for strategy in policy.match:
        if strategy.lower() in ("hostname", "nexthop"):
            names.append(target)
        elif strategy.lower() == "dot-nexthop":
            names.append("." + target)
        else:
            names.append(strategy)
    for name in names:
        if name.startswith("."):
            if any(n.lower().endswith(name.lower()) for n in certificate.dns_names):
                return "Verified", None
            continue
        try:
            x509.verify_name(certificate, name)
        except x509.VerificationError:
            continue
        return "Verified", None
    return "Trusted", ("server", "num=62:hostname mismatch")


def reply_dsn(reply: smtp_reply.SmtpReply) -> str:
    """The enhanced status code of a reply (RFC 3463) as smtp_chat.c takes it: the reply's own
    ``X.Y.Z`` when its class agrees with the code, else ``X.0.0`` from the code."""
    found = re.match(r"([245])\.\d{1,3}\.\d{1,3}\b", reply.text)
    if found and reply.code and found[1] == str(reply.code)[0]:
        return found[0]
    return f"{max(reply.code // 100, 4)}.0.0" if reply.code else "4.0.0"


def said(reply: smtp_reply.SmtpReply) -> str:
    """A reply as Postfix quotes it in a status: every line with its code, joined by spaces."""
    return " ".join(line.decode("latin-1").rstrip("\r\n") for line in reply.lines)


def ehlo(sock: SocketLike, reader: BinaryIO, name: str) -> list[str]:
    """Send EHLO; the reply's lines after the code, upper-cased (the host name, then the extensions)."""
    sock.sendall(f"EHLO {name}\r\n".encode())
    return [text.upper() for text in smtp_reply.read(reader.readline).texts]
