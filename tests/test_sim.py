"""The simulated lab: the notebooks run on it, it never crashes, and it answers as the real servers do.

- Every notebook, in both languages, runs against the simulated lab (no root, no engine needed).
- Property-based tests feed the simulated servers random input: they always answer, never raise.
- Both generations are simulated (Debian 13: Postfix 3.10, Dovecot 2.4; Debian 12: Postfix 3.7,
  Dovecot 2.3), and each one's ``dovecot.conf`` is refused by the other's Dovecot, with the words
  the real ``doveconf`` says (compared with it where its binaries are on this machine).
- A differential test plays the same scripted conversations against the real lab of each
  generation and the simulated one of the same generation and compares, step by step, reply
  codes, enhanced status codes and texts, capability lists and TLS success or failure. Every
  step must match, except the differences listed in ``KNOWN_DIFFERENCES`` (the site's page on
  the simulated lab lists the same ones).
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import os
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import LANGUAGES, ROOT, notebook_names, run_notebook
from mailtls import generations, maillog, smtp_reply
from mailtls.config import LabConfig
from mailtls.generations import BOOKWORM, GENERATIONS, TRIXIE, Generation
from mailtls.hosts import MAIL, SHIPPED_LABS, host

NAMES = notebook_names()


# -- The notebooks, on the simulated lab ----------------------------------------------------------


@pytest.mark.parametrize("engine", ["ssl", "tlslite"])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_simulated_lab(name: str, language: str, engine: str, monkeypatch) -> None:
    """With the ``ssl`` module, as in CPython, and with tlslite-ng, as in the browser."""
    monkeypatch.setenv("MAILTLS_BACKEND", "sim")  # the kernel inherits it
    monkeypatch.setenv("MAILTLS_SIM_TLS", engine)
    _, first_output = run_notebook(language, name, "the simulated lab")
    assert "lab on the sim backend" in first_output


# -- Random input never crashes the simulated servers ------------------------------------------


_sim_labs: dict[int, object] = {}


def simulated_lab_of(generation: Generation, tmp_path_factory: pytest.TempPathFactory):
    """The simulated lab of ``generation`` (one of each per test run), the one its network reaches
    now; reachable only through ``network.open_connection``."""
    from mailtls.sim.lab import SimLab

    saved = socket.create_connection
    lab = _sim_labs.get(generation.debian)
    if lab is None:
        lab = _sim_labs[generation.debian] = SimLab(files=tmp_path_factory.mktemp(f"sim-{generation.folder}"),
                                                     generation=generation)
    else:
        lab.activate()
    socket.create_connection = saved  # the real lab's tests in this run must reach the real lab
    return lab


@pytest.fixture(params=GENERATIONS, ids=lambda g: g.folder)
def sim_lab(request, tmp_path_factory):
    """A simulated lab of each generation in turn."""
    from mailtls.sim import network

    yield simulated_lab_of(request.param, tmp_path_factory)
    network.clear()


def smtp_session(sim_lab, host: str = "mail.lab.test", port: int = 587):
    from mailtls.sim.smtpd import Recipients, SmtpServerSettings, SmtpSession

    config = sim_lab.postfix[host]
    return SmtpSession(SmtpServerSettings.read(config, port), Recipients(config), "198.18.0.1",
                       sim_lab.authenticate, lambda envelope, session: "QUEUEID")


lines = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"EHLO x", b"HELO", b"MAIL FROM:<a@lab.test>", b"RCPT TO:<alice@lab.test>", b"DATA",
                     b".", b"AUTH PLAIN", b"AUTH LOGIN", b"AUTH PLAIN !!!", b"STARTTLS", b"RSET", b"QUIT",
                     b"*", b"a LOGIN alice x", b"b AUTHENTICATE PLAIN", b"b AUTHENTICATE LOGIN", b"YQ==",
                     b"c SELECT INBOX",
                     b"d FETCH 1 (RFC822)", b"x" * 5000]),
).map(lambda line: line + b"\r\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lines, max_size=30), st.sampled_from([25, 587, 465]), st.booleans())
def test_smtpd_answers_any_input(sim_lab, conversation: list[bytes], port: int, tls: bool) -> None:
    session = smtp_session(sim_lab, port=port)
    session.tls_active = session.tls_active or tls
    assert re.fullmatch(rb"220 .*\r\n", session.greeting())
    for line in conversation:
        reply = session.receive(line)
        if reply is None:
            assert session.data is not None  # only a message in progress is answered at its end
            continue
        assert re.fullmatch(rb"(\d{3}-.*\r\n)*\d{3}( .*)?\r\n", reply.data, re.DOTALL), reply.data
        if reply.close:
            break


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(lines, max_size=30), st.sampled_from([143, 993]))
def test_imapd_answers_any_input(sim_lab, conversation: list[bytes], port: int) -> None:
    from mailtls.sim.imapd import ImapSession

    session = ImapSession(sim_lab.dovecot["mail.lab.test"], port, sim_lab.authenticate, sim_lab.mailbox)
    assert session.greeting().startswith(b"* OK [CAPABILITY ")
    for line in conversation:
        reply = session.receive(line)
        assert (reply.data.endswith(b"\r\n") and reply.data[:1] in (b"*", b"+")
                or re.match(rb"[A-Za-z0-9.]+ ", reply.data))
        if reply.close:
            break


def greeted_and_ehlo(sock) -> BinaryIO:
    """Read a simulated SMTP server's greeting, send EHLO and read its whole reply; the reader."""
    reader = sock.makefile("rb")
    smtp_reply.read(reader.readline)
    sock.sendall(b"EHLO x\r\n")
    smtp_reply.read(reader.readline)
    return reader


def test_commands_pipelined_with_starttls_are_discarded(sim_lab) -> None:
    """CVE-2011-0411: what the client sent in clear after STARTTLS must not run inside TLS."""
    from mailtls.sim import network

    context = ssl.create_default_context(cafile=sim_lab.files / "ca.pem")
    with network.open_connection("198.18.0.10", 587, timeout=10) as sock:
        reader = greeted_and_ehlo(sock)
        sock.sendall(b"STARTTLS\r\nRSET\r\n")  # RSET rides along in clear
        assert reader.readline().startswith(b"220 2.0.0")
        tls = context.wrap_socket(sock, server_hostname="mail.lab.test")
        tls.sendall(b"NOOP\r\n")
        assert tls.makefile("rb").readline() == b"250 2.0.0 Ok\r\n"  # the answer to NOOP, not to RSET


@pytest.mark.parametrize("engine", ["ssl", "tlslite"])
def test_a_context_that_verifies_nothing_accepts_any_certificate(sim_lab, engine: str, request) -> None:
    """What ``starttls()`` without a context does, with either engine, as CPython does on the real lab.

    ``ssl._create_stdlib_context()`` (``CERT_NONE``, no host name check) completes the handshake
    with the self-signed ``selfsigned.lab.test`` and with ``mitm.lab.test``, which shows
    ``mail.lab.test``'s certificate; a context with the lab's CA refuses them with OpenSSL's
    codes 18 and 62.
    """
    from mailtls.sim import network, tls

    previous = tls.use(engine)
    request.addfinalizer(lambda: tls.use(previous))

    def starttls(name: str, port: int, context: ssl.SSLContext):
        sock = network.open_connection(LabConfig().address(host(name)), port, timeout=10)
        reader = greeted_and_ehlo(sock)
        sock.sendall(b"STARTTLS\r\n")
        assert reader.readline().startswith(b"220 2.0.0")
        try:
            return context.wrap_socket(sock, server_hostname=name)
        except ssl.SSLError:
            sock.close()
            raise

    lab_context = ssl.create_default_context(cafile=str(sim_lab.files / "ca.pem"))
    refusals = []
    for name, port in (("selfsigned.lab.test", 25), ("mitm.lab.test", 587)):
        unverified = starttls(name, port, ssl._create_stdlib_context())
        assert (unverified.version(), unverified.getpeercert()) == ("TLSv1.3", {})
        assert len(unverified.getpeercert(binary_form=True)) > 0  # a certificate was shown, not checked
        unverified.close()
        with pytest.raises(ssl.SSLCertVerificationError) as refused:
            starttls(name, port, lab_context)
        refusals.append((refused.value.verify_code, refused.value.verify_message))
    assert refusals == [(18, "self-signed certificate"),
                        (62, "Hostname mismatch, certificate is not valid for 'mitm.lab.test'.")]


def test_the_relay_logs_what_the_checker_reads(sim_lab) -> None:
    """The simulated relay's log, read with :mod:`mailtls.maillog` as the checker reads the real one.

    Every line it writes is a Postfix line of a kind the module knows; a delivery through it is
    found by queue id and recipient, with its status and the TLS connection logged before it.
    """
    from mailtls.sim import network

    with network.open_connection(LabConfig().address(host("relay.lab.test")), 25, timeout=10) as sock:
        reader = greeted_and_ehlo(sock)
        codes = []
        for command in (b"MAIL FROM:<checker@relay.lab.test>", b"RCPT TO:<alice@lab.test>", b"DATA",
                        b"Subject: log\r\n\r\nA test.\r\n."):
            sock.sendall(command + b"\r\n")
            reply = smtp_reply.read(reader.readline)
            codes.append(reply.code)
    assert codes == [250, 250, 354, 250]
    queue_id = reply.text.rpartition(" ")[2]
    lines = sim_lab.log_file("relay.lab.test").read_text().splitlines()
    kinds = (maillog.QueueActive, maillog.Delivery, maillog.TlsConnection, maillog.VerificationFailed,
             maillog.SystemStarting, maillog.MasterStarted, maillog.ClientConnect, maillog.ClientDisconnect,
             maillog.LostConnection, maillog.SslAcceptError)
    unread = [line for line in lines
              if (parsed := maillog.LogLine.parse(line)) is None
              or not any(kind.parse(parsed.text) for kind in kinds)]
    assert lines and not unread
    number = maillog.find_delivery(lines, queue_id, "alice@lab.test")
    assert number is not None
    delivery = maillog.delivery(lines[number])
    assert ((delivery.status, delivery.dsn, delivery.reason.split(" ")[:2])
            == ("sent", "2.0.0", ["250", "2.0.0"]))
    tls = maillog.tls_before(lines, number)
    assert tls is not None and maillog.tls_connection(lines[tls]).where == delivery.relay
    assert maillog.LogLine.parse(lines[tls]).process == maillog.LogLine.parse(lines[number]).process


# -- The same conversations, real and simulated ---------------------------------------------------


@dataclass
class Scenario:
    name: str
    host: str
    port: int
    steps: list[str]  # lines to send; "{alice}" and "{plain}" are filled in
    implicit_tls: bool = False


SMTP_MESSAGE = ["Subject: fidelity", "", "Hello.", "."]
SCENARIOS = [
    Scenario("mx in clear", "mail.lab.test", 25, [
        "EHLO x", "MAIL FROM:<>", "MAIL FROM:<a@example.org>", "RCPT TO:<x@example.org>",
        "RCPT TO:<nobody@lab.test>", "RCPT TO:<alice@lab.test>", "RCPT TO:<alice+x@lab.test>", "RSET", "MAIL",
        "NOOP", "AUTH PLAIN", "VRFY alice", "FOO", "DATA", "HELO x", "QUIT"]),
    Scenario("mx with STARTTLS", "mail.lab.test", 25, [
        "EHLO x", "STARTTLS", "EHLO x", "STARTTLS", "AUTH PLAIN", "MAIL FROM:<a@example.org>",
        "RCPT TO:<alice@lab.test>", "DATA", *SMTP_MESSAGE, "QUIT"]),
    Scenario("submission before TLS", "mail.lab.test", 587, [
        "EHLO x", "AUTH PLAIN {plain}", "MAIL FROM:<a@lab.test>", "RCPT TO:<a@lab.test>", "DATA", "RSET",
        "NOOP", "HELO x", "VRFY a", "QUIT"]),
    Scenario("submission after STARTTLS", "mail.lab.test", 587, [
        "EHLO x", "STARTTLS", "EHLO x", "AUTH PLAIN !!!", "AUTH FOO", "AUTH LOGIN", "*",
        "MAIL FROM:<a@lab.test>", "RCPT TO:<alice@lab.test>", "RSET", "AUTH PLAIN {plain}",
        "AUTH PLAIN {plain}", "MAIL FROM:<{alice}>", "RCPT TO:<someone@example.org>", "RCPT TO:<{alice}>",
        "DATA", *SMTP_MESSAGE, "QUIT"]),
    Scenario("submissions (implicit TLS)", "mail.lab.test", 465, [
        "EHLO x", "MAIL FROM:<{alice}>", "RCPT TO:<{alice}>", "AUTH LOGIN", "{login64}", "{password64}",
        "MAIL FROM:<{alice}>", "RCPT TO:<{alice}>", "QUIT"], implicit_tls=True),
    Scenario("legacy without TLS", "legacy.lab.test", 25, [
        "EHLO x", "STARTTLS", "MAIL FROM:<a@example.org>", "RCPT TO:<x@legacy.lab.test>",
        "RCPT TO:<x@lab.test>", "DATA", *SMTP_MESSAGE, "QUIT"]),
    Scenario("self-signed", "selfsigned.lab.test", 25, ["EHLO x", "STARTTLS", "EHLO x"]),
    Scenario("relay", "relay.lab.test", 25, [
        "EHLO x", "MAIL FROM:<a@example.org>", "RCPT TO:<x@example.org>", "RCPT TO:<none@legacy.lab.test>",
        "QUIT"]),
    Scenario("imap on 143", "mail.lab.test", 143, [
        "a CAPABILITY", "b LOGIN {alice} x", "c AUTHENTICATE PLAIN", "c2 AUTHENTICATE LOGIN",
        "c3 AUTHENTICATE FOO", "d FOO", "e NOOP", "f SELECT INBOX",
        "g STARTTLS", "h CAPABILITY", "i LOGIN {alice} wrong", "j LOGIN {alice} {password}", "k NOOP",
        "l LOGOUT"]),
    Scenario("imaps on 993", "mail.lab.test", 993, [
        "a CAPABILITY", "b AUTHENTICATE PLAIN", "{plain}", "c LOGOUT"], implicit_tls=True),
    Scenario("over-long SMTP lines", "mail.lab.test", 25, [
        "EHLO x", f"MAIL FROM:<{'x' * 3000}@lab.test>", "NOOP", "MAIL FROM:<a@example.org>",
        f"RCPT TO:<{'x' * 3000}@lab.test>", "x" * 3000, "NOOP", "QUIT"]),
    Scenario("bad base64 in AUTH", "mail.lab.test", 587, [
        "EHLO x", "STARTTLS", "EHLO x", "AUTH PLAIN", "!!!", "AUTH LOGIN", "bad!", "AUTH LOGIN", "YQ==", "*",
        "QUIT"]),
    Scenario("over-long IMAP line", "mail.lab.test", 143, ["a NOOP", f"b {'x' * 3000}", "c NOOP"]),
    Scenario("IMAP mistakes", "mail.lab.test", 993, [
        "a AUTHENTICATE PLAIN", "!!!", "b AUTHENTICATE PLAIN", "*", "b2 AUTHENTICATE LOGIN", "*",
        "b3 AUTHENTICATE FOO", "c LOGIN", "d SELECT INBOX", "e LOGOUT"], implicit_tls=True),
    Scenario("IMAP LOGIN mechanism", "mail.lab.test", 993, [
        "a AUTHENTICATE LOGIN", "{login64}", "{password64}", "b LOGOUT"], implicit_tls=True),
]

# (scenario, step) -> why the simulated lab answers differently. Keep in step with the site's page
# "What the simulated lab simplifies".
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {}


def converse(open_socket: Callable[[str, int], socket.socket], context: ssl.SSLContext, scenario: Scenario,
             user: tuple[str, str]) -> list[tuple[str, str]]:
    """Play a scenario; returns (step, normalised answer) pairs, the greeting first."""
    login, password = user
    fill = {"alice": login, "password": password,
            "plain": base64.b64encode(f"\0{login}\0{password}".encode()).decode(),
            "login64": base64.b64encode(login.encode()).decode(),
            "password64": base64.b64encode(password.encode()).decode()}
    imap = scenario.port in (143, 993)
    sock = open_socket(scenario.host, scenario.port)
    sock.settimeout(10)
    if scenario.implicit_tls:
        sock = context.wrap_socket(sock, server_hostname=scenario.host)
    reader = sock.makefile("rb")

    def answer(tag: str | None) -> str:
        lines = []
        while True:
            try:
                line = reader.readline()
            except TimeoutError:
                return "\n".join(lines + ["<no answer>"])
            except OSError:  # reset: the server closed with our data unread
                line = b""
            if not line:
                return "\n".join(lines + ["<closed>"])
            lines.append(line.decode("latin-1").rstrip("\r\n"))
            if imap and (tag is None or line.startswith(f"{tag} ".encode()) or line.startswith(b"+ ")):
                break
            if not imap and not smtp_reply.is_continued(line):
                break
        return normalise("\n".join(lines))

    said = [("greeting", answer(None))]
    in_data = False
    for step in scenario.steps:
        line = step.format(**fill)
        try:
            sock.sendall(line.encode() + b"\r\n")
        except OSError:  # the server hung up: both must have
            said.append((step, "<closed>"))
            break
        tag = line.split(" ")[0] if imap and " " in line else None
        if not imap and in_data and line != ".":
            continue
        reply = answer(tag)
        said.append((step, reply))
        in_data = not imap and reply.startswith("354")
        if not imap and line == ".":
            in_data = False
        if (line.upper() == "STARTTLS" and reply.startswith("220")) or (imap and "Begin TLS" in reply):
            try:
                sock = context.wrap_socket(sock, server_hostname=scenario.host)
                reader = sock.makefile("rb")
                said.append(("TLS", "handshake ok"))
            except ssl.SSLCertVerificationError as error:
                said.append(("TLS", f"handshake failed: {error.verify_message}"))
                break
    sock.close()
    return said


def normalise(text: str) -> str:
    text = re.sub(r"queued as \w+", "queued as <ID>", text)
    text = re.sub(r"\(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)", "(<timing>)", text)
    return text


@pytest.mark.lab
@pytest.mark.parametrize("engine", ["ssl", "tlslite"])
def test_the_simulated_lab_answers_as_the_real_one(lab, engine: str, record_property, request,
                                                   tmp_path_factory) -> None:
    """Fidelity with either TLS engine: the ``ssl`` module (CPython) or tlslite-ng (the browser's).

    The real lab of each generation (``lab.debian``) against the simulated lab of the same one.
    """
    from mailtls.sim import network, tls

    sim_lab = simulated_lab_of(generations.get(lab.debian), tmp_path_factory)
    request.addfinalizer(network.clear)
    previous = tls.use(engine)
    request.addfinalizer(lambda: tls.use(previous))

    user = lab.user("alice")
    real_context = ssl.create_default_context(cafile=str(lab.ca_file))
    sim_context = ssl.create_default_context(cafile=str(sim_lab.files / "ca.pem"))
    sim_user = next((login, password) for login, password in sim_lab.passwords.items()
                    if login.startswith("alice"))
    compared = matched = 0
    mismatches = []
    for scenario in SCENARIOS:
        real = converse(lambda host, port: socket.create_connection((lab.address(host), port), timeout=10),
                        real_context, scenario, (user.login, user.password))
        simulated = converse(lambda host, port: network.open_connection(lab.address(host), port, timeout=10),
                             sim_context, scenario, sim_user)
        for (step, real_reply), (_, sim_reply) in zip(real, simulated, strict=False):
            compared += 1
            if real_reply == sim_reply or (scenario.name, step) in KNOWN_DIFFERENCES:
                matched += real_reply == sim_reply
                continue
            mismatches.append(f"{scenario.name} / {step[:60]}:\n"
                              f"  real: {real_reply!r}\n  sim:  {sim_reply!r}")
        assert len(real) == len(simulated), f"{scenario.name}: the conversations differ in length"
    record_property("fidelity", f"{matched}/{compared}")
    print(f"\nfidelity on the {lab.backend_name} lab (Debian {lab.debian}) with {engine}: "
          f"{matched} of {compared} steps match")
    assert not mismatches, "\n".join(mismatches)
    assert os.environ.get("MAILTLS_BACKEND") != "sim"


# -- Each generation's servers, from their own binaries --------------------------------------------


def server_names_tool():
    """``tools/server_names.py``, which asks the real binaries for their setting names."""
    spec = importlib.util.spec_from_file_location("server_names", ROOT / "tools" / "server_names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def binaries(generation: Generation):
    """How to run ``generation``'s postconf and doveconf here (see the tool); skips without them."""
    run = server_names_tool().runner(generation)
    if run is None:
        pytest.skip(f"no {generation.label} binaries on this machine (no {generation.host_image})")
    return run


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_the_setting_names_are_the_binaries(generation: Generation) -> None:
    """The package's name lists are what ``postconf -d`` and ``doveconf`` of that generation say now."""
    tool = server_names_tool()
    for name, found in tool.lists(generation, binaries(generation)).items():
        assert (tool.NAMES / name).read_text().splitlines() == found, \
            f"run tools/server_names.py: {name} changed"


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_postfix_defaults_are_the_binaries(generation: Generation) -> None:
    """Every default the simulation uses is ``postconf -d``'s, for either Postfix (the few that
    are expressions there are given evaluated; the expression must still name the value)."""
    from mailtls.sim.config import EVALUATED_DEFAULTS, POSTFIX_DEFAULTS

    tool = server_names_tool()
    text = tool.output(binaries(generation), "postconf", ["-d", *POSTFIX_DEFAULTS])
    real = {name.strip(): value.strip()
            for name, _, value in (line.partition("=") for line in text.splitlines())}
    assert set(real) == set(POSTFIX_DEFAULTS)
    differ = {n: (v, real[n]) for n, v in POSTFIX_DEFAULTS.items()
              if v != real[n] and n not in EVALUATED_DEFAULTS}
    assert not differ
    assert all(POSTFIX_DEFAULTS[n] in real[n] or real[n] == "$virtual_mailbox_maps"
               for n in EVALUATED_DEFAULTS)


def test_the_lab_s_postfix_settings_exist_in_both_generations() -> None:
    """Every main.cf name and master.cf ``-o`` name of the lab's hosts is a parameter of Postfix 3.7
    and of 3.10 (``postconf -d``'s lists); a misspelt or removed name would be silently unused."""
    from mailtls.sim.config import read_main_cf, read_master_cf, setting_names

    for generation in GENERATIONS:
        known = setting_names("postfix", generation.postfix)
        unknown = []
        for folder in sorted((SHIPPED_LABS / "hosts").iterdir()):
            main = generations.host_file(folder, "main.cf", generation)
            master = generations.host_file(folder, "master.cf", generation)
            names = set(read_main_cf(main.read_text())) if main.exists() else set()
            for service in read_master_cf(master.read_text()) if master.exists() else []:
                names |= set(service.overrides)
            unknown += [f"{folder.name}: {n}" for n in sorted(names - known)]
        assert not unknown, f"{generation.label}: {unknown}"


VERSION_LINES = "dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
# Files for doveconf, in either language: each generation's Dovecot accepts or refuses each one.
DOVECONF_CASES = {
    "the lab's 2.4 file": (SHIPPED_LABS / "hosts" / "mail" / "debian13" / "dovecot.conf").read_text(),
    "the lab's 2.3 file": (SHIPPED_LABS / "hosts" / "mail" / "debian12" / "dovecot.conf").read_text(),
    "2.4 settings without the version first": "ssl = yes\n",
    "the version after a comment and a setting": "# TLS\n\nssl = yes\n" + VERSION_LINES,
    "no storage version": "dovecot_config_version = 2.4.0\nssl = yes\n",
    "2.3's certificate": VERSION_LINES + "ssl_cert = </etc/ssl/certs/x.pem\n",
    "2.3's disable_plaintext_auth": VERSION_LINES + "disable_plaintext_auth = yes\n",
    "2.3's mail_location": VERSION_LINES + "mail_location = maildir:~/Maildir\n",
    "a passdb without a name": VERSION_LINES + "passdb {\n  driver = passwd-file\n}\n",
    "2.3's args in a named passdb": VERSION_LINES + "passdb passwd-file {\n  args = /run/users\n}\n",
    "2.4's fields": VERSION_LINES + "userdb static {\n  fields {\n    uid = mail\n  }\n}\n",
    "2.3's address in a listener": VERSION_LINES + "service imap-login {\n  inet_listener imap {\n"
                                                   "    address = 127.0.0.1\n  }\n}\n",
    "a misspelt service setting": VERSION_LINES + "service imap-login {\n  proces_limit = 1\n}\n",
    "an unknown section": VERSION_LINES + "foo {\n}\n",
    "a misspelt setting in a protocol": VERSION_LINES + "protocol imap {\n  imap_capabilty = x\n}\n",
    "2.4's names": VERSION_LINES + "ssl_server_cert_file = /x.pem\nauth_allow_cleartext = yes\n",
    "2.3: a named passdb": "passdb passwd-file {\n  driver = passwd-file\n}\n",
    "2.3: 2.4's fields": "userdb {\n  driver = static\n  fields {\n    uid = 8\n  }\n}\n",
    "2.3: 2.4's listen in a listener": "service imap-login {\n  inet_listener imap {\n    listen = 1.2.3.4\n"
                                        "  }\n}\n",
    "2.3: auth_allow_cleartext": "ssl = yes\nauth_allow_cleartext = no\n",
    "2.3: an unknown section": "foo {\n}\n",
    "2.3: a misspelt setting in a protocol": "protocol imap {\n  imap_capabilty = x\n}\n",
    "2.3: the old names": "ssl_cert = </x.pem\ndisable_plaintext_auth = no\nmail_location = maildir:~/M\n",
}


def sim_verdict(text: str, generation: Generation, folder: Path) -> str:
    """What the simulated Dovecot says of a file: ``ok``, or doveconf's Fatal line (file: FILE).

    NotModelled comes after doveconf's checks, once the whole file passed them: doveconf's
    verdict is then ``ok`` (whether the simulation models the settings is tests/test_sim_settings.py's).
    """
    from mailtls.sim.config import DovecotConfig, DovecotRefused, NotModelled

    path = folder / "dovecot.conf"
    path.write_text(text)
    try:
        DovecotConfig.read(path, generation)
    except DovecotRefused as refusal:
        return str(refusal).replace(str(path), "FILE")
    except NotModelled:
        return "ok"
    return "ok"


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_the_simulated_dovecot_refuses_what_doveconf_refuses(generation: Generation, tmp_path) -> None:
    """Each file of DOVECONF_CASES through the real ``doveconf -n -c FILE`` of the generation and
    through the simulation: the same verdict, word for word."""
    run = binaries(generation)
    differ = []
    for name, text in DOVECONF_CASES.items():
        done = run("doveconf", ["-n"], text)
        fatal = [line for line in done.stderr.splitlines() if "Fatal:" in line]
        real = re.sub(r"file \S+ line", "file FILE line", fatal[0]) if fatal else "ok"
        assert (done.returncode == 0) == (real == "ok"), done.stderr
        simulated_ = sim_verdict(text, generation, tmp_path)
        if simulated_ != real:
            differ.append(f"{name}:\n  real: {real}\n  sim:  {simulated_}")
    assert not differ, "\n".join(differ)


def test_each_generation_refuses_the_other_s_dovecot_conf(tmp_path) -> None:
    """Dovecot 2.4 refuses a 2.3 file at its first setting, 2.3 refuses 2.4's first line (measured
    with doveconf 2.4.1 and 2.3.19.1: the cases above), and so does the simulated mail host."""
    from mailtls.sim.config import DovecotRefused
    from mailtls.sim.lab import SimLab

    assert sim_verdict(DOVECONF_CASES["the lab's 2.3 file"], TRIXIE, tmp_path) == (
        "doveconf: Fatal: Error in configuration file FILE line 10: "
        "The first setting must be dovecot_config_version")
    assert sim_verdict(DOVECONF_CASES["the lab's 2.4 file"], BOOKWORM, tmp_path) == (
        "doveconf: Fatal: Error in configuration file FILE line 12: Unknown setting: dovecot_config_version")
    assert sim_verdict(DOVECONF_CASES["the lab's 2.4 file"], TRIXIE, tmp_path) == "ok"
    assert sim_verdict(DOVECONF_CASES["the lab's 2.3 file"], BOOKWORM, tmp_path) == "ok"
    labs = tmp_path / "labs"
    (labs / "hosts").mkdir(parents=True)
    for folder in (SHIPPED_LABS / "hosts").iterdir():
        (labs / "hosts" / folder.name).symlink_to(folder)
    mail = labs / "hosts" / "mail"
    mail.unlink()
    (mail / "debian13").mkdir(parents=True)
    for item in (SHIPPED_LABS / "hosts" / "mail").iterdir():
        if item.is_file():
            (mail / item.name).symlink_to(item)
    (mail / "debian13" / "dovecot.conf").write_text(DOVECONF_CASES["the lab's 2.3 file"])
    with pytest.raises(DovecotRefused) as refused:
        SimLab(labs, tmp_path / "files", generation=TRIXIE)
    assert str(refused.value) == ("doveconf: Fatal: Error in configuration file "
                                  f"{mail / 'debian13' / 'dovecot.conf'} line 10: "
                                  "The first setting must be dovecot_config_version")


# Measured on Debian's packages, each with the lab's dovecot.conf of its generation changed in one
# setting: Dovecot 2.4.1 (Debian 13) and 2.3.19.1 (Debian 12), on port 143 before STARTTLS.
ALERT_24 = ("* BAD [ALERT] cleartext authentication not allowed without SSL/TLS, but your client did it "
            "anyway. If anyone was listening, the password was exposed.")
ALERT_23 = ALERT_24.replace("* BAD [ALERT] cleartext", "* BAD [ALERT] Plaintext")
MEASURED_BEFORE_TLS = {
    ("ssl = required", 13): [
        ("a CAPABILITY", "* CAPABILITY IMAP4rev1 LOGIN-REFERRALS ID ENABLE IDLE SASL-IR LITERAL+ STARTTLS "
                         "LOGINDISABLED"),
        ("b LOGIN alice@lab.test x", ALERT_24 + "\nb NO [PRIVACYREQUIRED] Cleartext authentication "
                                                "disallowed on non-secure (SSL/TLS) connections."),
        ("c AUTHENTICATE PLAIN", "c NO [PRIVACYREQUIRED] Authentication disallowed on non-secure (SSL/TLS) "
                                 "connections."),
        ("d AUTHENTICATE FOO", "d NO [PRIVACYREQUIRED] Authentication disallowed on non-secure (SSL/TLS) "
                               "connections."),
    ],
    ("ssl = required", 12): [
        ("a CAPABILITY", "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
                         "LOGINDISABLED"),
        ("b LOGIN alice@lab.test x", ALERT_23 + "\nb NO [PRIVACYREQUIRED] Plaintext authentication "
                                                "disallowed on non-secure (SSL/TLS) connections."),
        ("c AUTHENTICATE PLAIN", "c NO [PRIVACYREQUIRED] Authentication not allowed until SSL/TLS is "
                                 "enabled."),
        ("d AUTHENTICATE FOO", "d NO [PRIVACYREQUIRED] Authentication not allowed until SSL/TLS is "
                               "enabled."),
    ],
    ("cleartext allowed", 13): [
        ("a CAPABILITY", "* CAPABILITY IMAP4rev1 LOGIN-REFERRALS ID ENABLE IDLE SASL-IR LITERAL+ STARTTLS "
                         "AUTH=PLAIN AUTH=LOGIN"),
        ("b LOGIN alice@lab.test x", "b NO [AUTHENTICATIONFAILED] Authentication failed."),
        ("c AUTHENTICATE PLAIN", "+ "),
        ("*", "c BAD Authentication aborted by client."),
        ("d AUTHENTICATE FOO", "d NO [ALERT] Unsupported authentication mechanism."),
    ],
    ("cleartext allowed", 12): [
        ("a CAPABILITY", "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
                         "AUTH=PLAIN AUTH=LOGIN"),
        ("b LOGIN alice@lab.test x", "b NO [AUTHENTICATIONFAILED] Authentication failed."),
        ("c AUTHENTICATE PLAIN", "+ "),
        ("*", "c BAD Authentication aborted by client."),
        ("d AUTHENTICATE FOO", "d NO [ALERT] Unsupported authentication mechanism."),
    ],
}


@pytest.mark.parametrize(("variant", "debian"), list(MEASURED_BEFORE_TLS))
def test_dovecot_settings_the_lab_does_not_run_answer_as_measured(variant: str, debian: int) -> None:
    """``ssl = required`` and cleartext allowed (``auth_allow_cleartext = yes``, 2.3's
    ``disable_plaintext_auth = no``): the real lab runs neither, so the real servers' answers
    were measured once and are kept here (the other answers are the differential test's)."""
    from mailtls.sim.config import DovecotConfig
    from mailtls.sim.imapd import ImapSession

    generation = generations.get(debian)
    config = DovecotConfig.read(MAIL.config_file(SHIPPED_LABS, "dovecot.conf", generation), generation)
    changed = {"ssl": "required"} if variant == "ssl = required" else {"cleartext_allowed": True}
    session = ImapSession(dataclasses.replace(config, **changed), 143, lambda login, password: False,
                          lambda login: [])
    for line, expected in MEASURED_BEFORE_TLS[(variant, debian)]:
        answer = session.receive(line.encode() + b"\r\n").data.decode().rstrip("\r\n").split("\r\n")
        assert "\n".join(answer[:-1] if line == "a CAPABILITY" else answer) == expected, line


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_connect_simulates_the_generation_it_is_told(generation: Generation, monkeypatch) -> None:
    """``MAILTLS_SIM_DEBIAN`` (read by ``connect()``): the servers of that Debian, by their greetings
    (Dovecot 2.4.1 ``Dovecot ready.``, 2.3.19.1 ``Dovecot (Debian) ready.``, measured) and versions."""
    import imaplib

    from mailtls import lab as lab_module

    monkeypatch.setattr(socket, "create_connection", socket.create_connection)  # restored afterwards
    lab = lab_module.connect(backend="sim", environ={"MAILTLS_SIM_DEBIAN": str(generation.debian)})
    assert lab.debian == generation.debian
    assert lab.servers == {"postfix": f"{generation.postfix} (simulated)",
                           "dovecot": f"{generation.dovecot} (simulated)"}
    imap = imaplib.IMAP4("mail.lab.test", 143, timeout=10)
    greeting = imap.welcome.decode()
    imap.logout()
    expected = "] Dovecot ready." if generation.dovecot == "2.4" else "] Dovecot (Debian) ready."
    assert greeting.endswith(expected)
    with pytest.raises(generations.UnknownGeneration):
        lab_module.connect(backend="sim", environ={"MAILTLS_SIM_DEBIAN": "11"})


def test_the_simulated_lab_takes_its_addresses_back(monkeypatch, tmp_path) -> None:
    """Another simulated lab in the same process (the differential test's, of the other generation)
    takes the lab's addresses; the next ``simulated_lab()`` answers with its own servers again."""
    import imaplib

    from mailtls.lab import simulated_lab
    from mailtls.sim.lab import SimLab

    monkeypatch.setattr(socket, "create_connection", socket.create_connection)
    simulated_lab(generation=13)
    SimLab(generation=BOOKWORM, files=tmp_path)  # Dovecot 2.3 now answers on 143
    simulated_lab(generation=13)
    imap = imaplib.IMAP4(LabConfig().address(MAIL), 143, timeout=10)
    greeting = imap.welcome.decode()
    imap.logout()
    assert greeting.endswith("] Dovecot ready."), greeting


def test_the_default_generation_is_debian_13(monkeypatch) -> None:
    from mailtls.lab import simulated_lab

    monkeypatch.setattr(socket, "create_connection", socket.create_connection)
    assert simulated_lab(generation=13).generation == TRIXIE
    from mailtls.sim.lab import SimLab

    assert SimLab.__init__.__defaults__[-1] is None and generations.DEFAULT == TRIXIE


# -- The reported cases -----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["ssl", "tlslite"])
@pytest.mark.parametrize("debian", [13, 12])
def test_the_reported_cases_behave_as_on_the_real_lab(engine: str, debian: int) -> None:
    """``tests/reported_cases.py`` on each generation and TLS engine: the real lab's outcomes
    (its browser run is in ``tests/test_browser_lab.py``)."""
    import reported_cases
    from mailtls.sim import tls

    previous = tls.use(engine)
    try:
        assert reported_cases.run(debian) == reported_cases.expected(debian)
    finally:
        tls.use(previous)
