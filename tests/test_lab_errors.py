"""Bad input gets a clear error and leaves the lab as it was."""

from __future__ import annotations

import json
import smtplib

import pytest

from helpers.cli import mailtls
from mailtls.errors import LabError

pytestmark = pytest.mark.lab


def test_a_broken_postfix_file_is_refused_and_the_host_keeps_running(lab) -> None:
    main_cf = lab.labs / "hosts" / "relay" / "main.cf"
    original = main_cf.read_text()
    main_cf.write_text(original + "smtpd_tls_securty_level = may\n")  # a student's typo
    try:
        with pytest.raises(LabError) as refused:
            lab.backend.reload()
        assert "relay.lab.test" in str(refused.value)
        assert "smtpd_tls_securty_level" in str(refused.value)  # Postfix's own words, shown as they are
        # said once: `postfix check` runs postconf many times, and each says the warning again
        assert str(refused.value).count("unused parameter: smtpd_tls_securty_level=may") == 1
        with smtplib.SMTP(lab.address("relay.lab.test"), 25, timeout=10) as client:
            assert client.noop()[0] == 250
    finally:
        main_cf.write_text(original)


def assert_imap_answers(lab) -> None:
    """mail.lab.test's IMAP still answers on 143 and offers STARTTLS (the lab kept running)."""
    import imaplib

    client = imaplib.IMAP4(lab.address("mail.lab.test"), 143, timeout=10)
    assert "STARTTLS" in client.capabilities
    client.shutdown()


def test_a_broken_dovecot_file_is_refused_and_imap_keeps_running(lab) -> None:
    conf = lab.config_file("mail", "dovecot.conf")
    original = conf.read_text()
    conf.write_text(original.replace("ssl = yes", "ssl = maybe"))
    try:
        with pytest.raises(LabError, match="refuses the configuration of mail.lab.test"):
            lab.backend.reload()
        assert_imap_answers(lab)
    finally:
        conf.write_text(original)
        lab.backend.reload()


# The certificate setting of each generation's Dovecot, as the lab's file writes it.
CERTIFICATE_SETTING = {12: "ssl_cert = </run/mailtls/mail.lab.test.pem",
                       13: "ssl_server_cert_file = /run/mailtls/mail.lab.test.pem"}


def test_a_missing_certificate_file_is_refused_and_imap_keeps_running(lab) -> None:
    """Dovecot 2.4 only reads the file when it starts, so the check must read it too."""
    conf = lab.config_file("mail", "dovecot.conf")
    original = conf.read_text()
    setting = CERTIFICATE_SETTING[lab.debian]
    conf.write_text(original.replace(setting, setting.replace("mail.lab.test.pem", "missing.pem")))
    try:
        with pytest.raises(LabError) as refused:
            lab.backend.reload()
        said = str(refused.value)
        assert "refuses the configuration of mail.lab.test" in said and "missing.pem" in said, said
        assert "Traceback" not in said
        assert_imap_answers(lab)
    finally:
        conf.write_text(original)
        lab.backend.reload()


# A setting of the other generation's Dovecot: 2.4 renamed 2.3's disable_plaintext_auth to
# auth_allow_cleartext (https://doc.dovecot.org/2.4.0/installation/upgrade/2.3-to-2.4.html).
OTHER_GENERATIONS_NAME = {12: "auth_allow_cleartext = no", 13: "disable_plaintext_auth = yes"}


def test_the_other_generations_dovecot_setting_is_refused_in_dovecots_words(lab) -> None:
    conf = lab.config_file("mail", "dovecot.conf")
    original = conf.read_text()
    line = OTHER_GENERATIONS_NAME[lab.debian]
    conf.write_text(original + line + "\n")
    try:
        with pytest.raises(LabError) as refused:
            lab.backend.reload()
        said = str(refused.value)
        assert "refuses the configuration of mail.lab.test" in said
        assert f"Unknown setting: {line.split()[0]}" in said, said
    finally:
        conf.write_text(original)
        lab.backend.reload()


def test_up_for_another_generation_while_a_lab_is_up_is_one_line(lab) -> None:
    other = 12 if lab.debian == 13 else 13
    done = mailtls("lab", "up", "--backend", lab.backend_name, "--debian", str(other))
    assert (done.returncode, done.stdout) == (1, ""), done.stdout + done.stderr
    assert done.stderr == (f"error: a Debian {lab.debian} lab is up: `python -m mailtls lab down` first, "
                           f"then `lab up --debian {other}`\n")
    status = mailtls("lab", "status", "--json", check=True)
    assert json.loads(status.stdout)["debian"] == lab.debian  # the lab is as it was


def test_cli_errors_are_one_clear_line(lab) -> None:
    done = mailtls("lab", "logs", "nosuchhost")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "mail.lab.test" in done.stderr
    assert "Traceback" not in done.stderr


def test_status_json_is_the_contract(lab) -> None:
    import json

    done = mailtls("lab", "status", "--json", check=True)
    status = json.loads(done.stdout)
    assert status["backend"] == lab.backend_name and status["ca_file"].startswith("/")
    assert status["debian"] == lab.debian in (12, 13)
    assert status["servers"]["dovecot"].startswith(lab.generation.dovecot + ".")
    assert status["servers"]["postfix"].startswith(lab.generation.postfix + ".")
    services = {(s["host"], s["service"]): s for s in status["services"]}
    assert services[("mail.lab.test", "submissions")]["port"] == 465
    assert services[("mail.lab.test", "submissions")]["tls"] == "implicit"
    assert services[("legacy.lab.test", "smtp")]["tls"] == "none"
    assert {u["login"] for u in status["users"]} == {"alice@lab.test", "bob@lab.test"}
