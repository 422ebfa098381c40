"""The relay's client TLS levels, on real servers: what is delivered, what is deferred, and why.

Each test edits the scratch copy of ``labs/hosts/relay/main.cf`` with ``postconf -e``, as a
student would, and applies it with the lab's reload.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from helpers.mail import delivery_line, in_maildir, relay_log, send_through_relay
from helpers.polling import within
from mailtls.config import LabConfig
from mailtls.hosts import RELAY

pytestmark = pytest.mark.lab

LAB_FILES = LabConfig().runtime  # the single lab's generated files
RELAY_LOG = relay_log()


@pytest.fixture
def relay(lab):
    """Yields a function that sets the relay's main.cf; puts the original back afterwards."""
    config = lab.labs / "hosts" / "relay"
    original = (config / "main.cf").read_text()

    def set_level(level: str) -> None:
        subprocess.run(["postconf", "-c", str(config), "-e", f"smtp_tls_security_level={level}"], check=True)
        lab.backend.reload()

    yield set_level
    (config / "main.cf").write_text(original)
    lab.backend.reload()
    lab.backend.postfix_command(RELAY, "postsuper", "-d", "ALL")  # no deferred mail into the next test


def arrived(maildir: Path, subject: str, timeout: float = 10) -> bool:
    """Whether the message reaches ``maildir`` within ``timeout`` seconds."""
    return bool(within(lambda: in_maildir(maildir, subject), timeout, 0.2))


def test_may_delivers_to_legacy_in_clear_and_to_selfsigned_encrypted(lab, relay) -> None:
    relay("may")
    start = len(RELAY_LOG.read_text())
    legacy_id, legacy_subject = send_through_relay(lab, "student@legacy.lab.test")
    selfsigned_id, selfsigned_subject = send_through_relay(lab, "student@selfsigned.lab.test")
    assert "status=sent" in delivery_line(legacy_id)
    assert "status=sent" in delivery_line(selfsigned_id)
    new_log = RELAY_LOG.read_text()[start:]
    assert "TLS connection established to legacy.lab.test" not in new_log
    assert "Untrusted TLS connection established to selfsigned.lab.test" in new_log
    assert arrived(LAB_FILES / "mail" / "legacy.lab.test", legacy_subject)
    assert arrived(LAB_FILES / "mail" / "selfsigned.lab.test", selfsigned_subject)


def test_encrypt_defers_to_a_server_without_tls(lab, relay) -> None:
    relay("encrypt")
    queue_id, subject = send_through_relay(lab, "student@legacy.lab.test")
    line = delivery_line(queue_id)
    assert "status=deferred" in line and "TLS is required, but was not offered" in line
    assert not arrived(LAB_FILES / "mail" / "legacy.lab.test", subject, timeout=1)


def test_encrypt_still_delivers_to_a_self_signed_server(lab, relay) -> None:
    relay("encrypt")
    queue_id, _ = send_through_relay(lab, "student@selfsigned.lab.test")
    assert "status=sent" in delivery_line(queue_id)


@pytest.mark.parametrize("level", ["verify", "secure"])
def test_verifying_levels_defer_to_selfsigned_and_deliver_to_mail(lab, relay, level: str) -> None:
    relay(level)
    start = len(RELAY_LOG.read_text())
    refused_id, refused_subject = send_through_relay(lab, "student@selfsigned.lab.test")
    line = delivery_line(refused_id)
    assert "status=deferred" in line and "Server certificate not verified" in line and "dsn=4.7.5" in line
    assert not arrived(LAB_FILES / "mail" / "selfsigned.lab.test", refused_subject, timeout=1)

    delivered_id, _ = send_through_relay(lab, "alice@lab.test")
    assert "status=sent" in delivery_line(delivered_id)
    assert "Verified TLS connection established to mail.lab.test" in RELAY_LOG.read_text()[start:]
