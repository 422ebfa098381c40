"""Exercise 3: IMAP refuses plaintext logins before TLS on 143, and speaks implicit TLS on 993."""

from __future__ import annotations

import imaplib
import re

from mailtls.checker import TIMEOUT, Failed, alice, implicit_tls
from mailtls.exercises.exercise import Exercise
from mailtls.lab import Lab

EXERCISE = Exercise(3, "imap", "IMAP: no plaintext login, IMAPS on 993",
                    "IMAP: ningún inicio de sesión en claro, IMAPS en el 993", __name__)


@EXERCISE.criterion("port 143 announces LOGINDISABLED before STARTTLS")
def imap_announces_logindisabled(lab: Lab) -> str:
    """LOGINDISABLED in the capabilities before STARTTLS (RFC 9051)."""
    with imaplib.IMAP4("mail.lab.test", 143, timeout=TIMEOUT) as imap:
        if "LOGINDISABLED" not in imap.capabilities:
            raise Failed("port 143 does not announce LOGINDISABLED before STARTTLS: "
                         "plaintext logins are allowed")
    return "LOGINDISABLED announced"


@EXERCISE.criterion("port 143 refuses a plaintext LOGIN before STARTTLS ([PRIVACYREQUIRED])")
def imap_refuses_plaintext_login(lab: Lab) -> str:
    """A LOGIN before STARTTLS gets NO [PRIVACYREQUIRED] (RFC 9051), with a wrong password."""
    login, _ = alice(lab)
    with imaplib.IMAP4("mail.lab.test", 143, timeout=TIMEOUT) as imap:
        try:
            imap.login(login, "not-the-password")  # never the real one in clear text
        except imaplib.IMAP4.error as error:
            said = re.sub(r"^b'(.*)'$", r"\1", str(error))  # imaplib quotes the server's bytes
        else:
            said = "OK"
    if "PRIVACYREQUIRED" not in said:
        raise Failed(f"port 143 checked a password sent in clear text (it answered '{said}'): "
                     "expected NO [PRIVACYREQUIRED], which refuses it unread")
    return said


@EXERCISE.criterion("port 143 lets users log in after STARTTLS")
def imap_login_after_starttls(lab: Lab) -> str:
    """alice logs in on 143 after STARTTLS."""
    with imaplib.IMAP4("mail.lab.test", 143, timeout=TIMEOUT) as imap:
        imap.starttls(ssl_context=lab.ssl_context())
        status, _ = imap.login(*alice(lab))
    return f"alice logged in after STARTTLS ({status})"


@EXERCISE.criterion("port 993 speaks TLS from the first byte, and users log in there")
def imaps_implicit_tls(lab: Lab) -> str:
    """TLS from the first byte on 993 (RFC 8314), and alice logs in."""
    with implicit_tls(993, "add an imaps listener with ssl = yes"), \
            imaplib.IMAP4_SSL("mail.lab.test", 993, ssl_context=lab.ssl_context(), timeout=TIMEOUT) as imap:
        version = imap.sock.version()
        status, _ = imap.login(*alice(lab))
    return f"{version} from the first byte; alice logged in ({status})"
