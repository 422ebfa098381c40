"""Exercise 5: a STRIPTLS downgrade on the path to mail.lab.test, and the relay's defence (level secure)."""

from __future__ import annotations

from mailtls.checker import Failed, sent, status_of, through_relay, trust_of
from mailtls.exercises.exercise import Exercise
from mailtls.lab import Lab

EXERCISE = Exercise(5, "striptls", "A STRIPTLS downgrade, and the client's defence",
                    "Un ataque STRIPTLS y la defensa del cliente", __name__)


def with_wiretap(lab: Lab, mode: str, recipient: str) -> tuple[str, str, list[dict]]:
    """Send through the relay with the wiretap in ``mode``; (status line, TLS line, what it saw).

    The wiretap's mode is put back afterwards, even when sending fails.
    """
    previous = lab.wiretap_mode
    mark = len(lab.transcript())
    lab.set_wiretap_mode(mode)
    try:
        line, tls = through_relay(lab, recipient)
    finally:
        lab.set_wiretap_mode(previous)
    return line, tls, lab.transcript()[mark:]


@EXERCISE.criterion("with STARTTLS stripped, the relay sends nothing in clear text")
def relay_resists_striptls(lab: Lab) -> str:
    """With STARTTLS stripped by the wiretap, the relay defers the message instead of sending it in clear."""
    line, tls, seen = with_wiretap(lab, "strip", "alice@lab.test")
    said_in_clear = [entry["text"] for entry in seen if entry.get("from") == "client" and "text" in entry]
    if any(text.upper().startswith("DATA") for text in said_in_clear) or sent(line) and not tls:
        raise Failed("with STARTTLS stripped, the relay sent the message in clear text through mitm.lab.test "
                     "(the wiretap's transcript shows DATA): it must require TLS for this next hop")
    if sent(line):
        raise Failed("with STARTTLS stripped, the relay still delivered the message: "
                     "it should have deferred it")
    return f"the relay refused to go on in clear text: {status_of(line)}"


@EXERCISE.criterion("without the attack, the relay delivers over TLS verified as mail.lab.test")
def relay_verifies_through_the_path(lab: Lab) -> str:
    """With the wiretap passing traffic, the relay verifies mail.lab.test's certificate (secure, match=)."""
    line, tls, _ = with_wiretap(lab, "pass", "alice@lab.test")
    if not sent(line):
        raise Failed("with the wiretap passing traffic untouched, the relay did not deliver: "
                     f"{status_of(line)}")
    trust = trust_of(tls) or "no"
    if trust != "Verified":
        raise Failed(f"the relay delivered with {trust} TLS: it must verify that the certificate is "
                     "mail.lab.test's (level secure, match=mail.lab.test)")
    return "Verified TLS, mail.lab.test's certificate, status=sent"
