"""A simulated Dovecot IMAP server (2.3 or 2.4): one session, line in, reply out, no I/O of its own.

It obeys the Dovecot settings the course teaches (``ssl``, 2.4's ``auth_allow_cleartext`` or
2.3's ``disable_plaintext_auth``, ``auth_mechanisms``, the imap-login listeners) and answers
with the texts of the Dovecot that read its configuration (:class:`Texts`). It knows the
commands a mail client needs to log in and read the INBOX: CAPABILITY, NOOP, STARTTLS, LOGIN,
AUTHENTICATE PLAIN and LOGIN, SELECT, EXAMINE, SEARCH (ALL, SUBJECT), FETCH (RFC822, BODY[]),
LOGOUT.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass

from mailtls.sim.config import DovecotConfig
from mailtls.sim.session import Reply


@dataclass(frozen=True)
class Texts:
    """What one Dovecot version says where the two differ.

    Measured on Debian's packages with the lab's ``dovecot.conf`` of each generation (and its
    ``ssl = required`` and cleartext-allowed variants): Dovecot 2.3.19.1 (Debian 12) and 2.4.1
    (Debian 13), over IMAP on ports 143 and 993.
    """

    greeting: str
    pre_login: str  # the capabilities before login, without STARTTLS, LOGINDISABLED and AUTH=
    post_login: str
    cleartext_alert: str  # the untagged line before a refused LOGIN (and 2.4's refused AUTHENTICATE)
    cleartext_refused: str  # its tagged NO
    authenticate_refused: str | None  # 2.3's NO to AUTHENTICATE before TLS; 2.4 says the two above
    ssl_required: str  # the NO to any AUTHENTICATE before TLS with ssl = required


COMMON_POST_LOGIN = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
                     "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
                     "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
                     "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE")
ALERT = ("* BAD [ALERT] {} authentication not allowed without SSL/TLS, but your client did it anyway. "
         "If anyone was listening, the password was exposed.")
TEXTS = {
    "2.3": Texts(
        greeting="Dovecot (Debian) ready.",
        pre_login="IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+",
        post_login=COMMON_POST_LOGIN + " SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ "
                   "NOTIFY",
        cleartext_alert=ALERT.format("Plaintext"),
        cleartext_refused="NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) "
                          "connections.",
        authenticate_refused="NO [PRIVACYREQUIRED] Plaintext authentication disabled.",
        ssl_required="NO [PRIVACYREQUIRED] Authentication not allowed until SSL/TLS is enabled.",
    ),
    "2.4": Texts(
        greeting="Dovecot ready.",
        pre_login="IMAP4rev1 LOGIN-REFERRALS ID ENABLE IDLE SASL-IR LITERAL+",
        post_login=COMMON_POST_LOGIN + " REPLACE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW SPECIAL-USE STATUS=SIZE "
                   "SAVEDATE COMPRESS=DEFLATE INPROGRESS NOTIFY LITERAL+",
        cleartext_alert=ALERT.format("cleartext"),
        cleartext_refused="NO [PRIVACYREQUIRED] Cleartext authentication disallowed on non-secure (SSL/TLS) "
                          "connections.",
        authenticate_refused=None,
        ssl_required="NO [PRIVACYREQUIRED] Authentication disallowed on non-secure (SSL/TLS) connections.",
    ),
}
TIMING = "(0.001 + 0.000 secs)."
LINE_LIMIT = 65536
LOGIN_LINE_LIMIT = 1024  # imap-login's input buffer: a longer line before login ends the session


class ImapSession:
    def __init__(self, config: DovecotConfig, port: int, authenticate: Callable[[str, str], bool],
                 mailbox: Callable[[str], list[bytes]], tls_active: bool = False) -> None:
        self.config = config
        self.tls_active = tls_active or config.listeners.get(port, False)
        self.authenticate = authenticate
        self.mailbox = mailbox  # login -> that user's INBOX, oldest first
        self.user: str | None = None
        self.selected: list[bytes] | None = None
        # An AUTHENTICATE awaiting a response: its tag, mechanism and the answers so far.
        self.pending_auth: tuple[str, str, list[str]] | None = None
        self.texts = TEXTS[config.dovecot]
        # imap-login's "client ignores the CAPABILITY response code": a CAPABILITY command before
        # any STARTTLS makes the login's reply list the capabilities in an untagged line, else in
        # the tagged OK (imap-login-client.c, cmd_capability; measured on 2.3 and 2.4).
        self.capability_asked = False
        self.used_starttls = False

    def capabilities(self) -> str:
        if self.user:
            return self.texts.post_login
        if not self.tls_active and self.cleartext_refused():
            return self.texts.pre_login + " STARTTLS LOGINDISABLED"
        return (self.texts.pre_login + ("" if self.tls_active else " STARTTLS")
                + "".join(f" AUTH={m.upper()}" for m in self.config.auth_mechanisms))

    def cleartext_refused(self) -> bool:
        """A password is refused here: no TLS yet, and ``ssl = required`` or cleartext not allowed."""
        return not self.tls_active and (self.config.ssl == "required" or not self.config.cleartext_allowed)

    def greeting(self) -> bytes:
        return f"* OK [CAPABILITY {self.capabilities()}] {self.texts.greeting}\r\n".encode()

    def receive(self, line: bytes) -> Reply:
        if self.user is None and len(line) > LOGIN_LINE_LIMIT:
            return self.say("* BYE Input buffer full, aborting", close=True)
        text = line.rstrip(b"\r\n")[:LINE_LIMIT].decode("latin-1")
        if self.pending_auth is not None:
            return self.continue_auth(text)
        tag, _, rest = text.partition(" ")
        command, _, argument = rest.partition(" ")
        command = command.upper()
        if not tag or not command or not re.fullmatch(r"[A-Za-z0-9.]+", tag):
            return self.say("* BAD Error in IMAP command received by server.")
        handler = getattr(self, f"do_{command.lower()}", None) if command.isalpha() else None
        if handler is None or (self.user is None and command in ("SELECT", "EXAMINE", "SEARCH", "FETCH")):
            if self.user is None:
                return self.say(f"{tag} BAD Error in IMAP command received by server.")
            return self.say(f"{tag} BAD Error in IMAP command {command}: Unknown command {TIMING}")
        return handler(tag, argument.strip())

    def say(self, *lines: str, **flags: bool) -> Reply:
        return Reply("".join(line + "\r\n" for line in lines).encode("latin-1"), **flags)

    def do_capability(self, tag: str, argument: str) -> Reply:
        if not self.used_starttls:
            self.capability_asked = True
        done = "Capability completed." if self.user else \
            "Pre-login capabilities listed, post-login capabilities have more."
        return self.say(f"* CAPABILITY {self.capabilities()}", f"{tag} OK {done}")

    def do_noop(self, tag: str, argument: str) -> Reply:
        return self.say(f"{tag} OK NOOP completed{' ' + TIMING if self.user else '.'}")

    def do_logout(self, tag: str, argument: str) -> Reply:
        done = f"Logout completed {TIMING}" if self.user else "Logout completed."
        return self.say("* BYE Logging out", f"{tag} OK {done}", close=True)

    def do_starttls(self, tag: str, argument: str) -> Reply:
        if self.tls_active:
            return self.say(f"{tag} BAD TLS is already active.")
        self.tls_active = self.used_starttls = True
        return self.say(f"{tag} OK Begin TLS negotiation now.", start_tls=True)

    def do_login(self, tag: str, argument: str) -> Reply:
        if self.user is not None:
            return self.say(f"{tag} BAD Error in IMAP command LOGIN: Unknown command {TIMING}")
        arguments = imap_strings(argument)
        if len(arguments) != 2:
            return self.say(f"{tag} BAD Error in IMAP command received by server.")
        if self.cleartext_refused():
            return self.say(self.texts.cleartext_alert, f"{tag} {self.texts.cleartext_refused}")
        return self.log_in(tag, *arguments)

    def log_in(self, tag: str, login: str, password: str) -> Reply:
        if not self.authenticate(login, password):
            return self.say(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
        self.user = login
        if self.capability_asked:
            return self.say(f"* CAPABILITY {self.texts.post_login}", f"{tag} OK Logged in")
        return self.say(f"{tag} OK [CAPABILITY {self.texts.post_login}] Logged in")

    def do_authenticate(self, tag: str, argument: str) -> Reply:
        """SASL PLAIN (RFC 4616) or LOGIN, as ``auth_mechanisms`` allows.

        Before TLS, ``ssl = required`` refuses any mechanism first; otherwise an unknown
        mechanism is refused before the cleartext check (both measured on 2.3 and 2.4).
        """
        mechanism, _, initial = argument.partition(" ")
        mechanism = mechanism.lower()
        if not self.tls_active and self.config.ssl == "required":
            return self.say(f"{tag} {self.texts.ssl_required}")
        if mechanism not in ("plain", "login") or mechanism not in self.config.auth_mechanisms:
            return self.say(f"{tag} NO [ALERT] Unsupported authentication mechanism.")
        if self.cleartext_refused():
            if self.texts.authenticate_refused:
                return self.say(f"{tag} {self.texts.authenticate_refused}")
            return self.say(self.texts.cleartext_alert, f"{tag} {self.texts.cleartext_refused}")
        self.pending_auth = (tag, mechanism, [])
        if initial and mechanism == "plain":
            return self.continue_auth(initial)
        return self.say("+ " + ("VXNlcm5hbWU6" if mechanism == "login" else ""))  # "Username:"

    def continue_auth(self, answer: str) -> Reply:
        """One response of the client to an AUTHENTICATE in progress."""
        tag, mechanism, answers = self.pending_auth  # type: ignore[misc]
        if answer == "*":
            self.pending_auth = None
            return self.say(f"{tag} BAD Authentication aborted by client.")
        try:
            decoded = base64.b64decode(answer, validate=True).decode("utf-8")
        except ValueError:  # bad base64, non-ASCII, or not UTF-8 (all ValueErrors)
            self.pending_auth = None
            return self.say(f"{tag} NO [ALERT] Invalid base64 in response")
        answers.append(decoded)
        if mechanism == "login" and len(answers) == 1:
            return self.say("+ UGFzc3dvcmQ6")  # "Password:"
        self.pending_auth = None
        if mechanism == "login":
            return self.log_in(tag, answers[0], answers[1])
        parts = decoded.split("\0")
        if len(parts) != 3:
            return self.say(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
        return self.log_in(tag, parts[1], parts[2])

    def do_select(self, tag: str, argument: str, mode: str = "READ-WRITE") -> Reply:
        if imap_strings(argument)[:1] != ["INBOX"] and argument.upper() != "INBOX":
            return self.say(f"{tag} NO Mailbox doesn't exist: {argument} {TIMING}")
        self.selected = self.mailbox(self.user)  # type: ignore[arg-type]
        count = len(self.selected)
        return self.say("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
                        "Flags permitted.",
                        f"* {count} EXISTS", "* 0 RECENT", "* OK [UIDVALIDITY 1] UIDs valid",
                        f"* OK [UIDNEXT {count + 1}] Predicted next UID",
                        f"{tag} OK [{mode}] Select completed {TIMING}")

    def do_examine(self, tag: str, argument: str) -> Reply:
        return self.do_select(tag, argument, mode="READ-ONLY")

    def do_search(self, tag: str, argument: str) -> Reply:
        if self.selected is None:
            return self.say(f"{tag} BAD No mailbox selected {TIMING}")
        criteria = imap_strings(argument)
        found = []
        for number, message in enumerate(self.selected, start=1):
            if criteria[:1] == ["ALL"] or (criteria[:1] and criteria[0].upper() == "SUBJECT"
                                           and len(criteria) > 1
                                           and criteria[1].lower() in subject_of(message).lower()):
                found.append(str(number))
        return self.say("* SEARCH" + "".join(f" {n}" for n in found), f"{tag} OK Search completed {TIMING}")

    def do_fetch(self, tag: str, argument: str) -> Reply:
        if self.selected is None:
            return self.say(f"{tag} BAD No mailbox selected {TIMING}")
        number_text, _, items = argument.partition(" ")
        if not number_text.isdigit() or not 1 <= int(number_text) <= len(self.selected):
            return self.say(f"{tag} BAD Error in IMAP command FETCH: Invalid messageset {TIMING}")
        message = self.selected[int(number_text) - 1]
        item = "BODY[]" if "BODY" in items.upper() else "RFC822"
        data = ((f"* {number_text} FETCH (FLAGS (\\Seen) {item} {{{len(message)}}}\r\n").encode()
                + message + b")\r\n")
        return Reply(data + f"{tag} OK Fetch completed {TIMING}\r\n".encode())


def imap_strings(text: str) -> list[str]:
    """The atoms and quoted strings of a command's arguments."""
    return [quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted or not atom else atom
            for quoted, atom in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', text)]


def subject_of(message: bytes) -> str:
    match = re.search(rb"^Subject:[ \t]*(.*)$", message, re.IGNORECASE | re.MULTILINE)
    return match[1].decode("latin-1").strip() if match else ""
