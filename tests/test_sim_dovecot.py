"""The simulated Dovecot obeys the TLS settings the course touches as Dovecot 2.3 and 2.4 do.

Every expected text below was measured on the real servers, with the lab's ``dovecot.conf`` of each
generation edited as the test edits it, clients on another address than the server's:
Dovecot 2.3.19.1 (Debian 12's package, run on this machine) and 2.4.1 (the image
``localhost/mailtls-host:debian13``), on 30 November 2026. The real lab (containers, Debian 13)
confirmed ``ssl = no``, the protocols exercise's ``ssl_min_protocol = TLSv1`` with ``@SECLEVEL=0``
(a TLS 1.1 client connects), ``ssl_min_protocol = TLSv1.4``, the relay's key and a missing
certificate file (``lab reload`` fails: ``dovecot`` exits with status 89, and IMAP is down).
"""

from __future__ import annotations

import imaplib
import shutil
import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailtls import generations, maillog
from mailtls.generations import BOOKWORM, GENERATIONS, TRIXIE, Generation
from mailtls.hosts import MAIL, SHIPPED_LABS
from mailtls.sim.config import DovecotConfig

MAIL_ADDRESS = "198.18.0.10"
TIMEOUT = 10


@contextmanager
def simulated(generation: Generation, tmp_path: Path,
              edit: Callable[[str], str] | None = None) -> Iterator[object]:
    """A simulated lab of ``generation`` whose mail host runs ``edit(dovecot.conf)``; this process's
    sockets reach it until the block ends."""
    from mailtls.sim.lab import SimLab

    labs = tmp_path / "labs"
    shutil.copytree(SHIPPED_LABS, labs)
    conf = labs / "hosts" / "mail" / generation.folder / "dovecot.conf"
    if edit is not None:
        conf.write_text(edit(conf.read_text()))
    saved = socket.create_connection
    try:
        yield SimLab(labs=labs, files=tmp_path / "files", generation=generation)
    finally:
        socket.create_connection = saved


def replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)
    return edit


def client(version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that checks nothing (the version is the point), of one TLS version if given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if version is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def imaps_version(version: ssl.TLSVersion) -> str | None:
    """The version a one-version client gets on 993, or None when the handshake fails."""
    try:
        with imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=client(version), timeout=TIMEOUT) as imap:
            return imap.sock.version()
    except (ssl.SSLError, OSError, imaplib.IMAP4.abort):
        return None


def dovecot_lines(lab) -> list[maillog.DovecotLine]:
    text = lab.dovecot_log_file(MAIL.name).read_text()
    lines = [maillog.DovecotLine.parse(line) for line in text.splitlines()]
    assert all(lines)
    return lines  # type: ignore[return-value]


def min_protocol(value: str, cipher_list: str | None = None) -> Callable[[str], str]:
    new = f"ssl_min_protocol = {value}\n" + (f"ssl_cipher_list = {cipher_list}\n" if cipher_list else "")
    return replace("ssl_min_protocol = TLSv1.2\n", new)


# -- ssl = no ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_ssl_no_drops_starttls_and_the_implicit_tls_listener(generation: Generation,
                                                             tmp_path: Path) -> None:
    """Measured: the greeting loses STARTTLS but keeps LOGINDISABLED; 993 (``ssl = yes``) refuses the
    connection; Dovecot starts."""
    greeting = {"2.3": "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ "
                       "LOGINDISABLED] Dovecot (Debian) ready.",
                "2.4": "* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS ID ENABLE IDLE SASL-IR LITERAL+ "
                       "LOGINDISABLED] Dovecot ready."}
    with simulated(generation, tmp_path, replace("\nssl = yes\n", "\nssl = no\n")):
        imap = imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT)
        assert imap.welcome.decode() == greeting[generation.dovecot]
        imap.logout()
        with pytest.raises(ConnectionRefusedError):
            imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=client(), timeout=TIMEOUT)


# -- ssl_min_protocol and the protocols exercise's @SECLEVEL=0 --------------------------------------

SECLEVEL_0 = ("ALL:!kRSA:!SRP:!kDHd:!DSS:!aNULL:!eNULL:!EXPORT:!DES:!3DES:!MD5:!PSK:!RC4:!ADH:!LOW@STRENGTH"
              ":@SECLEVEL=0")
VERSIONS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
# What a client of each version got on 993 (None: a failed handshake), measured on 2.3.19.1 and 2.4.1
# alike: OpenSSL's default security level keeps TLS 1.0 and 1.1 out whatever ssl_min_protocol says.
ACCEPTED = {
    ("TLSv1.2", None): [None, None, "TLSv1.2", "TLSv1.3"],
    ("TLSv1", None): [None, None, "TLSv1.2", "TLSv1.3"],
    ("ANY", None): [None, None, "TLSv1.2", "TLSv1.3"],
    ("tlsv1.2", None): [None, None, "TLSv1.2", "TLSv1.3"],
    ("TLSv1.3", None): [None, None, None, "TLSv1.3"],
    ("TLSv1", SECLEVEL_0): ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"],
}


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize(("value", "cipher_list"), list(ACCEPTED), ids=lambda v: str(v)[:12])
def test_min_protocol_decides_the_versions_993_accepts(generation: Generation, value: str,
                                                       cipher_list: str | None, tmp_path: Path) -> None:
    with simulated(generation, tmp_path, min_protocol(value, cipher_list)):
        assert [imaps_version(version) for version in VERSIONS] == ACCEPTED[(value, cipher_list)]


def test_dovecot_23_hangs_up_without_an_alert_and_logs_why(tmp_path: Path) -> None:
    """2.3 lets TLS 1.0 through ``ssl_min_protocol = TLSv1``, then finds no signature algorithm; 2.4
    says ``unsupported protocol`` and sends the protocol_version alert (test below). Measured lines:

    2.3: ``imap-login: Info: Disconnected: Connection closed: SSL_accept() failed: error:0A000076:SSL
    routines::no suitable signature algorithm (no auth attempts in 0 secs): user=<>, rip=..., lip=...,
    TLS handshaking: SSL_accept() failed: error:0A000076:SSL routines::no suitable signature algorithm,
    session=<...>``; CPython's client then gets an EOF, no alert.
    """
    with simulated(BOOKWORM, tmp_path, min_protocol("TLSv1")) as lab:
        with pytest.raises(ssl.SSLError) as raised:
            imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=client(ssl.TLSVersion.TLSv1), timeout=TIMEOUT)
        assert "ALERT" not in str(raised.value)
        event = maillog.LoginEvent.parse(dovecot_lines(lab)[-1].text)
        error = "SSL_accept() failed: error:0A000076:SSL routines::no suitable signature algorithm"
        assert event is not None
        assert event.event == f"Disconnected: Connection closed: {error} (no auth attempts in 0 secs)"
        assert event.secured == f"TLS handshaking: {error}"


def test_dovecot_24_sends_the_protocol_version_alert(tmp_path: Path) -> None:
    """Measured on 2.4.1: ``[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version`` at the
    client, and ``Login aborted: Connection closed: SSL_accept() failed: error:0A000102:SSL
    routines::unsupported protocol (disconnected during TLS handshake) (tls_handshake_not_finished)``."""
    with simulated(TRIXIE, tmp_path, min_protocol("TLSv1.3")) as lab:
        with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"):
            imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=client(ssl.TLSVersion.TLSv1_2),
                              timeout=TIMEOUT)
        event = maillog.LoginEvent.parse(dovecot_lines(lab)[-1].text)
        assert event is not None and event.event == (
            "Login aborted: Connection closed: SSL_accept() failed: error:0A000102:SSL routines::unsupported "
            "protocol (disconnected during TLS handshake) (tls_handshake_not_finished)")


def test_any_is_a_warning_at_start_in_24(tmp_path: Path) -> None:
    """Measured on 2.4.1: ``config: Warning: ssl_min_protocol=ANY is used - This is insecure and intended
    only for testing`` once Dovecot starts."""
    with simulated(TRIXIE, tmp_path, min_protocol("ANY")) as lab:
        warning = dovecot_lines(lab)[1]
        assert (warning.process, warning.level, warning.text) == (
            "config", "Warning",
            "ssl_min_protocol=ANY is used - This is insecure and intended only for testing")


# -- Settings that leave Dovecot up but without TLS ---------------------------------------------------

INIT_ERRORS = {
    ("min", "2.3"): "Failed to initialize SSL server context: Unknown ssl_min_protocol setting 'TLSv1.4'",
    ("min", "2.4"): "Failed to initialize SSL connection: Couldn't initialize SSL server context: Can't set "
                    "minimum protocol to 'TLSv1.4' (ssl_min_protocol setting): Unknown value",
    ("key", "2.3"): "Failed to initialize SSL server context: Can't load SSL private key (ssl_key setting): "
                    "Key is for a different cert than ssl_cert",
    ("key", "2.4"): "Failed to initialize SSL connection: Couldn't initialize SSL server context: Can't load "
                    "SSL private key (ssl_server_key_file setting): Key file is for a different certificate "
                    "file",
}


def other_key(generation: Generation) -> Callable[[str], str]:
    """The relay's key in place of mail.lab.test's (a key for another certificate)."""
    if generation.dovecot == "2.3":
        return replace("ssl_key = </run/mailtls/mail.lab.test.key",
                       "ssl_key = </run/mailtls/relay.lab.test.key")
    return replace("ssl_server_key_file = /run/mailtls/mail.lab.test.key",
                   "ssl_server_key_file = /run/mailtls/relay.lab.test.key")


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("cause", ["min", "key"])
def test_tls_that_cannot_be_set_up_fails_at_each_connection(generation: Generation, cause: str,
                                                             tmp_path: Path) -> None:
    """Measured: Dovecot starts; STARTTLS is answered ``OK Begin TLS negotiation now.``; then, once
    imap-login has failed to set up TLS (here: when the client's ClientHello arrives), ``* BYE
    [UNAVAILABLE] TLS initialization failed.`` in clear text and the connection closes, so a
    client's handshake reads the BYE (WRONG_VERSION_NUMBER); 993 resets the connection. Each logs
    imap-login's Error line (and 143 its ``TLS initialization failed.``)."""
    edit = min_protocol("TLSv1.4") if cause == "min" else other_key(generation)
    with simulated(generation, tmp_path, edit) as lab:
        sock = socket.create_connection((MAIL_ADDRESS, 143), TIMEOUT)
        sock.recv(4096)
        sock.sendall(b"a STARTTLS\r\n")
        assert sock.recv(4096) == b"a OK Begin TLS negotiation now.\r\n"
        sock.sendall(b"\x16\x03\x01\x00\x05hello")  # the start of a ClientHello
        assert sock.recv(4096) == b"* BYE [UNAVAILABLE] TLS initialization failed.\r\n"
        assert sock.recv(4096) == b""
        sock.close()
        with pytest.raises(ConnectionResetError):
            imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=client(), timeout=TIMEOUT)
        lines = dovecot_lines(lab)[1:]
        events = [maillog.LoginEvent.parse(line.text) for line in lines]
        assert [(line.level, event.event) for line, event in zip(lines, events, strict=True)] == [
            ("Error", INIT_ERRORS[(cause, generation.dovecot)]),
            ("Info", "Disconnected: TLS initialization failed. (no auth attempts in 0 secs)"
             if generation.dovecot == "2.3" else
             "Login aborted: TLS initialization failed. (no auth attempts in 0 secs) (no_auth_attempts)"),
            ("Error", INIT_ERRORS[(cause, generation.dovecot)]),
        ]
        imap = imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT)
        with pytest.raises(ssl.SSLError, match="WRONG_VERSION_NUMBER"):  # as on the real lab
            imap.starttls(ssl_context=client())


# -- Settings Dovecot refuses to start with -----------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("which", ["certificate", "key"])
@pytest.mark.parametrize("ssl_setting", ["yes", "no"])
def test_a_missing_certificate_file_stops_dovecot(generation: Generation, which: str, ssl_setting: str,
                                                  tmp_path: Path) -> None:
    """Measured: ``doveconf -n`` accepts the file, ``dovecot`` does not start (with ``ssl = no`` too):
    ``doveconf: Fatal: Error in configuration file FILE line N: ssl_cert: Can't open file PATH: No such
    file or directory`` (2.3), ``...: ssl_server_cert_file: open(PATH) failed: No such file or
    directory`` (2.4)."""
    from mailtls.sim.config import DovecotRefused

    name = {("2.3", "certificate"): "ssl_cert", ("2.3", "key"): "ssl_key",
            ("2.4", "certificate"): "ssl_server_cert_file", ("2.4", "key"): "ssl_server_key_file"}[
        (generation.dovecot, which)]
    suffix = "pem" if which == "certificate" else "key"
    old = f"/run/mailtls/mail.lab.test.{suffix}"
    new = "/run/mailtls/missing." + suffix
    def edit(text: str) -> str:
        return replace("\nssl = yes\n", f"\nssl = {ssl_setting}\n")(replace(old, new)(text))

    with pytest.raises(DovecotRefused) as refused, simulated(generation, tmp_path, edit):
        pass
    conf = tmp_path / "labs" / "hosts" / "mail" / generation.folder / "dovecot.conf"
    line = next(number for number, text in enumerate(conf.read_text().splitlines(), start=1) if new in text)
    said = (f"Can't open file {new}: No such file or directory" if generation.dovecot == "2.3"
            else f"open({new}) failed: No such file or directory")
    assert str(refused.value) == (f"doveconf: Fatal: Error in configuration file {conf} line {line}: "
                                  f"{name}: {said}")


def test_23_certificate_without_its_angle_bracket(tmp_path: Path) -> None:
    """Measured on 2.3.19.1: ``ssl_cert = /path`` (no ``<``) is read as PEM text: Dovecot starts, then
    ``Failed to initialize SSL server context: Can't load SSL certificate (ssl_cert setting): There is no
    valid PEM certificate.``"""
    edit = replace("ssl_cert = </run/mailtls/", "ssl_cert = /run/mailtls/")
    with simulated(BOOKWORM, tmp_path, edit) as lab:
        with pytest.raises(ConnectionResetError):
            imaplib.IMAP4_SSL(MAIL_ADDRESS, 993, ssl_context=client(), timeout=TIMEOUT)
        assert dovecot_lines(lab)[-1].text.startswith(
            "Failed to initialize SSL server context: Can't load SSL certificate (ssl_cert setting): "
            "There is no valid PEM certificate.: user=<>")


# -- Listeners ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_port_0_disables_a_listener(generation: Generation, tmp_path: Path) -> None:
    """Measured: with ``port = 0`` in ``inet_listener imap``, 143 refuses connections and 993 works."""
    with simulated(generation, tmp_path, replace("port = 143", "port = 0")):
        with pytest.raises(ConnectionRefusedError):
            imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT)
        assert imaps_version(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"


# -- What the simulation does not model ----------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_another_cipher_list_is_refused_as_not_modelled(generation: Generation, tmp_path: Path) -> None:
    from mailtls.sim.smtpd import NotModelled

    with pytest.raises(NotModelled, match="^the simulated lab does not model ssl_cipher_list = HIGH; the"):
        with simulated(generation, tmp_path, min_protocol("TLSv1.2", "HIGH")):
            pass


# Measured with the real lab's `lab reload` (the lab's files, one line changed): Dovecot 2.3.19.1
# (native, Debian 12) and 2.4.1 (containers, Debian 13).
@pytest.mark.parametrize("debian", [13, 12])
def test_an_invalid_ssl_value_is_refused_in_doveconf_s_words(debian: int, tmp_path) -> None:
    from mailtls.sim.config import DovecotRefused

    conf = tmp_path / "dovecot.conf"
    original = (SHIPPED_LABS / "hosts" / "mail" / f"debian{debian}" / "dovecot.conf").read_text()
    conf.write_text(original.replace("\nssl = yes\n", "\nssl = maybe\n"))
    line = conf.read_text().splitlines().index("ssl = maybe") + 1
    with pytest.raises(DovecotRefused) as refused:
        DovecotConfig.read(conf, generations.get(debian))
    what = "ssl: Invalid value: maybe" if debian == 13 else "Invalid value: maybe"
    assert str(refused.value) == f"doveconf: Fatal: Error in configuration file {conf} line {line}: {what}"


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_cleartext_with_ssl_required_is_refused_by_dovecot_2_4_only(generation: Generation, tmp_path) -> None:
    from mailtls.sim.config import DovecotRefused

    cleartext = {"2.4": ("auth_allow_cleartext = no", "auth_allow_cleartext = yes"),
                 "2.3": ("disable_plaintext_auth = yes", "disable_plaintext_auth = no")}[generation.dovecot]

    def edit(text: str) -> str:
        return text.replace("\nssl = yes\n", "\nssl = required\n").replace(*cleartext)

    if generation.dovecot == "2.3":  # Dovecot 2.3 starts, and refuses passwords before TLS
        with simulated(generation, tmp_path, edit) as lab:
            assert lab.dovecot[MAIL.name].ssl == "required"  # type: ignore[attr-defined]
        return
    with pytest.raises(DovecotRefused) as refused, simulated(generation, tmp_path, edit):
        pass
    why = "auth_allow_cleartext=yes has no effect with ssl=required"
    said = str(refused.value)
    assert said.startswith(f"doveconf: Error: {why}\ndoveconf: Fatal: Error in configuration file ")
    assert said.endswith(f"dovecot.conf: {why}")


# -- How values are read --------------------------------------------------------------------------------
# Measured with ``doveconf -n -c FILE`` on the lab's file with one line changed: Dovecot 2.3.19.1 (Debian
# 12's package, on this machine) and 2.4.1 (the image localhost/mailtls-host:debian13), 30 November 2026.

CLEARTEXT = {"2.3": "disable_plaintext_auth = yes", "2.4": "auth_allow_cleartext = no"}


def edited_path(generation: Generation, tmp_path: Path) -> Path:
    return tmp_path / "hosts" / "mail" / generation.folder / "dovecot.conf"


def read_edited(generation: Generation, tmp_path: Path, old: str, new: str) -> DovecotConfig:
    conf = edited_path(generation, tmp_path)
    conf.parent.mkdir(parents=True, exist_ok=True)
    original = (SHIPPED_LABS / "hosts" / "mail" / generation.folder / "dovecot.conf").read_text()
    conf.write_text(replace(old, new)(original))
    return DovecotConfig.read(conf, generation)


def refusal(generation: Generation, tmp_path: Path, old: str, new: str) -> str:
    from mailtls.sim.config import DovecotRefused

    with pytest.raises(DovecotRefused) as refused:
        read_edited(generation, tmp_path, old, new)
    conf = edited_path(generation, tmp_path)
    line = [x.strip() for x in conf.read_text().splitlines()].index(new.strip()) + 1
    prefix = f"doveconf: Fatal: Error in configuration file {conf} line {line}: "
    said = str(refused.value)
    assert said.startswith(prefix), said
    return said.removeprefix(prefix)


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("word", ["Yes", "y", "1", "YES"])
def test_a_boolean_is_yes_in_any_case_and_as_y_or_1(generation: Generation, word: str,
                                                     tmp_path: Path) -> None:
    name, _, _ = CLEARTEXT[generation.dovecot].partition(" = ")
    config = read_edited(generation, tmp_path, CLEARTEXT[generation.dovecot], f"{name} = {word}")
    assert config.cleartext_allowed is (generation.dovecot == "2.4")  # 2.3 disables, 2.4 allows
    listener = "    port = 993\n    ssl = "
    config = read_edited(generation, tmp_path, listener + "yes", listener + word)
    assert config.listeners[993] is True


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_a_boolean_no_in_capitals_is_no(generation: Generation, tmp_path: Path) -> None:
    name, _, _ = CLEARTEXT[generation.dovecot].partition(" = ")
    config = read_edited(generation, tmp_path, CLEARTEXT[generation.dovecot], f"{name} = NO")
    assert config.cleartext_allowed is (generation.dovecot == "2.3")


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("word", ["true", "maybe"])
def test_another_boolean_word_is_refused_in_doveconf_s_words(generation: Generation, word: str,
                                                              tmp_path: Path) -> None:
    name, _, _ = CLEARTEXT[generation.dovecot].partition(" = ")
    said = refusal(generation, tmp_path, CLEARTEXT[generation.dovecot], f"{name} = {word}")
    named = f"{name}: " if generation.dovecot == "2.4" else ""
    assert said == f"{named}Invalid boolean value: {word} (use yes or no)"
    said = refusal(generation, tmp_path, "    ssl = yes", f"    ssl = {word}")
    named = "ssl: " if generation.dovecot == "2.4" else ""
    assert said == f"{named}Invalid boolean value: {word} (use yes or no)"


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_the_ssl_setting_is_not_a_boolean(generation: Generation, tmp_path: Path) -> None:
    said = refusal(generation, tmp_path, "\nssl = yes\n", "\nssl = Yes\n")
    assert said == ("ssl: " if generation.dovecot == "2.4" else "") + "Invalid value: Yes"


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
@pytest.mark.parametrize("quote", ['"', "'"])
def test_quotes_around_a_value_are_not_part_of_it(generation: Generation, quote: str, tmp_path: Path) -> None:
    config = read_edited(generation, tmp_path, "ssl_min_protocol = TLSv1.2",
                         f"ssl_min_protocol = {quote}TLSv1.3{quote}")
    assert config.ssl_min_protocol == "TLSv1.3"
    config = read_edited(generation, tmp_path, "\nssl = yes\n", f"\nssl = {quote}required{quote}\n")
    assert config.ssl == "required"


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_a_port_name_is_refused_in_doveconf_s_words(generation: Generation, tmp_path: Path) -> None:
    said = refusal(generation, tmp_path, "    port = 993", "    port = imaps")
    assert said == ("port: " if generation.dovecot == "2.4" else "") + "Invalid port number imaps"


@pytest.mark.parametrize("generation", GENERATIONS, ids=lambda g: g.folder)
def test_a_capital_yes_still_refuses_a_password_before_tls(generation: Generation, tmp_path: Path) -> None:
    """``disable_plaintext_auth = Yes`` (2.3) and ``auth_allow_cleartext = No`` (2.4) keep 143 from
    taking a password before STARTTLS."""
    name, _, value = CLEARTEXT[generation.dovecot].partition(" = ")
    with simulated(generation, tmp_path, replace(CLEARTEXT[generation.dovecot], f"{name} = {value.title()}")):
        imap = imaplib.IMAP4(MAIL_ADDRESS, 143, timeout=TIMEOUT)
        assert "LOGINDISABLED" in imap.capabilities
        imap.shutdown()
