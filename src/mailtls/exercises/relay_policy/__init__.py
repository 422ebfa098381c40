"""Exercise 4: the relay requires a verified certificate from mail.lab.test and keeps may elsewhere."""

from __future__ import annotations

from mailtls.checker import Failed, sent, status_of, through_relay, trust_of
from mailtls.exercises.exercise import Exercise
from mailtls.lab import Lab

EXERCISE = Exercise(4, "relay-policy", "A per-destination TLS policy on the relay",
                    "Una política TLS por destino en el relay", __name__)


@EXERCISE.criterion("the relay verifies mail.lab.test (level secure) and delivers")
def relay_verifies_mail(lab: Lab) -> str:
    """Mail for alice@lab.test leaves over a Verified TLS connection (postconf(5), smtp_tls_policy_maps)."""
    line, tls = through_relay(lab, "alice@lab.test")
    if not sent(line):
        raise Failed(f"the relay did not deliver to mail.lab.test: {status_of(line)}")
    if not tls:
        raise Failed("the relay delivered to mail.lab.test without TLS")
    trust = trust_of(tls)
    if trust != "Verified":
        raise Failed("the relay delivered to mail.lab.test over TLS it did not verify "
                     f"({trust}, not Verified): give [mail.lab.test] the level secure in tls_policy")
    return "Verified TLS connection to mail.lab.test, status=sent"


@EXERCISE.criterion("the relay keeps may for legacy.lab.test and selfsigned.lab.test")
def relay_may_elsewhere(lab: Lab) -> str:
    """Other destinations still get mail: TLS when offered, whatever the certificate, else clear text."""
    notes = []
    # may: TLS when offered (selfsigned.lab.test offers it), whatever the certificate; else clear text.
    for host, offers_tls in (("legacy.lab.test", False), ("selfsigned.lab.test", True)):
        line, tls = through_relay(lab, f"student@{host}")
        if not sent(line):
            raise Failed(f"the relay no longer delivers to {host} ({status_of(line)}): "
                         "destinations other than mail.lab.test must stay at may")
        if offers_tls and not tls:
            raise Failed(f"the relay delivered to {host} in clear text although it offers STARTTLS: "
                         "may uses TLS when the server offers it")
        trust = trust_of(tls)
        notes.append(f"{host}: sent, {trust + ' TLS' if trust else 'no TLS'}")
    return "; ".join(notes)
