"""Five configurations and clients on which the simulated lab once disagreed with the real one.

Each was taken from public problem reports and tried on the real lab first; ``EXPECTED`` is what
the real lab did (measured on Debian 12 and Debian 13, both backends; the corpus of
``tests/test_sim_corpus.py`` keeps comparing the same edits with the real servers). This module
runs them on the simulated lab, with nothing but the package and the standard library, so the
same code runs in CPython (``tests/test_sim.py``, both TLS engines) and in the browser
(``tests/test_browser_lab.py`` hands it to a JupyterLite REPL in Chromium):

    python tests/reported_cases.py   # prints one JSON line: {case: outcome}

An outcome is a short string: ``ok TLSv1.3``, or the exception's class and OpenSSL reason, or
the relay's verdict, or the first line of a refusal.
"""

from __future__ import annotations

import imaplib
import json
import re
import shutil
import smtplib
import ssl
import tempfile
from pathlib import Path

ADDRESS, PROTOCOL, VERIFY_WITHOUT_CA, OTHER_GENERATION, MISSING_CHAIN = (
    "address", "protocol", "verify-without-ca", "other-generation", "missing-chain")

#: What the real lab of Debian 13 does (see the module's docstring; :func:`expected` for Debian 12).
EXPECTED = {
    ADDRESS: "ok TLSv1.3",
    PROTOCOL: "SSLError TLSV1_ALERT_PROTOCOL_VERSION",
    VERIFY_WITHOUT_CA: "deferred 4.7.5 Server certificate not verified",
    OTHER_GENERATION: "refused: Unknown setting: auth_allow_cleartext",
    MISSING_CHAIN: "220 then SSLError SSLV3_ALERT_HANDSHAKE_FAILURE; logged: error opening chain file",
}


def expected(debian: int) -> dict[str, str]:
    """What the real lab of Debian ``debian`` does. Dovecot 2.3 (Debian 12) hangs up on a client
    whose versions it refuses, without an alert (measured with Dovecot 2.3.19.1); CPython reports
    that end of the stream as Python's version does (see ``closed_by_peer`` in
    :mod:`mailtls.sim.browser_tls`)."""
    if debian == 13:
        return dict(EXPECTED)
    closed = ("SSLZeroReturnError" if ssl.create_default_context().options & ssl.OP_IGNORE_UNEXPECTED_EOF
              else "SSLEOFError UNEXPECTED_EOF_WHILE_READING")
    return {**EXPECTED, PROTOCOL: closed}


def outcome(failure: BaseException) -> str:
    """``SSLError TLSV1_ALERT_PROTOCOL_VERSION``: the class and, for ``ssl`` errors, the reason."""
    reason = getattr(failure, "reason", None)
    return type(failure).__name__ + (f" {reason}" if reason else "")


def edited_labs(edits: list[tuple[str, str, str]]) -> Path:
    """A copy of the lab's files with ``(file, old, new)`` replacements (each ``old`` exactly once)."""
    from mailtls.hosts import SHIPPED_LABS

    labs = Path(tempfile.mkdtemp(prefix="reported-")) / "labs"
    shutil.copytree(SHIPPED_LABS, labs)
    for name, old, new in edits:
        path = labs / name
        text = path.read_text()
        assert text.count(old) == 1, f"{name}: {old!r} is not there exactly once"
        path.write_text(text.replace(old, new))
    return labs


def simulate(labs: Path | None, debian: int):
    """A simulated lab of Debian ``debian`` over ``labs`` (the shipped files: None), as a
    :class:`mailtls.lab.Lab` whose names resolve to it; its :class:`SimLab` is ``lab.sim``."""
    from mailtls import generations
    from mailtls.hosts import SHIPPED_LABS
    from mailtls.lab import Lab, resolve_lab_names
    from mailtls.sim.lab import SimLab
    from mailtls.status import LabStatus

    sim = SimLab(labs=labs or SHIPPED_LABS, generation=generations.get(debian))
    lab = Lab(LabStatus.read(sim.files))
    resolve_lab_names({e.host: e.address for e in lab.services})
    lab.sim = sim
    return lab


def case_address(debian: int) -> str:
    """STARTTLS to 198.18.0.10:587, the client naming the server by its address."""
    lab = simulate(None, debian)
    try:
        with smtplib.SMTP(lab.address("mail.lab.test"), 587, timeout=10) as client:
            client.starttls(context=lab.ssl_context())
            return f"ok {client.sock.version()}"
    except Exception as failure:  # noqa: BLE001 - the outcome is what is compared
        return outcome(failure)


def case_protocol(debian: int) -> str:
    """Dovecot's ``ssl_min_protocol = TLSv1.3``, a client whose maximum is TLS 1.2, on 993."""
    conf = f"hosts/mail/debian{debian}/dovecot.conf"
    labs = edited_labs([(conf, "ssl_min_protocol = TLSv1.2", "ssl_min_protocol = TLSv1.3")])
    lab = simulate(labs, debian)
    context = lab.ssl_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        with imaplib.IMAP4_SSL("mail.lab.test", 993, ssl_context=context, timeout=10) as client:
            return f"ok {client.sock.version()}"
    except Exception as failure:  # noqa: BLE001
        return outcome(failure)


def case_verify_without_ca(debian: int) -> str:
    """The relay without ``smtp_tls_CAfile``, and ``[mail.lab.test] verify`` in its policy table."""
    labs = edited_labs([
        ("hosts/relay/main.cf", "\nsmtp_tls_CAfile =", "\n#smtp_tls_CAfile ="),
        ("hosts/relay/tls_policy", "#[mail.lab.test]         secure match=mail.lab.test",
         "[mail.lab.test]         verify"),
    ])
    lab = simulate(labs, debian)
    with smtplib.SMTP(lab.address("relay.lab.test"), 25, timeout=10) as client:
        client.ehlo()
        client.mail("teacher@relay.lab.test")
        client.rcpt("alice@lab.test")
        code, reply = client.data(b"Subject: reported case\r\n\r\nHello\r\n")
    queue_id = re.search(rb"queued as (\w+)", reply)[1].decode()
    from mailtls import maillog

    for line in lab.log("relay.lab.test").splitlines():
        found = maillog.delivery(line)
        if found is not None and found.queue_id == queue_id:
            return f"{found.status} {found.dsn} {found.reason}"
    return "no delivery line"


def case_other_generation(debian: int) -> str:
    """Dovecot 2.4's ``auth_allow_cleartext = no`` in Dovecot 2.3's file (Debian 12 only)."""
    labs = edited_labs([("hosts/mail/debian12/dovecot.conf", "disable_plaintext_auth = yes",
                         "auth_allow_cleartext = no")])
    from mailtls.errors import LabError

    try:
        simulate(labs, 12)
    except LabError as refused:  # doveconf's "Fatal: Error in configuration file F line N: WHY"
        return "refused: " + re.split(r" line \d+: ", str(refused).splitlines()[0])[-1]
    return "started"


def case_missing_chain(debian: int) -> str:
    """``smtpd_tls_chain_files`` naming a file that does not exist; STARTTLS on 25."""
    conf = f"hosts/mail/debian{debian}/main.cf"
    labs = edited_labs([(conf, "smtpd_tls_chain_files = /run/mailtls/mail.lab.test.chain.pem",
                         "smtpd_tls_chain_files = /run/mailtls/missing.chain.pem")])
    lab = simulate(labs, debian)
    said = ""
    try:
        with smtplib.SMTP("mail.lab.test", 25, timeout=10) as client:
            client.ehlo()
            code, _ = client.docmd("STARTTLS")
            said = f"{code} then "
            client.sock = lab.ssl_context().wrap_socket(client.sock, server_hostname="mail.lab.test")
            said += "ok"
    except Exception as failure:  # noqa: BLE001
        said += outcome(failure)
    logged = "error opening chain file" in lab.log("mail.lab.test")
    return said + ("; logged: error opening chain file" if logged else "; nothing logged")


CASES = {ADDRESS: case_address, PROTOCOL: case_protocol, VERIFY_WITHOUT_CA: case_verify_without_ca,
         OTHER_GENERATION: case_other_generation, MISSING_CHAIN: case_missing_chain}


def run(debian: int = 13) -> dict[str, str]:
    """Every case on the simulated lab of Debian ``debian``: {case: outcome}."""
    return {name: case(debian) for name, case in CASES.items()}


if __name__ == "__main__":
    print("REPORTED " + json.dumps(run()))
