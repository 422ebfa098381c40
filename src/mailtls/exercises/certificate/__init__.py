"""Exercise 1: selfsigned.lab.test presents a certificate the lab CA issued, not its self-signed one."""

from __future__ import annotations

import smtplib
import ssl

from mailtls.checker import TIMEOUT, Failed, ehlo_extensions
from mailtls.exercises.exercise import Exercise
from mailtls.lab import Lab

EXERCISE = Exercise(1, "certificate", "A certificate from the lab CA instead of a self-signed one",
                    "Un certificado de la CA del laboratorio en lugar de uno autofirmado", __name__)


@EXERCISE.criterion("selfsigned.lab.test offers STARTTLS on port 25")
def selfsigned_offers_starttls(lab: Lab) -> str:
    """STARTTLS in the EHLO reply on port 25 (RFC 3207, section 4)."""
    if "starttls" not in ehlo_extensions("selfsigned.lab.test", 25):
        raise Failed("selfsigned.lab.test no longer offers STARTTLS on port 25: "
                     "keep smtpd_tls_security_level = may")
    return "STARTTLS offered on port 25"


@EXERCISE.criterion("its certificate was issued by the lab CA")
def selfsigned_certificate_from_lab_ca(lab: Lab) -> str:
    """The certificate chains to the lab CA (its name is checked by the next criterion)."""
    context = lab.ssl_context()
    context.check_hostname = False  # the name is the next criterion
    try:
        with smtplib.SMTP("selfsigned.lab.test", 25, timeout=TIMEOUT) as server:
            server.starttls(context=context)
            issuer = dict(item[0] for item in server.sock.getpeercert()["issuer"])["commonName"]
    except ssl.SSLCertVerificationError as error:
        raise Failed(f"selfsigned.lab.test still shows a certificate the lab CA did not issue: "
                     f"{error.verify_message} (error {error.verify_code})") from None
    return f"issued by {issuer}"


@EXERCISE.criterion("a client that trusts only the lab CA accepts it, name included")
def selfsigned_certificate_names_the_host(lab: Lab) -> str:
    """A client that trusts only the lab CA verifies the certificate, name included (RFC 6125)."""
    try:
        with smtplib.SMTP("selfsigned.lab.test", 25, timeout=TIMEOUT) as server:
            server.starttls(context=lab.ssl_context())
            version = server.sock.version()
    except ssl.SSLCertVerificationError as error:
        raise Failed(f"a client that trusts only the lab CA refuses selfsigned.lab.test: "
                     f"{error.verify_message} (error {error.verify_code})") from None
    return f"verified, name checked, {version}"
