"""The checker: does the running lab now do what an exercise asks, criterion by criterion?

``python -m mailtls check EXERCISE`` probes the lab's servers as a client would (smtplib,
imaplib and ssl, through :func:`mailtls.lab.connect`), prints each criterion as passed or failed
with the reason in a student's terms, and exits with 0 only if all passed. ``--report FILE``
writes the same as Markdown (``FILE.md``) and JSON (``FILE.json``), with the time and the lab's
fingerprint (the SHA-256 of its CA certificate, new with every lab), for handing in.

A criterion is a function that returns a short note when the lab passes and raises
:class:`Failed` with the reason when it does not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import imaplib
import json
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mailtls import maillog
from mailtls.backends import LabError
from mailtls.exercises import Exercise
from mailtls.lab import Lab

TIMEOUT = 10
DELIVERY_WAIT = 30.0  # seconds for the relay to log what became of a message


class Failed(Exception):
    """A criterion the lab does not meet; the message says why, for the student."""


Criterion = Callable[[Lab], str]


@dataclass
class Result:
    criterion: str
    passed: bool
    detail: str


def alice(lab: Lab) -> tuple[str, str]:
    user = lab.user("alice")
    return user.login, user.password


# -- Exercise 1: a certificate from the lab CA -----------------------------------------------------


def selfsigned_offers_starttls(lab: Lab) -> str:
    with smtplib.SMTP("selfsigned.lab.test", 25, timeout=TIMEOUT) as server:
        server.ehlo("checker.lab.test")
        if not server.has_extn("starttls"):
            raise Failed("selfsigned.lab.test no longer offers STARTTLS on port 25: keep smtpd_tls_security_level = may")
    return "STARTTLS offered on port 25"


def selfsigned_certificate_from_lab_ca(lab: Lab) -> str:
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


def selfsigned_certificate_names_the_host(lab: Lab) -> str:
    try:
        with smtplib.SMTP("selfsigned.lab.test", 25, timeout=TIMEOUT) as server:
            server.starttls(context=lab.ssl_context())
            version = server.sock.version()
    except ssl.SSLCertVerificationError as error:
        raise Failed(f"a client that trusts only the lab CA refuses selfsigned.lab.test: "
                     f"{error.verify_message} (error {error.verify_code})") from None
    return f"verified, name checked, {version}"


# -- Exercise 2: submission ------------------------------------------------------------------------


def submission_refuses_mail_before_tls(lab: Lab) -> str:
    with smtplib.SMTP("mail.lab.test", 587, timeout=TIMEOUT) as server:
        server.ehlo("checker.lab.test")
        code, text = server.mail("checker@lab.test")
    if (code, text[:5]) != (530, b"5.7.0"):
        raise Failed(f"port 587 still accepts MAIL before STARTTLS: expected 530 5.7.0, got {code} {text.decode()}")
    return f"{code} {text.decode()}"


def submission_hides_auth_before_tls(lab: Lab) -> str:
    with smtplib.SMTP("mail.lab.test", 587, timeout=TIMEOUT) as server:
        server.ehlo("checker.lab.test")
        if server.has_extn("auth"):
            raise Failed(f"port 587 offers AUTH ({server.esmtp_features['auth'].strip()}) before STARTTLS, "
                         "so a client may send a password in clear text")
    return "no AUTH in the EHLO reply before STARTTLS"


def submission_login_after_starttls(lab: Lab) -> str:
    with smtplib.SMTP("mail.lab.test", 587, timeout=TIMEOUT) as server:
        server.starttls(context=lab.ssl_context())
        server.ehlo("checker.lab.test")
        if not server.has_extn("auth"):
            raise Failed("port 587 offers no AUTH even after STARTTLS: users could not log in")
        code, _ = server.login(*alice(lab))
    return f"alice logged in after STARTTLS ({code})"


def submissions_implicit_tls(lab: Lab) -> str:
    try:
        with smtplib.SMTP_SSL("mail.lab.test", 465, context=lab.ssl_context(), timeout=TIMEOUT) as server:
            version = server.sock.version()
            code, _ = server.login(*alice(lab))
    except ConnectionRefusedError:
        raise Failed("nothing listens on port 465: add the submissions service to master.cf") from None
    except ssl.SSLError as error:
        raise Failed(f"port 465 does not start with TLS ({error.reason or error}): "
                     "the service needs smtpd_tls_wrappermode=yes") from None
    except smtplib.SMTPException as error:
        raise Failed(f"port 465 speaks TLS, but alice cannot log in: {error}") from None
    return f"{version} from the first byte; alice logged in ({code})"


# -- Exercise 3: IMAP ------------------------------------------------------------------------------


def imap_announces_logindisabled(lab: Lab) -> str:
    with imaplib.IMAP4("mail.lab.test", 143, timeout=TIMEOUT) as imap:
        if "LOGINDISABLED" not in imap.capabilities:
            raise Failed("port 143 does not announce LOGINDISABLED before STARTTLS: plaintext logins are allowed")
    return "LOGINDISABLED announced"


def imap_refuses_plaintext_login(lab: Lab) -> str:
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


def imap_login_after_starttls(lab: Lab) -> str:
    with imaplib.IMAP4("mail.lab.test", 143, timeout=TIMEOUT) as imap:
        imap.starttls(ssl_context=lab.ssl_context())
        status, _ = imap.login(*alice(lab))
    return f"alice logged in after STARTTLS ({status})"


def imaps_implicit_tls(lab: Lab) -> str:
    try:
        with imaplib.IMAP4_SSL("mail.lab.test", 993, ssl_context=lab.ssl_context(), timeout=TIMEOUT) as imap:
            version = imap.sock.version()
            status, _ = imap.login(*alice(lab))
    except ConnectionRefusedError:
        raise Failed("nothing listens on port 993: add an imaps listener with ssl = yes") from None
    except ssl.SSLError as error:
        raise Failed(f"port 993 does not start with TLS ({error.reason or error})") from None
    return f"{version} from the first byte; alice logged in ({status})"


# -- Exercise 4: the relay's per-destination policy ------------------------------------------------


def through_relay(lab: Lab, recipient: str) -> tuple[str, str]:
    """Send a message through the relay and wait for its delivery; (status line, TLS line or "")."""
    with smtplib.SMTP("relay.lab.test", 25, timeout=TIMEOUT) as relay:
        relay.ehlo("checker.lab.test")
        relay.mail("checker@relay.lab.test")
        relay.rcpt(recipient)
        code, reply = relay.data(f"Subject: checker {uuid.uuid4()}\r\n\r\nA test.\r\n".encode())
    if code != 250:
        raise Failed(f"the relay refused a message for {recipient}: {code} {reply.decode()}")
    queue_id = re.search(rb"queued as (\w+)", reply)[1].decode()  # type: ignore[index]
    deadline = time.monotonic() + DELIVERY_WAIT
    while time.monotonic() < deadline:
        lines = lab.log("relay.lab.test").splitlines()
        number = maillog.find_delivery(lines, queue_id, recipient)
        if number is not None:
            return lines[number], tls_line_before(lines, number)
        time.sleep(0.3)
    raise Failed(f"the relay did not try to deliver the message for {recipient} within {DELIVERY_WAIT:.0f} s")


def tls_line_before(lines: list[str], number: int) -> str:
    """The TLS line of the delivery logged at ``lines[number]``, or "" if it had none.

    One smtp process makes many deliveries, so the search stops at that process's previous one.
    """
    earlier = maillog.tls_before(lines, number)
    return "" if earlier is None else lines[earlier]


def status_of(line: str) -> str:
    return maillog.delivery(line).outcome  # type: ignore[union-attr]


def sent(line: str) -> bool:
    """True when the delivery logged on ``line`` succeeded (status=sent)."""
    return maillog.delivery(line).status == "sent"  # type: ignore[union-attr]


def trust_of(tls: str) -> str:
    """Anonymous, Untrusted, Trusted or Verified, from a TLS line; "" for no line."""
    return maillog.tls_connection(tls).trust if tls else ""  # type: ignore[union-attr]


def relay_verifies_mail(lab: Lab) -> str:
    line, tls = through_relay(lab, "alice@lab.test")
    if not sent(line):
        raise Failed(f"the relay did not deliver to mail.lab.test: {status_of(line)}")
    if not tls:
        raise Failed("the relay delivered to mail.lab.test without TLS")
    trust = trust_of(tls)
    if trust != "Verified":
        raise Failed(f"the relay delivered to mail.lab.test over TLS it did not verify ({trust}, not Verified): "
                     "give [mail.lab.test] the level secure in tls_policy")
    return "Verified TLS connection to mail.lab.test, status=sent"


def relay_may_elsewhere(lab: Lab) -> str:
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


# -- Exercise 5: STRIPTLS and the client's defence -------------------------------------------------


def with_wiretap(lab: Lab, mode: str, recipient: str) -> tuple[str, str, list[dict]]:
    """Send through the relay with the wiretap in ``mode``; (status line, TLS line, what it saw)."""
    previous = lab.wiretap_mode
    mark = len(lab.transcript())
    lab.set_wiretap_mode(mode)
    try:
        line, tls = through_relay(lab, recipient)
    finally:
        lab.set_wiretap_mode(previous)
    return line, tls, lab.transcript()[mark:]


def relay_resists_striptls(lab: Lab) -> str:
    line, tls, seen = with_wiretap(lab, "strip", "alice@lab.test")
    said_in_clear = [entry["text"] for entry in seen if entry.get("from") == "client" and "text" in entry]
    if any(text.upper().startswith("DATA") for text in said_in_clear) or sent(line) and not tls:
        raise Failed("with STARTTLS stripped, the relay sent the message in clear text through mitm.lab.test "
                     "(the wiretap's transcript shows DATA): it must require TLS for this next hop")
    if sent(line):
        raise Failed("with STARTTLS stripped, the relay still delivered the message: it should have deferred it")
    return f"the relay refused to go on in clear text: {status_of(line)}"


def relay_verifies_through_the_path(lab: Lab) -> str:
    line, tls, _ = with_wiretap(lab, "pass", "alice@lab.test")
    if not sent(line):
        raise Failed(f"with the wiretap passing traffic untouched, the relay did not deliver: {status_of(line)}")
    trust = trust_of(tls) or "no"
    if trust != "Verified":
        raise Failed(f"the relay delivered with {trust} TLS: it must verify that the certificate is "
                     "mail.lab.test's (level secure, match=mail.lab.test)")
    return "Verified TLS, mail.lab.test's certificate, status=sent"


# -- Exercise 6: protocol versions -----------------------------------------------------------------


def old_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    """A client that speaks only ``version``, as an old one would (SHA-1 signatures allowed)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the version is what is checked here, not the certificate
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(where: str, context: ssl.SSLContext) -> str | None:
    """The version agreed on the port, or None if the server refused the handshake."""
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
    def criterion(lab: Lab) -> str:
        import warnings

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


CRITERIA: dict[str, list[tuple[str, Criterion]]] = {
    "certificate": [
        ("selfsigned.lab.test offers STARTTLS on port 25", selfsigned_offers_starttls),
        ("its certificate was issued by the lab CA", selfsigned_certificate_from_lab_ca),
        ("a client that trusts only the lab CA accepts it, name included", selfsigned_certificate_names_the_host),
    ],
    "submission": [
        ("port 587 refuses MAIL before STARTTLS (530 5.7.0)", submission_refuses_mail_before_tls),
        ("port 587 offers no AUTH before STARTTLS", submission_hides_auth_before_tls),
        ("port 587 lets users log in after STARTTLS", submission_login_after_starttls),
        ("port 465 speaks TLS from the first byte, and users log in there", submissions_implicit_tls),
    ],
    "imap": [
        ("port 143 announces LOGINDISABLED before STARTTLS", imap_announces_logindisabled),
        ("port 143 refuses a plaintext LOGIN before STARTTLS ([PRIVACYREQUIRED])", imap_refuses_plaintext_login),
        ("port 143 lets users log in after STARTTLS", imap_login_after_starttls),
        ("port 993 speaks TLS from the first byte, and users log in there", imaps_implicit_tls),
    ],
    "relay-policy": [
        ("the relay verifies mail.lab.test (level secure) and delivers", relay_verifies_mail),
        ("the relay keeps may for legacy.lab.test and selfsigned.lab.test", relay_may_elsewhere),
    ],
    "striptls": [
        ("with STARTTLS stripped, the relay sends nothing in clear text", relay_resists_striptls),
        ("without the attack, the relay delivers over TLS verified as mail.lab.test", relay_verifies_through_the_path),
    ],
    "protocols": [
        ("port 587 (STARTTLS required) refuses TLS 1.0 and 1.1", refuses_old_versions("587")),
        ("port 465 (implicit TLS) refuses TLS 1.0 and 1.1", refuses_old_versions("465")),
        ("port 993 (IMAPS) refuses TLS 1.0 and 1.1", refuses_old_versions("993")),
    ],
}


def check(exercise: Exercise, lab: Lab) -> list[Result]:
    results = []
    for title, criterion in CRITERIA[exercise.name]:
        try:
            results.append(Result(title, True, criterion(lab)))
        except Failed as failure:
            results.append(Result(title, False, str(failure)))
        except PermissionError:  # not the student's fault: say what to run, and record nothing
            raise LabError(f"checking exercise {exercise.number} switches the wiretap on mitm.lab.test, which "
                           "only root may do: run the check with sudo") from None
        except (OSError, smtplib.SMTPException, imaplib.IMAP4.error) as error:  # the server did not answer as a server
            results.append(Result(title, False, f"{type(error).__name__}: {error}"))
    return results


def fingerprint(lab: Lab) -> str:
    """What identifies this lab: its CA certificate, made anew each time it comes up."""
    return hashlib.sha256(lab.ca_file.read_bytes()).hexdigest()


def write_report(path: Path, exercise: Exercise, lab: Lab, results: list[Result]) -> list[Path]:
    """FILE.md and FILE.json (a suffix given with FILE is dropped)."""
    stem = path.with_suffix("") if path.suffix in (".md", ".json") else path
    record = {
        "exercise": exercise.number, "name": exercise.name, "title": exercise.title,
        "checked_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "lab": {"backend": lab.backend, "fingerprint": fingerprint(lab)},
        "passed": all(r.passed for r in results),
        "criteria": [asdict(r) for r in results],
    }
    json_path, markdown_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    json_path.write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# Exercise {exercise.number}: {exercise.title}", "",
             f"Checked {record['checked_at']} on the {lab.backend} lab `{record['lab']['fingerprint'][:16]}`.", "",
             f"**{sum(r.passed for r in results)} of {len(results)} criteria passed.**", "",
             "| | criterion | detail |", "|---|---|---|"]
    lines += [f"| {'passed' if r.passed else 'FAILED'} | {r.criterion} | {r.detail.replace('|', '/')} |" for r in results]
    markdown_path.write_text("\n".join(lines) + "\n")
    return [markdown_path, json_path]


def print_results(exercise: Exercise, results: list[Result]) -> None:
    print(f"Exercise {exercise.number}: {exercise.title}")
    for result in results:
        print(f"  [{'passed' if result.passed else 'FAILED'}] {result.criterion}")
        print(f"           {result.detail}")
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results)} criteria passed." + ("" if passed == len(results) else " Not done yet."))
