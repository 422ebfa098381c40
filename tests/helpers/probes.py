"""What a lab does, observed as a client and its administrator see it: the same code for the real
lab and the simulated one.

Every probe takes a :class:`mailtls.lab.Lab` (as the checker does) and returns observations: a
dict from a name (``smtp 587/starttls``) to a normalised text, so that two labs are compared
observation by observation. What legitimately differs from one run to the next is normalised
away (:func:`normalise`): queue ids, process ids, session ids, timings, file paths; cipher names
are not observed at all (only the TLS version), since the two TLS engines may choose differently.
A probe never raises for what a server does: a refused connection, a closed one, a failed
handshake are observations (``failed: SSLError TLSV1_ALERT_PROTOCOL_VERSION``). An exception of
a kind no client meets against a real server (``AttributeError``...) is observed as
``crash: ...``, which :func:`crashes` lists.

Groups (an entry of the corpus names those it needs, see :mod:`helpers.corpus`):

- ``smtp``: mail.lab.test on 25 and 587 (greeting, EHLO before and after STARTTLS, STARTTLS's
  reply, MAIL and AUTH before TLS, alice's login after it), on 465 (implicit TLS, EHLO, login),
  and STARTTLS on 587 reached by address (the certificates carry the addresses);
- ``imap``: 143 (greeting, capabilities, LOGIN before STARTTLS, STARTTLS, login after) and 993;
- ``tls``: the handshake on 25, 587, 465, 143 and 993 with a client whose highest version is
  TLS 1.0, 1.1, 1.2 or 1.3 (lowest TLS 1.0, OpenSSL's security level 0, as an old client);
  ``tls-smtp`` on Postfix's ports only, ``tls-imap`` on Dovecot's;
- ``relay``: a message through relay.lab.test to each destination of the relay-policy exercise,
  and what the relay's log says of it (status, enhanced status code, reason, trust, version);
- ``log``: the warnings and TLS failures that mail.lab.test's and the relay's Postfix logged
  while the other probes ran;
- ``checker``: the checker's verdict on each criterion of the entry's exercise.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import smtplib
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator

from mailtls import checker, exercises, maillog
from mailtls.lab import Lab

# Seconds a probe waits for a server's answer (the real servers answer in milliseconds; a server that
# does not answer at all, as an smtpd that died as it started, costs this much per probe). For the
# relay's log of a message it waits as the checker does (checker.DELIVERY_WAIT): after some reloads
# the real relay takes over 20 s to try its first delivery (measured: relay-level-verify).
TIMEOUT = 5
MAIL = "mail.lab.test"
RELAY_RECIPIENTS = ("alice@lab.test", "student@legacy.lab.test", "student@selfsigned.lab.test")
LOGGING_HOSTS = ("mail.lab.test", "relay.lab.test")
# What a client meets against a real server: anything else is a crash of the simulation.
CLIENT_ERRORS = (ssl.SSLError, OSError, smtplib.SMTPException, imaplib.IMAP4.error, EOFError, ValueError)
# The handshake's highest versions a client is tried with (its lowest is TLS 1.0).
VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
            "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
TLS_PORTS = {25: "smtp", 587: "smtp", 465: "implicit", 143: "imap", 993: "implicit"}
SMTP_TLS_PORTS, IMAP_TLS_PORTS = (25, 587, 465), (143, 993)

Observations = dict[str, str]

_PATH = re.compile(r"(?<![\w.])/(?:[\w.@+-]+/)+([\w.@+-]+)")
# The simulated lab names the file of labs/ a setting comes from (labs/hosts/mail/debian12/main.cf).
_LABS_PATH = re.compile(r"(?<![\w./])labs/(?:[\w.@+-]+/)+([\w.@+-]+)")


def normalise(text: str) -> str:
    """``text`` without what differs from run to run or from lab to lab.

    Queue ids (``queued as 4dLx...``), process ids (``[1234]``, master's ``pid 1234``), Dovecot's
    session ids, SMTP timings (``(0.01 + 0.02 secs)``), the random part of the lab CA's name (each
    lab makes its own: ``mailtls lab CA 75a4b682``, provision.py) and paths, of which only the file's
    name is kept (each lab keeps its files elsewhere: ``/run/mailtls/``, a namespace's folder, a
    temporary one; the simulated lab names the file in ``labs/``).
    """
    text = re.sub(r"queued as \w+", "queued as <ID>", text)
    text = re.sub(r"\b[0-9A-F]{8,12}: ", "<ID>: ", text)
    text = re.sub(r"\[\d+\]", "[<PID>]", text)
    text = re.sub(r"\bpid \d+\b", "pid <PID>", text)
    text = re.sub(r"\b(mailtls lab CA) [0-9a-f]{8}\b", r"\1 <ID>", text)
    text = re.sub(r"session=<[^>]*>", "session=<SESSION>", text)
    text = re.sub(r"\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)", "(<timing>)", text)
    text = _PATH.sub(r"\1", text)
    text = _LABS_PATH.sub(r"\1", text)
    return text.strip()


# A server that hangs up during the handshake: a reset when the client's ClientHello reached it
# before it closed, the end of the stream when it did not (an EOF, an SSLZeroReturnError or SSLEOFError
# by the Python's ssl options). Which one a client meets is a race on a real network, so it is one outcome.
HUNG_UP = "failed: hung up (reset or end of stream)"
_HANG_UPS = (ConnectionResetError, ssl.SSLZeroReturnError, ssl.SSLEOFError)


def outcome(error: BaseException) -> str:
    """An exception as an observation: ``failed: CLASS REASON`` for what a client meets against a
    real server (:data:`HUNG_UP` for a hang-up), ``failed: REASON`` for the checker's
    :class:`~mailtls.checker.Failed`, ``crash: CLASS: MESSAGE`` for anything else."""
    if isinstance(error, checker.Failed):
        return f"failed: {normalise(str(error))}"
    if isinstance(error, _HANG_UPS):
        return HUNG_UP
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"failed: {type(error).__name__} {error.verify_code} {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"failed: {type(error).__name__} {error.reason or error.args[0]}"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"failed: {type(error).__name__} {error.smtp_code} {normalise(error.smtp_error.decode())}"
    if isinstance(error, CLIENT_ERRORS):
        said = re.sub(r"^b'(.*)'$", r"\1", str(error))
        return f"failed: {type(error).__name__} {normalise(said)}".rstrip()
    return f"crash: {type(error).__name__}: {error}"


def crashes(observations: Observations) -> dict[str, str]:
    """The observations that record a crash (see :func:`outcome`)."""
    return {name: value for name, value in observations.items() if value.startswith("crash:")}


@contextlib.contextmanager
def observing(observed: Observations, name: str) -> Iterator[None]:
    """Record under ``name`` the exception that ends the block, as :func:`outcome` says it."""
    try:
        yield
    except Exception as error:  # every failure is an observation
        observed[name] = outcome(error)


def reply(code: int, text: bytes | str) -> str:
    said = text.decode("latin-1") if isinstance(text, bytes) else text
    return normalise(f"{code} {said}".replace("\n", " | "))


# -- SMTP -----------------------------------------------------------------------------------------


def smtp(lab: Lab) -> Observations:
    """mail.lab.test's SMTP services as a client sees them (see the module's docstring)."""
    found: Observations = {}
    for port in (25, 587):
        with observing(found, f"smtp {port}"):
            found.update(smtp_starttls(lab, port))
    with observing(found, "smtp 465"):
        with smtplib.SMTP_SSL(MAIL, 465, context=lab.ssl_context(), timeout=TIMEOUT) as server:
            found["smtp 465/tls"] = f"handshake ok {server.sock.version()}"
            found["smtp 465/ehlo"] = reply(*server.ehlo("probe.lab.test"))
            with observing(found, "smtp 465/login"):
                found["smtp 465/login"] = reply(*server.login(*checker.alice(lab)))
    with observing(found, "smtp 587 by address"):
        with smtplib.SMTP(lab.address(MAIL), 587, timeout=TIMEOUT) as server:
            server.starttls(context=lab.ssl_context())
            found["smtp 587 by address"] = f"handshake ok {server.sock.version()}"
    return found


def smtp_starttls(lab: Lab, port: int) -> Observations:
    """One port with STARTTLS: before TLS, the STARTTLS reply and handshake, and after TLS."""
    found: Observations = {}
    name = f"smtp {port}"
    server = smtplib.SMTP(timeout=TIMEOUT)
    try:
        found[f"{name}/greeting"] = reply(*server.connect(MAIL, port))
        found[f"{name}/ehlo"] = reply(*server.ehlo("probe.lab.test"))
        found[f"{name}/mail before tls"] = reply(*server.docmd("MAIL", "FROM:<probe@lab.test>"))
        server.docmd("RSET")
        found[f"{name}/auth before tls"] = reply(*server.docmd("AUTH", "PLAIN"))
        if found[f"{name}/auth before tls"].startswith("334"):
            found[f"{name}/auth before tls"] += " / " + reply(*server.docmd("*"))
        code, text = server.docmd("STARTTLS")
        found[f"{name}/starttls"] = reply(code, text)
        if code != 220:
            return found
        with observing(found, f"{name}/tls"):
            server.sock = lab.ssl_context().wrap_socket(server.sock, server_hostname=MAIL)
            server.file = None
            found[f"{name}/tls"] = f"handshake ok {server.sock.version()}"
            found[f"{name}/ehlo after tls"] = reply(*server.ehlo("probe.lab.test"))
            with observing(found, f"{name}/login after tls"):
                found[f"{name}/login after tls"] = reply(*server.login(*checker.alice(lab)))
    finally:
        with contextlib.suppress(Exception):
            server.close()
    return found


# -- IMAP -----------------------------------------------------------------------------------------


def imap(lab: Lab) -> Observations:
    """mail.lab.test's IMAP on 143 (STARTTLS) and 993 (implicit TLS)."""
    found: Observations = {}
    login, password = checker.alice(lab)
    with observing(found, "imap 143"):
        with imaplib.IMAP4(MAIL, 143, timeout=TIMEOUT) as client:
            found["imap 143/greeting"] = normalise(client.welcome.decode("latin-1"))
            found["imap 143/capabilities"] = " ".join(client.capabilities)
            with observing(found, "imap 143/login before tls"):
                status, said = client.login(login, "not-the-password")
                found["imap 143/login before tls"] = f"{status} {said}"
            with observing(found, "imap 143/starttls"):
                imap_starttls(client, lab.ssl_context())
                found["imap 143/starttls"] = f"handshake ok {client.sock.version()}"
                found["imap 143/capabilities after tls"] = " ".join(client.capabilities)
                with observing(found, "imap 143/login after tls"):
                    found["imap 143/login after tls"] = client.login(login, password)[0]
    with observing(found, "imap 993"):
        with imaplib.IMAP4_SSL(MAIL, 993, ssl_context=lab.ssl_context(), timeout=TIMEOUT) as client:
            found["imap 993/tls"] = f"handshake ok {client.sock.version()}"
            found["imap 993/greeting"] = normalise(client.welcome.decode("latin-1"))
            with observing(found, "imap 993/login"):
                found["imap 993/login"] = client.login(login, password)[0]
    return found


def imap_starttls(client: imaplib.IMAP4, context: ssl.SSLContext) -> None:
    """``client.starttls(ssl_context=context)``, with the server's answer read a byte at a time.

    imaplib reads it through a buffered file, which may also take what the server says next (a
    Dovecot that cannot set up TLS sends ``* BYE`` in clear text right after its OK): the handshake
    then meets the end of the stream, or the BYE (WRONG_VERSION_NUMBER), by how the packets
    happened to arrive. Read as :func:`read_line` reads, it is always the BYE. Raises what
    imaplib raises: ``abort`` without STARTTLS in the capabilities, ``error`` for an answer
    other than OK, and the handshake's errors.
    """
    if "STARTTLS" not in client.capabilities:
        raise client.abort("TLS not supported by server")
    tag = client._new_tag()  # type: ignore[attr-defined]
    client.send(tag + b" STARTTLS\r\n")
    while not (answer := read_line(client.sock)).startswith(tag + b" ") and answer:
        pass
    if not answer.startswith(tag + b" OK"):
        raise client.error("Couldn't establish TLS session")
    client.sock = context.wrap_socket(client.sock, server_hostname=MAIL)
    client.file = client.sock.makefile("rb")
    client._tls_established = True  # type: ignore[attr-defined]
    client._get_capabilities()  # type: ignore[attr-defined]


# -- TLS versions -----------------------------------------------------------------------------------


def old_client(highest: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that offers TLS 1.0 up to ``highest``, with SHA-1 allowed, checking nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # ssl warns that TLS 1.0 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = highest
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def read_line(sock: socket.socket) -> bytes:
    """One line from ``sock``, read a byte at a time: what the server says after it stays in the
    socket for the TLS handshake (a buffered reader could take it, and the handshake would meet
    the end of the stream instead of those bytes, by how the packets happened to arrive)."""
    line = b""
    while not line.endswith(b"\n") and (byte := sock.recv(1)):
        line += byte
    return line


def handshake(port: int, context: ssl.SSLContext) -> str:
    """The TLS version agreed on mail.lab.test's ``port``, or why there was none."""
    kind = TLS_PORTS[port]
    try:
        sock = socket.create_connection((MAIL, port), timeout=TIMEOUT)
    except OSError as error:
        return outcome(error)
    try:
        if kind != "implicit":
            greeting = read_line(sock)
            if kind == "smtp":
                sock.sendall(b"EHLO probe.lab.test\r\n")
                while read_line(sock)[3:4] == b"-":
                    pass
                sock.sendall(b"STARTTLS\r\n")
                answer = read_line(sock)
                if not answer.startswith(b"220"):
                    return f"no STARTTLS: {normalise(answer.decode('latin-1'))}"
            else:
                sock.sendall(b"a STARTTLS\r\n")
                answer = read_line(sock)
                if not answer.startswith(b"a OK"):
                    return f"no STARTTLS: {normalise((answer or greeting).decode('latin-1'))}"
        with context.wrap_socket(sock, server_hostname=MAIL) as tls:
            return f"handshake ok {tls.version()}"
    except Exception as error:  # every failure is an observation
        return outcome(error)
    finally:
        sock.close()


def tls_versions(lab: Lab, ports: tuple[int, ...]) -> Observations:
    """The handshake on each of ``ports`` with each client's highest version (see the module's docstring)."""
    found: Observations = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for port in ports:
            for version, highest in VERSIONS.items():
                found[f"tls {port} up to {version}"] = handshake(port, old_client(highest))
    return found


# -- The relay --------------------------------------------------------------------------------------


def relay(lab: Lab) -> Observations:
    """Mail through relay.lab.test to each destination, as its log records the delivery.

    The three messages are handed over first, then their deliveries awaited, each up to
    :data:`checker.DELIVERY_WAIT` after it was sent: a relay that delivers nothing costs that wait
    once, not once a message."""
    found: Observations = {}
    queued: list[tuple[str, str, float]] = []  # (recipient, queue id, when it was sent)
    for recipient in RELAY_RECIPIENTS:
        with observing(found, f"relay to {recipient}"):
            queued.append((recipient, checker.send_to_relay(lab, recipient), time.monotonic()))
    for recipient, queue_id, sent in queued:
        name = f"relay to {recipient}"
        wait = max(0.0, sent + checker.DELIVERY_WAIT - time.monotonic())
        try:
            line, tls_line = checker.relay_delivery(lab, queue_id, recipient, wait)
        except Exception as error:  # every failure is an observation
            found[name] = outcome(error)
            continue
        delivery = maillog.delivery(line)
        found[f"{name}/status"] = f"{delivery.status} {delivery.dsn}"
        found[f"{name}/reason"] = normalise(delivery.reason)
        if tls_line:
            connection = maillog.tls_connection(tls_line)
            found[f"{name}/tls"] = f"{connection.trust} {connection.summary.split(' ')[0]}"
        else:
            found[f"{name}/tls"] = "none"
    return found


# -- Logs ---------------------------------------------------------------------------------------------


def log_text(lab: Lab, host: str) -> str:
    """The host's Postfix log as it is now; "" when it does not exist yet."""
    try:
        return lab.log(host)
    except (FileNotFoundError, KeyError):
        return ""


def log_sizes(lab: Lab) -> dict[str, int]:
    """Where each logging host's log ends now: what :func:`log_news` reads from."""
    return {host: len(log_text(lab, host)) for host in LOGGING_HOSTS}


def settled(lab: Lab, wait: float = 0.3, limit: float = 5.0) -> None:
    """Wait until the logs stop growing for ``wait`` s (Postfix's logging runs behind its servers).

    The simulated servers log as they answer: their logs are settled at once."""
    if lab.backend == "sim":
        return
    deadline = time.monotonic() + limit
    sizes = log_sizes(lab)
    while time.monotonic() < deadline:
        time.sleep(wait)
        now = log_sizes(lab)
        if now == sizes:
            return
        sizes = now


# Log lines the comparison leaves out:
# - about the machine, not the lab's files: a container's file system clock a second ahead of its
#   own clock (Postfix's cleanup, seen on containers-debian13 now and then), and, on the native lab,
#   each new smtpd's lookups in Debian's default alias_maps (hash:/etc/aliases, nis:mail.aliases),
#   which its hosts do not have;
# - Postfix 3.10's "non-SMTP command" warnings when a TLS client meets a port without TLS
#   (smtpd_forbidden_commands): they quote the ClientHello's random bytes, and 3.10.13 logged them
#   for some of the probes' connections and not for others.
LEFT_OUT = re.compile(r"file system clock is \d+ seconds? ahead of local clock|"
                      r"resetting file time stamps - this hurts performance|"
                      r"error: open database \S*aliases\.db: No such file or directory|"
                      r"warning: dict_nis_init: NIS domain name not set - NIS lookups disabled|"
                      r"warning: non-SMTP command from \S+: \\026\\003")


def log_news(lab: Lab, since: dict[str, int]) -> Observations:
    """The warnings, errors and certificate failures each host logged after ``since``, normalised,
    one observation per host, in order of first appearance (without :data:`LEFT_OUT`)."""
    settled(lab)
    found: Observations = {}
    for host in LOGGING_HOSTS:
        lines = log_text(lab, host)[since.get(host, 0):].splitlines()
        kept: list[str] = []
        for line in lines:
            parsed = maillog.LogLine.parse(line)
            text = parsed.text if parsed else line
            if LEFT_OUT.search(text):
                continue
            if (re.search(r"\b(warning|error|fatal|panic):", text)
                    or maillog.VerificationFailed.parse(text)
                    or "SSL_accept error" in text or "TLS library problem" in text):
                program = parsed.program if parsed else ""
                said = normalise(f"{program}: {text}")
                if said not in kept:
                    kept.append(said)
        found[f"log {host}"] = "\n".join(kept) or "nothing"
    return found


# -- The checker ----------------------------------------------------------------------------------


def verdicts(lab: Lab, exercise_name: str) -> tuple[Observations, dict[str, str]]:
    """The checker's verdict per criterion of the exercise (observations), and its details (not
    compared: they name versions and ids)."""
    found: Observations = {}
    details: dict[str, str] = {}
    try:
        results = checker.check(exercises.find(exercise_name), lab)
    except Exception as error:  # every failure is an observation
        return {"checker": outcome(error)}, {}
    for result in results:
        found[f"checker/{result.criterion}"] = "passed" if result.passed else "failed"
        details[f"checker/{result.criterion}"] = result.detail
    return found, details


GROUPS: dict[str, Callable[[Lab], Observations]] = {
    "smtp": smtp, "imap": imap, "relay": relay,
    "tls": lambda lab: tls_versions(lab, SMTP_TLS_PORTS + IMAP_TLS_PORTS),
    "tls-smtp": lambda lab: tls_versions(lab, SMTP_TLS_PORTS),
    "tls-imap": lambda lab: tls_versions(lab, IMAP_TLS_PORTS),
}


def observe(lab: Lab, groups: tuple[str, ...] | list[str], exercise: str | None = None
            ) -> tuple[Observations, dict[str, str]]:
    """Run the probes of ``groups`` (and the checker on ``exercise``) on a running lab.

    Returns the observations and the details that are shown but not compared (the checker's
    reasons). ``log`` is observed around all the others. Raises ValueError for an unknown group.
    """
    unknown = set(groups) - set(GROUPS) - {"log", "checker"}
    if unknown:
        raise ValueError(f"unknown probes: {sorted(unknown)}")
    since = log_sizes(lab)
    found: Observations = {}
    details: dict[str, str] = {}
    for group in groups:
        if group in GROUPS:
            found.update(GROUPS[group](lab))
    if "checker" in groups and exercise is not None:
        verdict, details = verdicts(lab, exercise)
        found.update(verdict)
    if "log" in groups:
        found.update(log_news(lab, since))
    return found, details
