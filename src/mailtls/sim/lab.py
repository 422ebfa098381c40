"""The simulated lab: the five hosts of ``labs/``, simulated in this Python process.

It runs from the same ``labs/hosts/*`` files as the real lab and keeps the same kind of files
(CA, certificates, users, logs, the wiretap's mode and transcript, ``status.json``) in a
temporary folder, so ``mailtls.lab.connect()`` describes it exactly as it describes a real lab.
What it simplifies is listed on the site's page "What the simulated lab simplifies".
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import re
import secrets
import shutil
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

from mailtls import generations, maillog, runtime, smtp_reply, wiretap
from mailtls.config import LabConfig
from mailtls.errors import LabError
from mailtls.generations import Generation
from mailtls.hosts import HOSTS, SHIPPED_LABS, Host
from mailtls.provision import provision
from mailtls.sim import network, x509
from mailtls.sim import tls as tls_engines
from mailtls.sim.config import CERT_SETTINGS, DovecotConfig, PostfixConfig
from mailtls.sim.imapd import ImapSession, openssl_error
from mailtls.sim.smtpd import Envelope, Recipients, SmtpServerSettings, SmtpSession, new_queue_id
from mailtls.sim.sockets import SocketLike

# The simulated lab is the single lab of a machine, at the real lab's addresses.
SIMULATED = LabConfig()
address = SIMULATED.address

LEVELS_REQUIRING_TLS = ("encrypt", "verify", "secure")
# The packages' full versions, as the servers name themselves in their logs when they start
# (``postconf -d -h mail_version``; ``dovecot --version``), Debian 12 and 13.
POSTFIX_RELEASES = {"3.7": "3.7.11", "3.10": "3.10.13"}
DOVECOT_RELEASES = {"2.3": "v2.3.19.1 (9b53102964)", "2.4": "v2.4.1-4 (7d8c0e5759)"}
LAB_FILES = "/run/mailtls/"  # where the hosts' files name the lab's generated files
# Where OpenSSL raised the error smtpd logs after a failed handshake, by Postfix version (OpenSSL 3.0
# in Debian 12, 3.5 in Debian 13) and ssl.SSLError reason: measured with Postfix 3.7.11 and 3.10.13
# (a TLS 1.0-1.1 client on 587, a clear-text EHLO on 465). Others get no warning line here.
OPENSSL_PLACES = {
    ("3.7", "UNSUPPORTED_PROTOCOL"): "../ssl/statem/statem_srvr.c:1664",
    ("3.7", "WRONG_VERSION_NUMBER"): "../ssl/record/ssl3_record.c:350",
    ("3.10", "UNSUPPORTED_PROTOCOL"): "../ssl/statem/statem_srvr.c:1780",
    ("3.10", "WRONG_VERSION_NUMBER"): "../ssl/record/methods/tlsany_meth.c:77",
}


def tls_summary(tls: Any, resumed: bool = False) -> str:
    """How Postfix describes a TLS session (an ``ssl`` or tlslite one) in its logs and Received headers."""
    name, _, bits = tls.cipher()
    return maillog.tls_summary(tls.version(), name, bits, resumed)


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
        (self.files / "wiretap.mode").write_text("pass\n")
        self.postfix: dict[str, PostfixConfig] = {}
        self.listeners: dict[tuple[str, int], network.Listener] = {}
        self.recipients: dict[str, Recipients] = {}
        for dovecot in self.dovecot.values():  # doveconf reads these files when Dovecot starts
            dovecot.check_files(self.lab_file)
        network.clear()
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
        config = PostfixConfig(host.config_dir(self.labs), self.files, self.generation)
        self.postfix[host.name] = config
        release = POSTFIX_RELEASES.get(self.generation.postfix, self.generation.postfix)
        self.log(host.name, "postfix/postfix-script", maillog.SystemStarting().format())
        self.log(host.name, "postfix/master", maillog.MasterStarted(release).format())
        recipients = self.recipients[host.name] = Recipients(config)
        context = self.server_context(host) if host.certificate != "none" else None
        for port in config.listeners():
            settings = SmtpServerSettings.read(config, port)

            program = config.get("syslog_name", {**config.listeners()[port].overrides,
                                                 "service_name": config.listeners()[port].name}) + "/smtpd"

            def accept(connection: network.Connection, client: str, settings=settings,
                       program=program) -> network.LineServer:
                session = SmtpSession(settings, recipients, client, self.authenticate,
                                      lambda envelope, s: self.receive_mail(host, envelope, s))

                def on_tls(tls: tls_engines.ServerSide) -> None:
                    session.tls_details = tls_summary(tls)

                events = SmtpdLog(self, host, program, client)
                return network.LineServer(connection, session,
                                          lambda send: tls_engines.server_side(context, send),
                                          settings.wrapper, on_tls, events=events)

            self.listen(address(host), port, accept)

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
        config = self.postfix[host.name]
        transport, nexthop = route(config, recipient)
        service = config.service(transport)
        overrides = service.overrides if service else {}
        program = config.get("syslog_name", {**overrides, "service_name": transport}) + "/smtp"
        level, match = client_policy(config, overrides, nexthop)
        target = nexthop.strip("[]")
        target_host = next(h for h in HOSTS if h.name == target)
        where = f"{target}[{address(target_host)}]:25"

        def status(dsn: str, state: str, text: str) -> None:
            self.log(host.name, program,
                     maillog.Delivery(queue_id, recipient, where, "0.01", "0/0/0/0", dsn, state,
                                      text).format())

        sock = network.open_connection(address(target_host), 25, client_address=address(host), timeout=30)
        reader = sock.makefile("rb")
        try:
            smtp_reply.read(reader.readline)
            offered = ehlo(sock, reader, host.name)
            if level != "none" and "STARTTLS" in offered:
                sock.sendall(b"STARTTLS\r\n")
                smtp_reply.read(reader.readline)
                sock, trust, reason = self.client_tls(sock, transport, target, level, match, host, program,
                                                      where)
                reader = sock.makefile("rb")
                if level in ("verify", "secure") and trust != "Verified":
                    status("4.7.5", "deferred", "Server certificate not verified")
                    return
                ehlo(sock, reader, host.name)
            elif level in LEVELS_REQUIRING_TLS:
                status("4.7.4", "deferred",
                       f"TLS is required, but was not offered by host {where.rsplit(':', 1)[0]}")
                return
            for command in (f"MAIL FROM:<{sender}>", f"RCPT TO:<{recipient}>", "DATA"):
                sock.sendall(command.encode() + b"\r\n")
                reply = smtp_reply.read(reader.readline)
                code, text = reply.code, reply.text
                if code >= 400:
                    status(f"{code // 100}.0.0", "deferred" if code < 500 else "bounced",
                           f"host {where} said: {text}")
                    return
            body = b"\r\n".join(b"." + line if line.startswith(b".") else line
                                for line in message.split(b"\r\n"))
            sock.sendall(body.rstrip(b"\r\n") + b"\r\n.\r\n")
            reply = smtp_reply.read(reader.readline)
            code, text = reply.code, reply.text
            status(text.split(" ", 1)[0] if code < 400 else "4.0.0", "sent" if code < 400 else "deferred",
                   f"{code} {text}")
            sock.sendall(b"QUIT\r\n")
        finally:
            sock.close()

    def client_tls(self, sock: SocketLike, transport: str, target: str, level: str, match: str, host: Host,
                   program: str, where: str) -> tuple[Any, str, str]:
        """STARTTLS as Postfix's client does it: handshake first, then judge the certificate."""
        key = f"{transport}&[{target}]"
        context = self.client_contexts.get(key)
        if context is None:  # one per cache entry: a session resumes only with its own context
            context = self.client_contexts[key] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        tls = context.wrap_socket(sock, server_hostname=target, session=self.tls_sessions.get(key))
        resumed = tls.session_reused
        trust, reason = judge(tls.getpeercert(binary_form=True), self.files / "ca.pem", match or target)
        if level in ("verify", "secure") and trust != "Verified":
            self.log(host.name, program, maillog.VerificationFailed(where, reason).format())
        word = "Trusted" if trust == "Verified" and level not in ("verify", "secure") else trust
        self.log(host.name, program, maillog.TlsConnection(word, where, tls_summary(tls, resumed)).format())
        tls.sendall(b"NOOP\r\n")  # a TLS 1.3 session ticket arrives after the handshake
        tls.makefile("rb").readline()
        if tls.session is not None:
            self.tls_sessions[key] = tls.session
        return tls, trust, reason

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
                    return Hangup()
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
        second item). Raises LabError for settings the simulation does not model: a cipher list other
        than the default or the protocols exercise's ``@SECLEVEL=0``, certificate files outside the lab's
        files, no certificate at all.
        """
        if config.ssl == "no":
            return None, None
        cert_name, key_name = CERT_SETTINGS[config.dovecot]
        if not config.cipher_list_modelled():
            raise LabError(f"the simulated lab does not model ssl_cipher_list = {config.ssl_cipher_list}; "
                           "the real lab does: it passes the list to OpenSSL")
        if config.ssl_cert is None or config.ssl_key is None:
            raise LabError(f"the simulated lab does not model a Dovecot with ssl = {config.ssl} and no "
                           f"{cert_name} or {key_name}; the real lab does: set both")
        cert_path, key_path = config.file_of(config.ssl_cert), config.file_of(config.ssl_key)
        if cert_path is None:  # 2.3's ssl_cert without "<": the path itself is read as PEM text
            return None, "Can't load SSL certificate (ssl_cert setting): There is no valid PEM certificate."
        for name, path in ((cert_name, cert_path), (key_name, key_path)):
            if path is None or self.lab_file(path) is None:
                raise LabError(f"the simulated lab does not model {name} = {path or config.ssl_key[0]}; the "
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
        self.write(maillog.TlsConnection("Anonymous", self.client, tls_summary(tls, resumed),
                                         direction="from").format())
        if self.pending == "starttls":
            self.pending = None
            self.count("starttls", True)

    def tls_failed(self, failure: Exception | None) -> None:
        """tls_server.c: ``: -1`` when OpenSSL said why, ``: lost connection`` when the client left."""
        detail = "-1" if failure is not None else "lost connection"
        self.write(maillog.SslAcceptError(self.client, detail).format())
        reason = getattr(failure, "reason", None)
        where = OPENSSL_PLACES.get((self.lab.generation.postfix, reason or ""))
        if where is not None:  # tls_print_errors(): OpenSSL's error queue, one warning a line
            self.write(f"warning: TLS library problem: {openssl_error(reason, '2.3')}:{where}:")
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
        sasl_username=USER``: Dovecot's auth service gives no reason)."""
        self.count("auth", code < 400)
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


class Hangup:
    """A connection the server has already hung up on: whatever arrives is ignored."""

    def received(self, data: bytes) -> None:
        pass

    def hung_up(self) -> None:
        pass


def keys_match(certificate: Path, key: Path) -> bool:
    """True when the key file holds the private key of the certificate file's public key.

    Raises LabError for a key the simulation cannot read (the lab's keys are ECDSA P-256)."""
    from ecdsa import SigningKey

    try:
        signing = SigningKey.from_pem(key.read_text())
    except (ValueError, OSError) as failure:
        raise LabError(f"the simulated lab does not model the key {key.name}: {failure}") from None
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


def client_policy(config: PostfixConfig, overrides: dict[str, str], nexthop: str) -> tuple[str, str]:
    """The security level (and match= names) for a next hop: policy table first, then the level."""
    level = config.get("smtp_tls_security_level", overrides) or "none"
    if config.get("smtp_tls_policy_maps", overrides):
        policy = config.table("smtp_tls_policy_maps", overrides)
        entry = policy.get(nexthop.lower()) or policy.get(nexthop.strip("[]").lower())
        if entry:
            fields = entry.split()
            level = fields[0]
            match = next((f.partition("=")[2].split(":")[0] for f in fields[1:] if f.startswith("match=")),
                         "")
            return level, match
    return level, ""


def judge(der: bytes, ca_file: Path, name: str) -> tuple[str, str]:
    """Untrusted, Trusted (chain to the lab CA) or Verified (chain and name), with OpenSSL's reason."""
    certificate = x509.Certificate.from_der(der)
    try:
        x509.verify_chain([certificate], x509.pem_certificates(ca_file.read_bytes()))
    except x509.VerificationError as failure:
        return "Untrusted", failure.message
    try:
        x509.verify_name(certificate, name)
    except x509.VerificationError:
        return "Trusted", "hostname mismatch"
    return "Verified", ""


def ehlo(sock: SocketLike, reader: BinaryIO, name: str) -> list[str]:
    """Send EHLO; the reply's lines after the code, upper-cased (the host name, then the extensions)."""
    sock.sendall(f"EHLO {name}\r\n".encode())
    return [text.upper() for text in smtp_reply.read(reader.readline).texts]
