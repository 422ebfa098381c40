"""Exercise 6: no TLS 1.0 or 1.1 where TLS is mandatory (587, 465) nor on IMAPS (993)."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import warnings

from mailtls.checker import TIMEOUT, Failed
from mailtls.exercises.exercise import Criterion, Exercise
from mailtls.lab import Lab

EXERCISE = Exercise(6, "protocols", "No TLS 1.0 or 1.1 where TLS is mandatory",
                    "Ni TLS 1.0 ni 1.1 donde TLS es obligatorio", __name__)


def old_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that speaks only ``version``, as an old one would (SHA-1 signatures allowed)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the version is what is checked here, not the certificate
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(where: str, context: ssl.SSLContext) -> str | None:
    """The version agreed on mail.lab.test's port ``where`` (587, 465 or 993); None if it was refused."""
    host, port = "mail.lab.test", int(where)
    try:
        if port == 587:
            with smtplib.SMTP(host, port, timeout=TIMEOUT) as server:
                server.starttls(context=context)
                return server.sock.version()
        if port == 465:
            with smtplib.SMTP_SSL(host, port, context=context, timeout=TIMEOUT) as server:
                return server.sock.version()
        with imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT) as imap:
            return imap.sock.version()
    except (ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionResetError, imaplib.IMAP4.abort):
        return None


def refuses_old_versions(port: str) -> Criterion:
    """The criterion for one port: TLS 1.0 and 1.1 refused (RFC 8996), TLS 1.2 or 1.3 accepted."""
    def criterion(lab: Lab) -> str:
        with warnings.catch_warnings():  # ssl warns that TLS 1.0 and 1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            accepted = [v.name.replace("_", ".") for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
                        if handshake(port, old_client(v))]
        if accepted:
            raise Failed(f"port {port} still accepts {' and '.join(accepted)}: expected a refused handshake "
                         "(TLS 1.2 is the oldest version RFC 8996 allows)")
        modern = handshake(port, lab.ssl_context())
        if modern is None:
            raise Failed(f"port {port} refuses TLS 1.2 and 1.3 too: clients could not connect at all")
        return f"TLS 1.0 and 1.1 refused; a current client gets {modern}"
    return criterion


EXERCISE.criterion("port 587 (STARTTLS required) refuses TLS 1.0 and 1.1")(refuses_old_versions("587"))
EXERCISE.criterion("port 465 (implicit TLS) refuses TLS 1.0 and 1.1")(refuses_old_versions("465"))
EXERCISE.criterion("port 993 (IMAPS) refuses TLS 1.0 and 1.1")(refuses_old_versions("993"))
