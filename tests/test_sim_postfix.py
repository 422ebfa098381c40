"""The simulated Postfix (smtpd, and the relay's smtp client) with the settings a reader changes.

Each test edits a scratch copy of ``labs/`` as a reader would, starts a simulated lab of each
generation on it, and asserts what the real servers say to the same edit: replies, TLS outcomes
and log lines. The expected words come from two places, named in each test:

- "measured (smtpd)": a Postfix started in a container of the lab's own images
  (``localhost/mailtls-host:debian13``, Postfix 3.10.13, and ``:debian12``, Postfix 3.7.11) with
  mail.lab.test's ``main.cf`` and ``master.cf`` of that generation and the lab's generated files
  in /run/mailtls, the edit made in ``main.cf``, ``postfix start``, then the same client
  conversation from inside the container; both versions said the same words;
- "measured (relay)": two such containers on one network, one with mail.lab.test's files and
  one with relay.lab.test's (``main.cf``, ``master.cf``, ``transport``, ``tls_policy``), the
  edit made, both Postfixes started, a message handed to the relay's port 25 for the
  recipient shown; both versions said the same words;
- "source": the Postfix code that writes the line (github.com/vdukhovni/postfix, tags v3.10.13
  and v3.7.11, the same code in both).

OpenSSL's own lines ("warning: TLS library problem: error:...") name OpenSSL's source lines, so
they differ between OpenSSL 3.0 (Debian 12) and 3.5 (Debian 13): the tests name both, from the
corpus's recordings of the real lab (``tests/sim_corpus/``).
"""

from __future__ import annotations

import inspect
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.labs import scratch_labs
from mailtls import generations, maillog, smtp_reply
from mailtls.config import LabConfig
from mailtls.generations import GENERATIONS, Generation
from mailtls.hosts import host

MAIL_ADDRESS = LabConfig().address(host("mail.lab.test"))
RELAY_ADDRESS = LabConfig().address(host("relay.lab.test"))
WHERE = f"mail.lab.test[{MAIL_ADDRESS}]:25"
CHAIN = "smtpd_tls_chain_files = /run/mailtls/mail.lab.test.chain.pem"  # the lab's main.cf, both generations
MAY = "smtpd_tls_security_level = may"
PROBLEM = "client TLS configuration problem"


# -- Set-up: a simulated lab on an edited copy of labs/ ---------------------------------------------


def engine_contract_stand_in(certfile: str | None = None, keyfile: str | None = None,
                             minimum: str = "TLSv1.2", maximum: str = "TLSv1.3") -> ssl.SSLContext:
    """The TLS engines' contract (``server_context`` with ``maximum``, and ``certfile=None`` for a
    server without a certificate), for the ``ssl`` engine only, where the engine in this tree
    predates it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
    context.minimum_version, context.maximum_version = versions[minimum], versions[maximum]
    if minimum in ("TLSv1", "TLSv1.1"):
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # as Postfix's tls_server.c sets level 0
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    context.mailtls_files = (certfile, keyfile)  # type: ignore[attr-defined]
    return context


@pytest.fixture(autouse=True)
def tls_engine(monkeypatch) -> None:
    """The ``ssl`` engine, held to the engines' contract."""
    from mailtls.sim import tls

    previous = tls.use("ssl")
    if "maximum" not in inspect.signature(tls.server_context).parameters:
        monkeypatch.setattr(tls, "server_context", engine_contract_stand_in)
    yield
    tls.use(previous)


class Edited:
    """A simulated lab of one generation on a scratch copy of labs/ with some edits."""

    def __init__(self, root: Path, generation: Generation) -> None:
        self.labs = scratch_labs(root / "labs")
        self.files = root / "files"
        self.generation = generation
        self.lab = None

    def edit(self, name: str, old: str, new: str) -> Edited:
        """Replace ``old`` with ``new`` in a host's file (``"mail/main.cf"``: the generation's)."""
        host_name, _, file_name = name.partition("/")
        path = generations.host_file(self.labs / "hosts" / host_name, file_name, self.generation)
        text = path.read_text()
        assert old in text, f"{path} has no {old!r}"
        path.write_text(text.replace(old, new))
        return self

    def start(self):
        from mailtls.sim.lab import SimLab

        saved = socket.create_connection
        try:
            self.lab = SimLab(labs=self.labs, files=self.files, generation=self.generation)
        finally:
            socket.create_connection = saved
        return self.lab

    def log(self, host_name: str = "mail.lab.test") -> list[str]:
        path = self.lab.log_file(host_name)
        if not path.exists():
            return []
        return [maillog.LogLine.parse(line).text for line in path.read_text().splitlines()]


@pytest.fixture(params=GENERATIONS, ids=lambda g: g.folder)
def edited(request, tmp_path) -> Iterator[Edited]:
    from mailtls.sim import network

    yield Edited(tmp_path, request.param)
    network.clear()


def connect(port: int, address: str = MAIL_ADDRESS):
    from mailtls.sim import network

    return network.open_connection(address, port, timeout=5)


def answers_nothing(port: int) -> None:
    """The service on ``port`` takes the connection but says nothing: its smtpd died as it started
    and the master throttles it."""
    sock = connect(port)
    with pytest.raises(TimeoutError):
        sock.recv(100)


def say(sock, reader, line: str) -> smtp_reply.SmtpReply:
    sock.sendall(line.encode() + b"\r\n")
    return smtp_reply.read(reader.readline)


def client_context(minimum: str | None = None, maximum: str | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if minimum or maximum:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = getattr(ssl.TLSVersion, (minimum or "TLSv1").replace(".", "_"))
        context.maximum_version = getattr(ssl.TLSVersion, (maximum or "TLSv1.3").replace(".", "_"))
    return context


def starttls(port: int = 25, context: ssl.SSLContext | None = None) -> tuple[list[str], str, object]:
    """Greeting, EHLO, STARTTLS: the EHLO reply's lines, the STARTTLS reply, the TLS socket (or the
    ssl.SSLError the handshake raised; None when STARTTLS was refused)."""
    sock = connect(port)
    reader = sock.makefile("rb")
    smtp_reply.read(reader.readline)
    offered = say(sock, reader, "EHLO client.lab.test").texts
    reply = say(sock, reader, "STARTTLS")
    if reply.code != 220:
        return offered, reply.data.decode().strip(), None
    try:
        tls = (context or client_context()).wrap_socket(sock, server_hostname="mail.lab.test")
    except ssl.SSLError as failure:
        return offered, reply.data.decode().strip(), failure
    return offered, reply.data.decode().strip(), tls


# -- smtpd: certificate, key and chain files ---------------------------------------------------------


MISSING = "/run/mailtls/mail.lab.test.missing.pem"


def test_a_missing_chain_file_fails_the_handshake_after_220(edited) -> None:
    """tls_certkey.c ``load_chain_files``: a file it cannot open ends the loading with success and
    no key, so smtpd offers STARTTLS, answers 220, and every handshake fails (OpenSSL: no shared
    cipher; the client gets a handshake-failure alert). Measured on Postfix 3.7.11 and 3.10
    (docs/en/troubleshooting: "A certificate file that does not exist"). Measured (smtpd)."""
    edited.edit("mail/main.cf", CHAIN,
                f"smtpd_tls_chain_files = {MISSING}").start()
    offered, reply, outcome = starttls(25)
    assert "STARTTLS" in offered
    assert reply == "220 2.0.0 Ready to start TLS"
    assert isinstance(outcome, ssl.SSLError) and outcome.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    # Port 587 (level encrypt) alike; port 465 (wrapper mode) fails the handshake at once.
    assert starttls(587)[1] == "220 2.0.0 Ready to start TLS"
    with pytest.raises(ssl.SSLError, match="SSLV3_ALERT_HANDSHAKE_FAILURE"):
        client_context().wrap_socket(connect(465), server_hostname="mail.lab.test")
    assert edited.log().count(f"warning: error opening chain file: {MISSING}: No such file or directory") == 3
    place = "statem_srvr.c:2226" if edited.generation.postfix == "3.7" else "statem_srvr.c:2361"
    assert ("warning: TLS library problem: error:0A0000C1:SSL routines::no shared cipher:../ssl/statem/"
            f"{place}:") in edited.log()


def test_a_chain_whose_key_does_not_match_disables_tls(edited) -> None:
    """tls_certkey.c ``load_pem_bio``: the key and the certificate after it must match, else
    "does not match next certificate", TLS is disabled, and STARTTLS gets 454 (smtpd.c: "After a
    show-stopper error, reply with 454 to STARTTLS"); a wrapper-mode connection is dropped.
    Measured (smtpd)."""
    chain = "/run/mailtls/relay.lab.test.key, /run/mailtls/mail.lab.test.pem"
    edited.edit("mail/main.cf", CHAIN,
                f"smtpd_tls_chain_files = {chain}").start()
    offered, reply, outcome = starttls(25)
    assert "STARTTLS" in offered and outcome is None
    assert reply == "454 4.7.0 TLS not available due to local problem"
    with pytest.raises((ssl.SSLError, OSError)):
        client_context().wrap_socket(connect(465), server_hostname="mail.lab.test")
    log = edited.log()
    assert "warning: key at index 1 in /run/mailtls/relay.lab.test.key does not match next certificate" in log
    assert (f"warning: error loading private keys and certificates from: {chain}: disabling TLS support"
            in log)
    assert any(line.startswith("warning: Wrapper-mode request dropped from unknown[") for line in log)


def test_a_chain_that_begins_with_the_certificate_disables_tls(edited) -> None:
    """tls_certkey.c ``load_cert``: the key must come first ("key not first"). Measured (smtpd)."""
    edited.edit("mail/main.cf", CHAIN,
                "smtpd_tls_chain_files = /run/mailtls/mail.lab.test.pem, "
                "/run/mailtls/mail.lab.test.key").start()
    assert starttls(25)[1] == "454 4.7.0 TLS not available due to local problem"
    assert "warning: error loading chain from /run/mailtls/mail.lab.test.pem: key not first" in edited.log()


def test_the_key_and_certificate_in_two_files_serve_tls(edited) -> None:
    """smtpd_tls_chain_files with the key file first, then the certificate file (postconf(5)).
    Measured (smtpd)."""
    edited.edit("mail/main.cf", CHAIN,
                "smtpd_tls_chain_files = /run/mailtls/mail.lab.test.key, "
                "/run/mailtls/mail.lab.test.pem").start()
    outcome = starttls(25)[2]
    assert isinstance(outcome, ssl.SSLSocket) or hasattr(outcome, "version")
    assert not [line for line in edited.log() if "warning" in line]


def test_the_legacy_cert_file_missing_disables_tls(edited) -> None:
    """tls_certkey.c ``set_cert_stuff``: "cannot get RSA certificate from file", TLS disabled.
    Measured (smtpd)."""
    edited.edit("mail/main.cf", CHAIN,
                f"smtpd_tls_cert_file = {MISSING}\n"
                "smtpd_tls_key_file = /run/mailtls/mail.lab.test.key").start()
    assert starttls(25)[1] == "454 4.7.0 TLS not available due to local problem"
    log = edited.log()
    at = log.index(f'warning: cannot get RSA certificate from file "{MISSING}": disabling TLS support')
    lines = (("297", "300", "450") if edited.generation.postfix == "3.7" else ("299", "302", "503"))
    assert log[at + 1:at + 4] == [  # OpenSSL's queue (tls_print_errors), as recorded
        "warning: TLS library problem: error:80000002:system library::No such file or directory:"
        f"../crypto/bio/bss_file.c:{lines[0]}:calling fopen({MISSING}, r):",
        "warning: TLS library problem: error:10080002:BIO routines::system lib:"
        f"../crypto/bio/bss_file.c:{lines[1]}:",
        f"warning: TLS library problem: error:0A080002:SSL routines::system lib:../ssl/ssl_rsa.c:{lines[2]}:"]


def test_a_wrapper_mode_port_without_tls_resets_then_hangs_up(edited) -> None:
    """smtpd.c: "Wrapper-mode request dropped ... TLS context initialization failed", without reading
    the ClientHello: a new smtpd process is slow enough for it to arrive (the client gets a reset),
    a running one is not (the end of the stream). The transcript mailed to the postmaster cannot be
    delivered. Measured with Postfix 3.7.11 and 3.10.13 (the corpus: cert-key-files-missing)."""
    edited.edit("mail/main.cf", CHAIN, f"smtpd_tls_cert_file = {MISSING}").start()
    with pytest.raises(ConnectionResetError):
        client_context().wrap_socket(connect(465), server_hostname="mail.lab.test")
    with pytest.raises((ssl.SSLZeroReturnError, ssl.SSLEOFError)):
        client_context().wrap_socket(connect(465), server_hostname="mail.lab.test")
    log = edited.log()
    assert sum(line.startswith("warning: Wrapper-mode request dropped from unknown[") for line in log) == 2
    assert sum(line.endswith(": undeliverable postmaster notification discarded") for line in log) == 2


def test_the_legacy_key_file_that_does_not_match_disables_tls(edited) -> None:
    """OpenSSL refuses a key that does not match the certificate loaded before it (ssl_set_pkey),
    so set_cert_stuff says "cannot get RSA private key from file". Measured (smtpd)."""
    edited.edit("mail/main.cf", CHAIN,
                "smtpd_tls_cert_file = /run/mailtls/mail.lab.test.pem\n"
                "smtpd_tls_key_file = /run/mailtls/relay.lab.test.key").start()
    assert starttls(25)[1] == "454 4.7.0 TLS not available due to local problem"
    assert ('warning: cannot get RSA private key from file "/run/mailtls/relay.lab.test.key": '
            "disabling TLS support") in edited.log()


def test_the_legacy_cert_and_key_files_serve_tls(edited) -> None:
    """Measured (smtpd)."""
    edited.edit("mail/main.cf", CHAIN,
                "smtpd_tls_cert_file = /run/mailtls/mail.lab.test.pem\n"
                "smtpd_tls_key_file = /run/mailtls/mail.lab.test.key").start()
    assert hasattr(starttls(25)[2], "version")


def test_no_certificate_at_all_disables_tls(edited) -> None:
    """smtpd.c ``pre_jail_init``: neither chain files nor a certificate file. Measured (smtpd)."""
    edited.edit("mail/main.cf", CHAIN, "").start()
    offered, reply, _ = starttls(25)
    assert "STARTTLS" in offered and reply == "454 4.7.0 TLS not available due to local problem"
    assert "warning: No server certs available. TLS won't be enabled" in edited.log()


def test_a_certificate_file_outside_the_lab_s_files_is_refused(edited) -> None:
    """The simulation cannot know what a real host has in /etc/ssl: it says so, and starts nothing."""
    from mailtls.sim.smtpd import NotModelled

    edited.edit("mail/main.cf", CHAIN,
                "smtpd_tls_chain_files = /etc/ssl/private/mail.pem")
    with pytest.raises(NotModelled, match="the simulated lab does not model smtpd_tls_chain_files = "
                                          "/etc/ssl/private/mail.pem .*; the real lab does"):
        edited.start()


# -- smtpd: security levels, legacy settings ---------------------------------------------------------


def mail_from_in_clear(port: int = 25) -> tuple[list[str], str]:
    sock = connect(port)
    reader = sock.makefile("rb")
    smtp_reply.read(reader.readline)
    offered = say(sock, reader, "EHLO client.lab.test").texts
    return offered, say(sock, reader, "MAIL FROM:<a@relay.lab.test>").data.decode().strip()


def test_an_aborted_authentication_is_logged(edited) -> None:
    """smtpd_sasl_glue.c: a client's ``*`` ends AUTH with 501 and "SASL PLAIN authentication
    aborted". Measured with Postfix 3.7.11 and 3.10.13 (the corpus: sasl-on-25)."""
    edited.edit("mail/main.cf", "smtpd_sasl_auth_enable = no", "smtpd_sasl_auth_enable = yes").start()
    sock = connect(25)
    reader = sock.makefile("rb")
    smtp_reply.read(reader.readline)
    say(sock, reader, "EHLO client.lab.test")
    assert say(sock, reader, "AUTH PLAIN").code == 334
    assert say(sock, reader, "*").data == b"501 5.7.0 Authentication aborted\r\n"
    assert f"warning: unknown[{LabConfig().gateway}]: SASL PLAIN authentication aborted" in edited.log()


@pytest.mark.parametrize("level", ["verify", "secure", "fingerprint"])
def test_client_only_levels_on_smtpd_are_encrypt_with_a_warning(edited, level: str) -> None:
    """smtpd.c ``pre_jail_init``: 'unsupported TLS level "%s", using "encrypt"'. Measured (smtpd)."""
    edited.edit("mail/main.cf", MAY, f"smtpd_tls_security_level = {level}").start()
    offered, reply = mail_from_in_clear()
    assert "STARTTLS" in offered and reply == "530 5.7.0 Must issue a STARTTLS command first"
    assert (f'warning: smtpd_tls_security_level: unsupported TLS level "{level}", using "encrypt"'
            in edited.log())


@pytest.mark.parametrize("level", ["dane", "dane-only", "mayy", "yes"])
def test_other_levels_on_smtpd_are_fatal(edited, level: str) -> None:
    """smtpd.c ``pre_jail_init``: msg_fatal("Invalid TLS level ..."), before smtpd accepts the
    connection: the client waits for a greeting; the master throttles the service. Port 465's
    wrapper mode ignores the level, and 587 has its own. Measured (smtpd)."""
    edited.edit("mail/main.cf", MAY, f"smtpd_tls_security_level = {level}").start()
    answers_nothing(25)
    log = edited.log()
    assert f'fatal: Invalid TLS level "{level}"' in log
    assert "warning: /usr/lib/postfix/sbin/smtpd: bad command startup -- throttling" in log
    assert hasattr(client_context().wrap_socket(connect(465), server_hostname="mail.lab.test"), "version")
    assert mail_from_in_clear(587)[1] == "530 5.7.0 Must issue a STARTTLS command first"


def test_the_level_is_read_in_any_case(edited) -> None:
    """tls_level_lookup uses name_code without NAME_CODE_FLAG_STRICT_CASE. Measured (smtpd)."""
    edited.edit("mail/main.cf", MAY, "smtpd_tls_security_level = Encrypt").start()
    assert mail_from_in_clear()[1] == "530 5.7.0 Must issue a STARTTLS command first"


@pytest.mark.parametrize(("legacy", "offered", "reply"), [
    ("smtpd_use_tls = yes", True, "250 2.1.0 Ok"),
    ("smtpd_enforce_tls = yes", True, "530 5.7.0 Must issue a STARTTLS command first"),
    ("smtpd_use_tls = no", False, "250 2.1.0 Ok"),
])
def test_the_legacy_settings_count_when_the_level_is_empty(edited, legacy: str, offered: bool,
                                                           reply: str) -> None:
    """postconf(5) smtpd_tls_security_level: the legacy settings apply only when it is empty.
    Measured (smtpd)."""
    edited.edit("mail/main.cf", MAY, legacy).start()
    said = mail_from_in_clear()
    assert ("STARTTLS" in said[0], said[1]) == (offered, reply)


def test_a_level_set_overrides_the_legacy_settings(edited) -> None:
    """docs/en/troubleshooting "smtpd_use_tls and smtp_use_tls": level none, smtpd_use_tls = yes:
    no STARTTLS. Measured (smtpd)."""
    edited.edit("mail/main.cf", MAY,
                "smtpd_tls_security_level = none\nsmtpd_use_tls = yes").start()
    assert "STARTTLS" not in mail_from_in_clear()[0]


# -- smtpd: protocol versions ------------------------------------------------------------------------


def test_the_protocol_lists_read_as_postfix_reads_them() -> None:
    """src/tls/tls_misc.c ``tls_proto_mask_lims``: bounds, names, exclusions; any case."""
    from mailtls.sim.smtpd import NotModelled, protocol_range

    assert protocol_range(">=TLSv1.2", "p") == ("TLSv1.2", "TLSv1.3")
    assert protocol_range("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", "p") == ("TLSv1.2", "TLSv1.3")
    assert protocol_range("!SSLv2:!SSLv3", "p") == ("TLSv1", "TLSv1.3")
    assert protocol_range("TLSv1.2 TLSv1.3", "p") == ("TLSv1.2", "TLSv1.3")
    assert protocol_range(">=tlsv1 <=TLSv1.2", "p") == ("TLSv1", "TLSv1.2")
    assert protocol_range("", "p") == ("TLSv1", "TLSv1.3")
    assert protocol_range(">=TLSv1.4", "p") is None and protocol_range("TLS1.2", "p") is None
    with pytest.raises(NotModelled):
        protocol_range("!TLSv1.1", "p")  # TLS 1.0 and 1.2 without 1.1 between


def tls_version(port: int, version: str) -> str:
    """The version a client that speaks only ``version`` gets, or the failure's reason."""
    context = client_context(version, version)
    try:
        if port == 465:
            return client_context(version, version).wrap_socket(connect(465), server_hostname="x").version()
        outcome = starttls(port, context)[2]
    except ssl.SSLError as failure:
        return failure.reason
    return outcome.reason if isinstance(outcome, ssl.SSLError) else outcome.version()


def test_mandatory_protocols_apply_at_encrypt_and_in_wrapper_mode(edited) -> None:
    """smtpd.c: ``protocols = var_smtpd_enforce_tls ? var_smtpd_tls_mand_proto : var_smtpd_tls_proto``,
    and wrapper mode sets enforce. The lab's main.cf: ``smtpd_tls_mandatory_protocols = >=TLSv1.2``;
    smtpd_tls_protocols is at its default, ``>=TLSv1``, and Postfix sets OpenSSL's security level
    to 0 (tls_server.c), so TLS 1.0 passes on port 25 (docs/en/exercises/protocols.md). Measured (smtpd)."""
    edited.start()
    assert tls_version(25, "TLSv1.1") == "TLSv1.1"
    assert tls_version(25, "TLSv1") == "TLSv1"
    for port in (587, 465):
        assert tls_version(port, "TLSv1.1") == "TLSV1_ALERT_PROTOCOL_VERSION"
        assert tls_version(port, "TLSv1.2") == "TLSv1.2"


def test_the_protocols_exercise_start_accepts_tls_1_0_on_587_and_465(edited) -> None:
    """The start of exercise 6 (src/mailtls/exercises/protocols). Measured (smtpd)."""
    edited.edit("mail/main.cf", "smtpd_tls_mandatory_protocols = >=TLSv1.2",
                "smtpd_tls_mandatory_protocols = >=TLSv1").start()
    assert [tls_version(port, "TLSv1") for port in (587, 465)] == ["TLSv1", "TLSv1"]


def test_the_old_protocol_syntax_works_too(edited) -> None:
    """Measured (smtpd): TLS 1.1 gets the protocol-version alert, TLS 1.2 passes."""
    edited.edit("mail/main.cf", "smtpd_tls_mandatory_protocols = >=TLSv1.2",
                "smtpd_tls_mandatory_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1").start()
    assert [tls_version(587, v) for v in ("TLSv1.1", "TLSv1.2")] == ["TLSV1_ALERT_PROTOCOL_VERSION",
                                                                      "TLSv1.2"]


def test_an_invalid_protocol_list_disables_tls(edited) -> None:
    """tls_server.c: 'Invalid TLS protocol list "%s": disabling TLS
    support'; STARTTLS gets 454, port 465 drops the connection. Measured (smtpd)."""
    edited.edit("mail/main.cf", "smtpd_tls_mandatory_protocols = >=TLSv1.2",
                "smtpd_tls_mandatory_protocols = >=TLSv1.4").start()
    assert starttls(587)[1] == "454 4.7.0 TLS not available due to local problem"
    assert 'warning: Invalid TLS protocol list ">=TLSv1.4": disabling TLS support' in edited.log()


# -- The relay's smtp client: trust, levels, status codes ------------------------------------------


def through_relay(recipient: str) -> str:
    """Send a message to ``recipient`` through relay.lab.test's port 25; its queue id there."""
    sock = connect(25, RELAY_ADDRESS)
    reader = sock.makefile("rb")
    smtp_reply.read(reader.readline)
    say(sock, reader, "EHLO client.lab.test")
    assert say(sock, reader, "MAIL FROM:<student@relay.lab.test>").code == 250
    assert say(sock, reader, f"RCPT TO:<{recipient}>").code == 250
    assert say(sock, reader, "DATA").code == 354
    reply = say(sock, reader, "Subject: relay\r\n\r\nHello.\r\n.")
    assert reply.code == 250
    return reply.text.rpartition(" ")[2]


def delivery(edited: Edited, queue_id: str) -> maillog.Delivery:
    found = [d for line in edited.log("relay.lab.test") if (d := maillog.Delivery.parse(line))
             and d.queue_id == queue_id]
    assert len(found) == 1, edited.log("relay.lab.test")
    return found[0]


def trust_words(edited: Edited) -> list[str]:
    return [t.trust for line in edited.log("relay.lab.test") if (t := maillog.TlsConnection.parse(line))]


NO_CA_FILE = ("smtp_tls_CAfile = /run/mailtls/ca.pem", "#smtp_tls_CAfile = /run/mailtls/ca.pem")


def test_verify_without_a_ca_file_defers(edited) -> None:
    """The relay's smtp_tls_CAfile commented out and ``[mail.lab.test] verify`` in tls_policy: the
    real relay defers with "Server certificate not verified" (measured on the real lab). Postfix
    trusts only smtp_tls_CAfile/CApath (tls_append_default_CA = no), so the lab CA is an
    untrusted issuer (tls_verify.c). Measured (relay)."""
    edited.edit("relay/main.cf", *NO_CA_FILE).edit(
        "relay/tls_policy", "#[mail.lab.test]         secure match=mail.lab.test",
        "[mail.lab.test] verify").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.status) == ("4.7.5", "deferred")
    assert result.reason == "Server certificate not verified"
    assert result.relay == WHERE
    failed = [f for line in edited.log("relay.lab.test") if (f := maillog.VerificationFailed.parse(line))]
    assert [f.reason.startswith("untrusted issuer /CN=mailtls lab CA ") for f in failed] == [True]
    assert trust_words(edited) == ["Untrusted"]


def test_verify_with_the_ca_file_delivers_verified(edited) -> None:
    """Measured (relay): alice+verify@lab.test, as shipped."""
    edited.edit("relay/tls_policy", "#[mail.lab.test]         secure match=mail.lab.test",
                "[mail.lab.test] verify").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.status) == ("2.0.0", "sent")
    assert trust_words(edited) == ["Verified"]


def test_the_policy_key_is_the_next_hop_with_its_brackets(edited) -> None:
    """smtp_tls_policy.c ``tls_policy_lookup``: ``[nexthop]`` is looked up alone, so a key without
    the brackets never matches it (a typical wrong solution of the relay-policy exercise).
    Measured (relay)."""
    edited.edit("relay/main.cf", *NO_CA_FILE).edit(
        "relay/tls_policy", "#[mail.lab.test]         secure match=mail.lab.test",
        "mail.lab.test secure match=mail.lab.test").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.status, trust_words(edited)) == ("sent", ["Untrusted"])


@pytest.mark.parametrize(("ca_file", "words"), [(True, ["Trusted"]), (False, ["Untrusted"])])
def test_may_logs_trusted_with_the_ca_and_untrusted_without(edited, ca_file: bool, words: list[str]) -> None:
    """FORWARD_SECRECY_README and docs/en/postfix-client "Anonymous, Untrusted, Trusted, Verified".
    Measured (relay)."""
    if not ca_file:
        edited.edit("relay/main.cf", *NO_CA_FILE)
    edited.start()
    assert delivery(edited, through_relay("alice+may@lab.test")).status == "sent"
    assert trust_words(edited) == words


def test_a_recipient_refused_by_the_server_bounces_with_its_own_status(edited) -> None:
    """smtp_chat.c takes the enhanced status code from the reply; smtp_rcpt.c quotes the reply and
    the command (Postfix's log: "host H said: ... (in reply to RCPT TO command)").
    Measured (relay)."""
    edited.start()
    result = delivery(edited, through_relay("nobody@lab.test"))
    assert (result.dsn, result.status) == ("5.1.1", "bounced")
    assert result.reason == (f"host mail.lab.test[{MAIL_ADDRESS}] said: 550 5.1.1 <nobody@lab.test>: "
                             "Recipient address rejected: User unknown in virtual mailbox table "
                             "(in reply to RCPT TO command)")


def test_encrypt_to_a_server_without_tls_is_4_7_4(edited) -> None:
    """docs/en/troubleshooting: dsn=4.7.4, "TLS is required, but was not offered by host"."""
    edited.start()
    result = delivery(edited, through_relay("encrypt@legacy.lab.test"))
    legacy = LabConfig().address(host("legacy.lab.test"))
    assert (result.dsn, result.status, result.reason) == (
        "4.7.4", "deferred", f"TLS is required, but was not offered by host legacy.lab.test[{legacy}]")


def test_a_server_without_certificate_gets_anonymous_tls_from_the_relay(edited) -> None:
    """A Postfix client at may or encrypt offers anonymous cipher suites, so against smtpd with a
    missing chain file (where Python's clients fail the handshake) it gets an anonymous TLS 1.2
    session and delivers. Measured (relay): "Anonymous TLS connection established to
    mail.lab.test[...]:25: TLSv1.2 with cipher ADH-AES256-GCM-SHA384 (256/256 bits)", sent."""
    edited.edit("mail/main.cf", CHAIN, f"smtpd_tls_chain_files = {MISSING}").start()
    for recipient in ("alice+may@lab.test", "alice+encrypt@lab.test"):
        assert delivery(edited, through_relay(recipient)).status == "sent"
    lines = [t for line in edited.log("relay.lab.test") if (t := maillog.TlsConnection.parse(line))]
    assert [(t.trust, t.where, t.summary) for t in lines] == [
        ("Anonymous", WHERE, "TLSv1.2 with cipher ADH-AES256-GCM-SHA384 (256/256 bits)")] * 2


def test_a_server_refusing_starttls_defers_with_its_own_code(edited) -> None:
    """smtp_proto.c: at encrypt, a STARTTLS refused after it was offered. Measured (relay): dsn=4.7.0,
    "TLS is required, but host mail.lab.test[...] refused to start TLS: 454 4.7.0 TLS not available
    due to local problem"; at may the relay goes on in clear and delivers."""
    edited.edit("mail/main.cf", CHAIN, "").start()
    assert delivery(edited, through_relay("alice+may@lab.test")).status == "sent"
    result = delivery(edited, through_relay("alice+encrypt@lab.test"))
    assert (result.dsn, result.status, result.reason) == (
        "4.7.0", "deferred", f"TLS is required, but host mail.lab.test[{MAIL_ADDRESS}] refused to start TLS: "
                             "454 4.7.0 TLS not available due to local problem")


def test_a_handshake_failure_defers(edited) -> None:
    """smtp_proto.c: "Cannot start TLS: handshake failure", dsn 4.7.5 (the fall-back to clear text
    waits until the message is older than minimal_backoff_time, smtp.h). Measured (relay): the
    relay's smtp_tls_mandatory_protocols = <=TLSv1.1 against a server at >=TLSv1.2, level encrypt:
    "SSL_connect error to mail.lab.test[...]:25: -1", then the deferral."""
    edited.edit("relay/main.cf", "smtp_tls_security_level = may",
                "smtp_tls_security_level = may\nsmtp_tls_mandatory_protocols = <=TLSv1.1").edit(
        "mail/main.cf", "smtpd_tls_mandatory_protocols = >=TLSv1.2",
        "smtpd_tls_mandatory_protocols = >=TLSv1.2\nsmtpd_tls_protocols = >=TLSv1.2").start()
    assert delivery(edited, through_relay("alice+may@lab.test")).status == "sent"
    result = delivery(edited, through_relay("alice+encrypt@lab.test"))
    assert (result.dsn, result.status) == ("4.7.5", "deferred")
    assert result.reason == "Cannot start TLS: handshake failure"
    assert f"SSL_connect error to {WHERE}: -1" in edited.log("relay.lab.test")


def policy(edited: Edited, line: str) -> Edited:
    return edited.edit("relay/tls_policy", "#[mail.lab.test]         secure match=mail.lab.test", line)


def test_fingerprint_without_fingerprints_is_a_configuration_problem(edited) -> None:
    """smtp_tls_policy.c ``policy_create``: "configured at fingerprint security level, but with no
    fingerprints to match.", then dsn 4.7.5 "client TLS configuration problem". Measured (relay)."""
    policy(edited, "[mail.lab.test] fingerprint").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.status, result.reason) == ("4.7.5", "deferred", PROBLEM)
    log = edited.log("relay.lab.test")
    assert ("warning: nexthop domain [mail.lab.test]: configured at fingerprint security level, but with no "
            "fingerprints to match.") in log
    assert ("warning: TLS policy lookup for [mail.lab.test]/mail.lab.test: client TLS configuration problem"
            in log)


def test_fingerprint_with_the_certificate_s_digest_is_verified(edited) -> None:
    """SHA-256 (smtp_tls_fingerprint_digest at compatibility_level 3.6) of the certificate. (The
    policy table is written after the start: each start makes new certificates, and the
    simulation reads a table at each lookup.) Measured (relay)."""
    import hashlib

    lab = edited.start()
    pem = (lab.files / "mail.lab.test.pem").read_text()
    der = ssl.PEM_cert_to_DER_cert(pem[:pem.index("-----END CERTIFICATE-----") + 25])
    digest = hashlib.sha256(der).hexdigest().upper()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    policy(edited, f"[mail.lab.test] fingerprint match={fingerprint}")
    assert delivery(edited, through_relay("alice@lab.test")).status == "sent"
    assert trust_words(edited)[-1] == "Verified"


def test_dane_without_dnssec_falls_back_to_may(edited) -> None:
    """smtp_tls_policy.c ``dane_init``: the lab's smtp_dns_support_level is disabled, so "dane
    configured with dnssec lookups disabled" and the level becomes may; dane-only defers.
    Measured (relay)."""
    policy(edited, "[mail.lab.test] dane").start()
    assert delivery(edited, through_relay("alice@lab.test")).status == "sent"
    assert ("warning: [mail.lab.test]: dane configured with dnssec lookups disabled"
            in edited.log("relay.lab.test"))


def test_dane_only_without_dnssec_defers(edited) -> None:
    """Measured (relay)."""
    policy(edited, "[mail.lab.test] dane-only").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.reason) == ("4.7.5", PROBLEM)


def test_an_invalid_level_in_the_policy_table_defers(edited) -> None:
    """smtp_tls_policy.c ``tls_policy_lookup_one``: 'invalid security level "%s"'. Measured (relay)."""
    policy(edited, "[mail.lab.test] verfy").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.status, result.reason) == ("4.7.5", "deferred", PROBLEM)
    assert ('warning: smtp_tls_policy_maps, next-hop destination "[mail.lab.test]": invalid security level '
            '"verfy"') in edited.log("relay.lab.test")


def test_an_invalid_level_in_main_cf_kills_the_smtp_client(edited) -> None:
    """smtp.c ``pre_init``: msg_fatal("Invalid TLS level ..."); the master throttles the transport
    and the message stays queued. Measured (relay): those three lines, no delivery line."""
    edited.edit("relay/main.cf", "smtp_tls_security_level = may", "smtp_tls_security_level = mayy").start()
    through_relay("alice@lab.test")
    log = edited.log("relay.lab.test")
    assert not [line for line in log if maillog.Delivery.parse(line)]
    assert log[-3:] == ['fatal: Invalid TLS level "mayy"',
                        "warning: process /usr/lib/postfix/sbin/smtp pid 0 exit status 1",
                        "warning: /usr/lib/postfix/sbin/smtp: bad command startup -- throttling"]


def test_the_checker_needs_no_wait_for_a_relay_that_never_delivers(edited, monkeypatch) -> None:
    """The simulated relay delivers while it takes a message, or never (its network is synchronous,
    its queue retries nothing): the checker says at once, without sleeping, what the real lab's
    checker says after waiting ``checker.DELIVERY_WAIT`` for the delivery."""
    from mailtls import checker
    from mailtls.lab import Lab, resolve_lab_names
    from mailtls.sim.lab import SimLab
    from mailtls.status import LabStatus

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"the checker slept {seconds} s for the simulated relay")

    edited.edit("relay/main.cf", "smtp_tls_security_level = may", "smtp_tls_security_level = mayy")
    monkeypatch.setattr(socket, "create_connection", socket.create_connection)  # put back afterwards
    simulated = SimLab(labs=edited.labs, files=edited.files, generation=edited.generation)
    lab = Lab(LabStatus.read(simulated.files))
    resolve_lab_names({e.host: e.address for e in lab.services})
    monkeypatch.setattr("mailtls.polling.time.sleep", no_sleep)
    with pytest.raises(checker.Failed) as failure:
        checker.through_relay(lab, "alice@lab.test")
    assert str(failure.value) == ("the relay did not try to deliver the message for alice@lab.test "
                                  "within 30 s")


def test_a_ca_file_that_does_not_exist_disables_the_client_s_tls(edited) -> None:
    """tls_certkey.c ``tls_set_ca_certificate_info``: "cannot load Certification Authority data";
    without its TLS engine the client sends no STARTTLS: may delivers in clear, verify defers with
    "TLS is required, but our TLS engine is unavailable" (smtp_proto.c, dsn 4.7.5).
    Measured (relay)."""
    edited.edit("relay/main.cf", "smtp_tls_CAfile = /run/mailtls/ca.pem",
                "smtp_tls_CAfile = /run/mailtls/nothere.pem").start()
    assert delivery(edited, through_relay("alice+may@lab.test")).status == "sent"
    assert trust_words(edited) == []
    result = delivery(edited, through_relay("alice+verify@lab.test"))
    assert (result.dsn, result.reason) == ("4.7.5", "TLS is required, but our TLS engine is unavailable")
    log = edited.log("relay.lab.test")
    at = log.index('cannot load Certification Authority data, CAfile="/run/mailtls/nothere.pem": '
                   "disabling TLS support")
    last = ("error:05880002:x509 certificate routines::system lib:../crypto/x509/by_file.c:229:"
            if edited.generation.postfix == "3.7" else
            "error:05880020:x509 certificate routines::BIO lib:../crypto/x509/by_file.c:248:")
    assert log[at + 1:at + 4] == [  # OpenSSL's queue (tls_print_errors), as recorded
        "warning: TLS library problem: error:80000002:system library::No such file or directory:"
        "../crypto/bio/bss_file.c:67:calling fopen(/run/mailtls/nothere.pem, r):",
        "warning: TLS library problem: error:10000080:BIO routines::no such file:"
        "../crypto/bio/bss_file.c:75:",
        f"warning: TLS library problem: {last}"]


def test_the_legacy_smtp_enforce_tls_is_verify(edited) -> None:
    """smtp_tls_policy.c ``global_tls_level``: with the level empty, smtp_enforce_tls = yes is verify
    (smtp_tls_enforce_peername = yes by default). Measured (relay)."""
    edited.edit("relay/main.cf", "smtp_tls_security_level = may", "smtp_enforce_tls = yes").edit(
        "relay/main.cf", *NO_CA_FILE).start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert result.reason == "Server certificate not verified"


def test_the_relay_s_tls_loglevel_0_drops_the_summary_but_not_the_verification_failure(edited) -> None:
    """tls_misc.c: level 1 is TLS_LOG_SUMMARY; tls_client.c adds TLS_LOG_UNTRUSTED at the levels that
    must match, whatever the log level. Measured (relay)."""
    edited.edit("relay/main.cf", "smtp_tls_loglevel = 1", "smtp_tls_loglevel = 0").edit(
        "relay/main.cf", *NO_CA_FILE)
    policy(edited, "[mail.lab.test] verify").start()
    assert delivery(edited, through_relay("alice@lab.test")).reason == "Server certificate not verified"
    assert trust_words(edited) == []
    assert [line for line in edited.log("relay.lab.test") if maillog.VerificationFailed.parse(line)]


def test_verify_with_another_name_is_not_verified(edited) -> None:
    """tls_verify.c, OpenSSL's own reason with the purpose. Measured (relay): "server certificate
    verification failed for mail.lab.test[...]:25: num=62:hostname mismatch", deferred; the
    summary says Trusted on Postfix 3.10 (tls_client.c: a name mismatch alone means a trusted
    chain) and Untrusted on 3.7."""
    policy(edited, "[mail.lab.test] verify match=other.lab.test").start()
    assert delivery(edited, through_relay("alice@lab.test")).reason == "Server certificate not verified"
    assert f"server certificate verification failed for {WHERE}: num=62:hostname mismatch" in edited.log(
        "relay.lab.test")
    assert trust_words(edited) == ["Untrusted" if edited.generation.postfix == "3.7" else "Trusted"]


def test_secure_with_another_name_is_not_verified(edited) -> None:
    """At secure as at verify: deferred, with OpenSSL's num=62 (measured with Postfix 3.7.11 and
    3.10.13: the corpus's relay-policy-wrong-wrong-match, "[mail.lab.test] secure match=lab.test")."""
    policy(edited, "[mail.lab.test] secure match=lab.test").start()
    assert delivery(edited, through_relay("alice@lab.test")).reason == "Server certificate not verified"
    assert f"server certificate verification failed for {WHERE}: num=62:hostname mismatch" in edited.log(
        "relay.lab.test")


def test_a_fingerprint_of_the_wrong_size_is_unusable(edited) -> None:
    """tls_dane.c: a fingerprint that is no SHA-256 digest is two unusable TLSA records (its public
    key's, then its certificate's); with no usable one left, "all fingerprints unusable", then
    OpenSSL's "num=1:unspecified certificate verification error", deferred 4.7.5. Measured with
    Postfix 3.7.11 (the corpus: policy-mail-fingerprint, 20 bytes)."""
    short = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"
    policy(edited, f"[mail.lab.test] fingerprint match={short}").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.reason) == ("4.7.5", "Server certificate not verified")
    hexadecimal = short.replace(":", "")
    assert [line for line in edited.log("relay.lab.test") if line.startswith("warning:")] == [
        f"warning: {WHERE}: unusable TLSA RR: 3 1 255 {hexadecimal}",
        f"warning: {WHERE}: unusable TLSA RR: 3 0 255 {hexadecimal}",
        f"warning: {WHERE}: all fingerprints unusable"]
    assert (f"server certificate verification failed for {WHERE}: num=1:unspecified certificate "
            "verification error") in edited.log("relay.lab.test")


def test_fingerprint_with_another_digest_is_not_verified(edited) -> None:
    """Measured (relay): "server certificate verification failed for mail.lab.test[...]:25:
    num=65:no matching DANE TLSA records", Untrusted, deferred 4.7.5."""
    policy(edited, "[mail.lab.test] fingerprint match=" + "AB:" * 31 + "AB").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.reason) == ("4.7.5", "Server certificate not verified")
    assert (f"server certificate verification failed for {WHERE}: num=65:no matching DANE TLSA records"
            in edited.log("relay.lab.test"))
    assert trust_words(edited) == ["Untrusted"]


def test_the_key_exchange_is_named_as_each_generation_s_openssl_names_it(edited) -> None:
    """Measured (relay): "key-exchange x25519" with Postfix 3.10 (OpenSSL 3.5), "key-exchange
    X25519" with 3.7 (OpenSSL 3.0), in the relay's summary and in smtpd's."""
    edited.start()
    through_relay("alice@lab.test")
    group = "X25519" if edited.generation.postfix == "3.7" else "x25519"
    summaries = [t.summary for line in edited.log("relay.lab.test")
                 if (t := maillog.TlsConnection.parse(line))]
    assert summaries and all(f" key-exchange {group} server-signature " in s for s in summaries)


def test_fingerprint_requires_tls(edited) -> None:
    """tls.h TLS_REQUIRED (every level above may): a fingerprint policy for a server that offers no
    STARTTLS defers with 4.7.4 as encrypt does (smtp_proto.c). Source."""
    edited.edit("relay/transport", "none@legacy.lab.test", "pinned@legacy.lab.test relay:[legacy.lab.test]\n"
                                                           "none@legacy.lab.test")
    policy(edited, "[legacy.lab.test] fingerprint match=" + "AB:" * 31 + "AB").start()
    result = delivery(edited, through_relay("pinned@legacy.lab.test"))
    legacy = LabConfig().address(host("legacy.lab.test"))
    assert (result.dsn, result.reason) == ("4.7.4", f"TLS is required, but was not offered by host "
                                                    f"legacy.lab.test[{legacy}]")


# -- How the files are read ------------------------------------------------------------------------------
# Measured with the lab's files, one line changed, on Postfix 3.7.11 and 3.10.13 (the images
# localhost/mailtls-host:debian12 and :debian13, and the corpus's variants on the real lab).

WRAPPER = "  -o smtpd_tls_wrappermode=yes"
SUBMISSION_LEVEL = "  -o smtpd_tls_security_level=encrypt"


def test_a_policy_line_may_separate_key_and_value_with_a_tab(edited) -> None:
    """postmap(1): the key and the value are separated by whitespace, a tab as well as spaces."""
    edited.edit("relay/tls_policy", "#[mail.lab.test]         secure match=mail.lab.test",
                "[mail.lab.test]\tsecure\n\tmatch=mail.lab.test").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.status, trust_words(edited)) == ("sent", ["Verified"])


def test_a_hash_policy_table_without_postmap_is_a_configuration_problem(edited) -> None:
    """The chapter's ``hash:/etc/postfix/tls_policy``: the lab copies the table's source, never the
    file postmap builds, so the relay cannot open it and defers every message (measured on the
    real lab: native and containers-debian13)."""
    edited.edit("relay/main.cf", "texthash:/etc/postfix/tls_policy", "hash:/etc/postfix/tls_policy").start()
    result = delivery(edited, through_relay("alice@lab.test"))
    assert (result.dsn, result.status) == ("4.7.5", "deferred")
    assert result.reason == "client TLS configuration problem"
    missing = "open database /etc/postfix/tls_policy.db: No such file or directory"
    assert edited.log("relay.lab.test")[-6:-1] == [
        f"error: {missing}",
        f"warning: hash:/etc/postfix/tls_policy is unavailable. {missing}",
        'warning: hash:/etc/postfix/tls_policy lookup error for "[mail.lab.test]"',
        'warning: smtp_tls_policy_maps, next-hop destination "[mail.lab.test]": policy table lookup error',
        "warning: TLS policy lookup for [mail.lab.test]/mail.lab.test: client TLS configuration problem"]


def test_a_table_type_the_simulation_does_not_read_stops_the_host() -> None:
    from mailtls.sim.config import NotModelled, read_table

    with pytest.raises(NotModelled, match=r"^the simulated lab does not read regexp: tables "
                                          r"\(regexp:/etc/postfix/tls_policy\); the real lab does: `sudo"):
        read_table("regexp:/etc/postfix/tls_policy", Path("/nonexistent"), Path("/nonexistent"))


def test_a_policy_table_the_simulation_does_not_read_is_refused_at_start(edited) -> None:
    from mailtls.sim.config import NotModelled

    edited.edit("relay/main.cf", "texthash:/etc/postfix/tls_policy", "regexp:/etc/postfix/tls_policy")
    with pytest.raises(NotModelled, match="does not read regexp: tables"):
        edited.start()


@pytest.mark.parametrize("word", ["true", "1", "on"])
def test_a_boolean_that_is_not_yes_or_no_kills_smtpd(edited, word: str) -> None:
    """mail_conf_bool.c: msg_fatal("bad boolean configuration: ..."); the service answers nothing,
    the master throttles it; the other services run."""
    edited.edit("mail/master.cf", WRAPPER, f"  -o smtpd_tls_wrappermode={word}").start()
    answers_nothing(465)
    log = edited.log()
    assert f"fatal: bad boolean configuration: smtpd_tls_wrappermode = {word}" in log
    assert "warning: /usr/lib/postfix/sbin/smtpd: bad command startup -- throttling" in log
    assert mail_from_in_clear(587)[1] == "530 5.7.0 Must issue a STARTTLS command first"


def test_a_boolean_is_read_in_any_case(edited) -> None:
    edited.edit("mail/master.cf", WRAPPER, "  -o smtpd_tls_wrappermode=Yes").start()
    assert hasattr(client_context().wrap_socket(connect(465), server_hostname="mail.lab.test"), "version")


def test_a_bad_boolean_of_the_client_kills_the_relay_s_smtp(edited) -> None:
    policy_maps = "\nsmtp_tls_policy_maps ="
    edited.edit("relay/main.cf", policy_maps, "\nsmtp_use_tls = true" + policy_maps).start()
    through_relay("alice@lab.test")
    assert edited.log("relay.lab.test")[-3:] == [
        "fatal: bad boolean configuration: smtp_use_tls = true",
        "warning: process /usr/lib/postfix/sbin/smtp pid 0 exit status 1",
        "warning: /usr/lib/postfix/sbin/smtp: bad command startup -- throttling"]


def test_an_o_option_without_equals_kills_smtpd(edited) -> None:
    """``-o name = value`` without braces gives smtpd ``-o name``: single_server.c's msg_fatal."""
    edited.edit("mail/master.cf", SUBMISSION_LEVEL, "  -o smtpd_tls_security_level = encrypt").start()
    answers_nothing(587)
    assert ('fatal: invalid "-o smtpd_tls_security_level" option value: missing \'=\' after attribute name'
            in edited.log())


def test_an_o_option_in_braces_may_hold_spaces(edited) -> None:
    """master(5), Postfix 3.0 and later: ``-o { name = value }``."""
    edited.edit("mail/master.cf", SUBMISSION_LEVEL, "  -o { smtpd_tls_security_level = encrypt }")
    edited.edit("mail/master.cf", "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject",
                "  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }").start()
    assert mail_from_in_clear(587)[1] == "530 5.7.0 Must issue a STARTTLS command first"


def test_a_service_bound_to_the_loopback_address_is_not_reached_from_other_hosts(edited) -> None:
    edited.edit("mail/master.cf", "\nsubmission inet", "\n127.0.0.1:submission inet").start()
    with pytest.raises(ConnectionRefusedError):
        connect(587)
    assert mail_from_in_clear(25)[1].startswith("250")


def test_a_service_on_another_address_or_port_name_is_refused_as_not_modelled(edited) -> None:
    from mailtls.sim.config import NotModelled

    edited.edit("mail/master.cf", "\nsubmission inet", "\n198.18.0.99:submission inet")
    with pytest.raises(NotModelled, match=r"does not model a service bound to 198\.18\.0\.99 \(labs/hosts/"
                                          r"mail/master\.cf: service 198\.18\.0\.99:submission\)"):
        edited.start()


def test_a_main_cf_line_without_equals_is_refused_in_postconf_s_words(edited) -> None:
    from mailtls.sim.config import PostfixRefused

    edited.edit("mail/main.cf", MAY, "smtpd_tls_security_level may")
    main_cf = generations.host_file(edited.labs / "hosts" / "mail", "main.cf", edited.generation)
    line = main_cf.read_text().splitlines().index("smtpd_tls_security_level may") + 1
    with pytest.raises(PostfixRefused) as refused:
        edited.start()
    program = {"3.10": "postfix", "3.7": "/usr/sbin/postconf"}[edited.generation.postfix]
    assert str(refused.value).splitlines()[1:] == [
        f"{program}: fatal: labs/hosts/mail/{edited.generation.folder}/main.cf, line {line}: "
        "missing '=' after attribute name: \"smtpd_tls_security_level may\""]


def test_a_handshake_with_a_server_that_never_answers_times_out_as_in_cpython(edited) -> None:
    """The client of a wrapper-mode port whose smtpd died meets ``ssl``'s own handshake timeout
    (measured on the real lab: ``_ssl.c:975: The handshake operation timed out`` with Python 3.11)."""
    from mailtls.sim.tls import handshake_timeout_message

    edited.edit("mail/master.cf", WRAPPER, "  -o smtpd_tls_wrappermode=true").start()
    with pytest.raises(TimeoutError) as timeout:
        client_context().wrap_socket(connect(465), server_hostname="mail.lab.test")
    assert str(timeout.value) == handshake_timeout_message()
    assert str(timeout.value).endswith("The handshake operation timed out")


def test_an_o_option_without_equals_kills_the_relay_s_smtp(edited) -> None:
    edited.edit("relay/master.cf", "-o syslog_name=postfix/$service_name",
                "-o syslog_name=postfix/$service_name -o smtp_tls_loglevel").start()
    through_relay("alice@lab.test")
    assert edited.log("relay.lab.test")[-3:] == [
        'fatal: invalid "-o smtp_tls_loglevel" option value: missing \'=\' after attribute name',
        "warning: process /usr/lib/postfix/sbin/smtp pid 0 exit status 1",
        "warning: /usr/lib/postfix/sbin/smtp: bad command startup -- throttling"]
