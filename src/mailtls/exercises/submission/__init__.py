"""Exercise 2: submission needs TLS, with STARTTLS on 587 and from the first byte on 465; AUTH after TLS."""

from __future__ import annotations

import smtplib

from mailtls.checker import TIMEOUT, Failed, alice, ehlo_extensions, implicit_tls
from mailtls.exercises.exercise import Exercise
from mailtls.lab import Lab

EXERCISE = Exercise(2, "submission",
                    "Submission: TLS required on 587, implicit TLS on 465, AUTH only after TLS",
                    "Envío: TLS obligatorio en el 587, TLS implícito en el 465, AUTH solo tras TLS",
                    __name__)


@EXERCISE.criterion("port 587 refuses MAIL before STARTTLS (530 5.7.0)")
def submission_refuses_mail_before_tls(lab: Lab) -> str:
    """MAIL before STARTTLS gets 530 5.7.0, "Must issue a STARTTLS command first" (RFC 3207, section 4)."""
    with smtplib.SMTP("mail.lab.test", 587, timeout=TIMEOUT) as server:
        server.ehlo("checker.lab.test")
        code, text = server.mail("checker@lab.test")
    if (code, text[:5]) != (530, b"5.7.0"):
        raise Failed("port 587 still accepts MAIL before STARTTLS: "
                     f"expected 530 5.7.0, got {code} {text.decode()}")
    return f"{code} {text.decode()}"


@EXERCISE.criterion("port 587 offers no AUTH before STARTTLS")
def submission_hides_auth_before_tls(lab: Lab) -> str:
    """No AUTH in the EHLO reply before STARTTLS (postconf(5), smtpd_tls_auth_only)."""
    extensions = ehlo_extensions("mail.lab.test", 587)
    if "auth" in extensions:
        raise Failed(f"port 587 offers AUTH ({extensions['auth'].strip()}) before STARTTLS, "
                     "so a client may send a password in clear text")
    return "no AUTH in the EHLO reply before STARTTLS"


@EXERCISE.criterion("port 587 lets users log in after STARTTLS")
def submission_login_after_starttls(lab: Lab) -> str:
    """AUTH offered after STARTTLS, and alice logs in."""
    with smtplib.SMTP("mail.lab.test", 587, timeout=TIMEOUT) as server:
        server.starttls(context=lab.ssl_context())
        server.ehlo("checker.lab.test")
        if not server.has_extn("auth"):
            raise Failed("port 587 offers no AUTH even after STARTTLS: users could not log in")
        code, _ = server.login(*alice(lab))
    return f"alice logged in after STARTTLS ({code})"


@EXERCISE.criterion("port 465 speaks TLS from the first byte, and users log in there")
def submissions_implicit_tls(lab: Lab) -> str:
    """TLS from the first byte on 465 (RFC 8314), and alice logs in."""
    try:
        with implicit_tls(465, "add the submissions service to master.cf",
                          "the service needs smtpd_tls_wrappermode=yes"), \
                smtplib.SMTP_SSL("mail.lab.test", 465, context=lab.ssl_context(), timeout=TIMEOUT) as server:
            version = server.sock.version()
            code, _ = server.login(*alice(lab))
    except smtplib.SMTPException as error:
        raise Failed(f"port 465 speaks TLS, but alice cannot log in: {error}") from None
    return f"{version} from the first byte; alice logged in ({code})"
