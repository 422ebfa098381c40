"""A simulated Dovecot IMAP server (2.3): one session, line in, reply out, no I/O of its own.

It obeys the Dovecot settings the course teaches (``ssl``, ``disable_plaintext_auth``, the
imap-login listeners) and answers with Dovecot's texts. It knows the commands a mail client
needs to log in and read the INBOX: CAPABILITY, NOOP, STARTTLS, LOGIN, AUTHENTICATE PLAIN,
SELECT, EXAMINE, SEARCH (ALL, SUBJECT), FETCH (RFC822, BODY[]), LOGOUT.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from mailtls.sim.config import DovecotConfig
from mailtls.sim.session import Reply

PRE_LOGIN = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+"
POST_LOGIN = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
              "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
              "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES "
              "WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW "
              "STATUS=SIZE SAVEDATE LITERAL+ NOTIFY")
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
        self.pending_auth: str | None = None  # the tag of an AUTHENTICATE awaiting its response

    def capabilities(self) -> str:
        if self.user:
            return POST_LOGIN
        if not self.tls_active:
            return PRE_LOGIN + " STARTTLS" + (" LOGINDISABLED" if self.plaintext_disabled() else "")
        return PRE_LOGIN + "".join(f" AUTH={m.upper()}" for m in self.config.auth_mechanisms)

    def plaintext_disabled(self) -> bool:
        return self.config.disable_plaintext_auth and not self.tls_active

    def greeting(self) -> bytes:
        return f"* OK [CAPABILITY {self.capabilities()}] Dovecot (Debian) ready.\r\n".encode()

    def receive(self, line: bytes) -> Reply:
        if self.user is None and len(line) > LOGIN_LINE_LIMIT:
            return self.say("* BYE Input buffer full, aborting", close=True)
        text = line.rstrip(b"\r\n")[:LINE_LIMIT].decode("latin-1")
        if self.pending_auth is not None:
            tag, self.pending_auth = self.pending_auth, None
            return self.finish_plain(tag, text)
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
        self.tls_active = True
        return self.say(f"{tag} OK Begin TLS negotiation now.", start_tls=True)

    def do_login(self, tag: str, argument: str) -> Reply:
        if self.user is not None:
            return self.say(f"{tag} BAD Error in IMAP command LOGIN: Unknown command {TIMING}")
        arguments = imap_strings(argument)
        if len(arguments) != 2:
            return self.say(f"{tag} BAD Error in IMAP command received by server.")
        if self.plaintext_disabled():
            return self.say("* BAD [ALERT] Plaintext authentication not allowed without SSL/TLS, but your "
                            "client did it anyway. If anyone was listening, the password was exposed.",
                            f"{tag} NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
                            "(SSL/TLS) connections.")
        return self.log_in(tag, *arguments)

    def log_in(self, tag: str, login: str, password: str) -> Reply:
        if not self.authenticate(login, password):
            return self.say(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
        self.user = login
        return self.say(f"* CAPABILITY {POST_LOGIN}", f"{tag} OK Logged in")

    def do_authenticate(self, tag: str, argument: str) -> Reply:
        mechanism, _, initial = argument.partition(" ")
        if mechanism.upper() != "PLAIN" or "plain" not in self.config.auth_mechanisms:
            return self.say(f"{tag} NO Unsupported authentication mechanism.")
        if self.plaintext_disabled():
            return self.say(f"{tag} NO [PRIVACYREQUIRED] Plaintext authentication disabled.")
        if initial:
            return self.finish_plain(tag, initial)
        self.pending_auth = tag
        return self.say("+ ")

    def finish_plain(self, tag: str, answer: str) -> Reply:
        if answer == "*":
            return self.say(f"{tag} BAD Authentication aborted by client.")
        try:
            parts = base64.b64decode(answer, validate=True).decode("utf-8").split("\0")
        except ValueError:  # bad base64, non-ASCII, or not UTF-8 (all ValueErrors)
            return self.say(f"{tag} NO [ALERT] Invalid base64 in response")
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
