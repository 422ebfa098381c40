"""A simulated Dovecot IMAP server (2.3 or 2.4): one session, line in, reply out, no I/O of its own.

It obeys the Dovecot settings the course teaches (``ssl``, 2.4's ``auth_allow_cleartext`` or
2.3's ``disable_plaintext_auth``, ``auth_mechanisms``, the imap-login listeners) and answers
with the texts of the Dovecot that read its configuration (:class:`Texts`). It knows the
commands a mail client needs to log in and read the INBOX: CAPABILITY, NOOP, STARTTLS, LOGIN,
AUTHENTICATE PLAIN and LOGIN, SELECT, EXAMINE, SEARCH (ALL, SUBJECT), FETCH (RFC822, BODY[]),
LOGOUT.

It also writes what Dovecot logs of a connection (``log_path``), in the words of its version:
imap-login's ``Login``/``Logged in`` line, its ``Disconnected:`` (2.3) or ``Login aborted:`` (2.4)
line for a client that leaves without logging in, and the imap process's ``Disconnected: Logged
out in=N out=N ...`` (see :class:`mailtls.maillog.LoginEvent`). The network tells it of TLS and of
the end of the connection through the methods of :class:`mailtls.sim.network.Events`.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailtls import maillog
from mailtls.sim.config import DovecotConfig
from mailtls.sim.openssl_errors import OPENSSL_OF_DOVECOT, handshake_error
from mailtls.sim.session import Reply

# (process, level, text) -> a line of Dovecot's log
Log = Callable[[str, str, str], None]


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
SELECT_TIMING = "(0.001 + 0.000 + 0.001 secs)."  # SELECT adds the time it waited for the mailbox's lock
# A mailbox's UIDVALIDITY: Dovecot takes the time the mailbox was made (one value for this process).
UIDVALIDITY = int(time.time())

LINE_LIMIT = 65536
LOGIN_LINE_LIMIT = 1024  # imap-login's input buffer: a longer line before login ends the session


class ImapSession:
    """One client's IMAP session with Dovecot's imap-login and, once logged in, its imap process.

    ``log`` receives each line Dovecot would write of it; ``rip``/``lip`` are the client's and the
    server's addresses; ``tls_error`` says why TLS cannot be set up (a key for another certificate,
    an ``ssl_min_protocol`` Dovecot does not know), in the words imap-login logs: STARTTLS then
    fails as the real one does.
    """

    def __init__(self, config: DovecotConfig, port: int, authenticate: Callable[[str, str], bool],
                 mailbox: Callable[[str], list[bytes]], tls_active: bool = False, log: Log | None = None,
                 rip: str = "", lip: str = "", tls_error: str | None = None) -> None:
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
        # What Dovecot logs of the session.
        self.log = log or (lambda process, level, text: None)
        self.rip, self.lip = rip, lip
        self.tls_error = tls_error
        self.opened = time.monotonic()
        self.session_id = base64.b64encode(secrets.token_bytes(12)).decode()
        # None: no TLS; "handshaking"; "": TLS is up; else why the handshake failed
        self.handshake: str | None = "handshaking" if self.tls_active else None
        self.attempts = 0
        self.attempted_user = ""
        self.attempted_method: str | None = None
        self.disallowed_cleartext = False
        self.logged_out = False
        self.buffer_full = False
        self.tls_init_failed = False
        self.mpid = 0
        self.bytes_in = self.bytes_out = 0
        self.last_command: str | None = None
        self.just_logged_in = False
        self.bodies: list[int] = []
        self.logged_end = False

    def capabilities(self) -> str:
        if self.user:
            return self.texts.post_login
        if not self.tls_active and self.cleartext_refused():  # ssl = no: no STARTTLS (measured)
            return self.texts.pre_login + (" STARTTLS" if self.config.ssl != "no" else "") + " LOGINDISABLED"
        starttls = not self.tls_active and self.config.ssl != "no"
        return (self.texts.pre_login + (" STARTTLS" if starttls else "")
                + "".join(f" AUTH={m.upper()}" for m in self.config.auth_mechanisms))

    def cleartext_refused(self) -> bool:
        """A password is refused here: no TLS yet, and ``ssl = required`` or cleartext not allowed."""
        return not self.tls_active and (self.config.ssl == "required" or not self.config.cleartext_allowed)

    def greeting(self) -> bytes:
        return f"* OK [CAPABILITY {self.capabilities()}] {self.texts.greeting}\r\n".encode()

    def receive(self, line: bytes) -> Reply:
        if self.user is None and len(line) > LOGIN_LINE_LIMIT:
            self.buffer_full = True
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
        self.logged_out = True
        done = f"Logout completed {TIMING}" if self.user else "Logout completed."
        return self.say("* BYE Logging out", f"{tag} OK {done}", close=True)

    def do_starttls(self, tag: str, argument: str) -> Reply:
        if self.tls_active:
            return self.say(f"{tag} BAD TLS is already active.")
        if self.config.ssl == "no":  # imap-login's cmd_starttls (login-common/client-common.c)
            return self.say(f"{tag} BAD TLS support isn't enabled.")
        if self.tls_error is not None:
            # Measured (2.3.19.1, 2.4.1): the OK; then, once imap-login has failed to set up TLS, a BYE
            # in clear text and the hang-up. The client's handshake reads the BYE: WRONG_VERSION_NUMBER.
            self.tls_init_failed = True
            self.log_tls_error()
            reply = self.say(f"{tag} OK Begin TLS negotiation now.")
            reply.then = self.say("* BYE [UNAVAILABLE] TLS initialization failed.").data
            return reply
        self.tls_active = self.used_starttls = True
        self.handshake = "handshaking"
        return self.say(f"{tag} OK Begin TLS negotiation now.", start_tls=True)

    def do_login(self, tag: str, argument: str) -> Reply:
        if self.user is not None:
            return self.say(f"{tag} BAD Error in IMAP command LOGIN: Unknown command {TIMING}")
        arguments = imap_strings(argument)
        if len(arguments) != 2:
            return self.say(f"{tag} BAD Error in IMAP command received by server.")
        if self.cleartext_refused():  # an attempt, with the user but no method (measured)
            self.attempts += 1
            self.attempted_user, self.attempted_method = arguments[0], None
            return self.say(self.texts.cleartext_alert, f"{tag} {self.texts.cleartext_refused}")
        return self.log_in(tag, *arguments)

    def log_in(self, tag: str, login: str, password: str, method: str = "PLAIN") -> Reply:
        self.attempts += 1
        self.attempted_user, self.attempted_method = login, method
        if not self.authenticate(login, password):
            return self.say(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
        self.user = login
        self.mpid = 1000 + secrets.randbelow(60000)
        self.just_logged_in = True
        event = "Login" if self.config.dovecot == "2.3" else "Logged in"
        self.log_event(event, user=login, method=method, mpid=self.mpid,
                       secured="TLS" if self.tls_active else None)
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
        if not self.tls_active and self.config.ssl == "required":  # a failed attempt, no user (measured)
            self.attempts += 1
            self.attempted_user, self.attempted_method = "", mechanism.upper()
            return self.say(f"{tag} {self.texts.ssl_required}")
        if mechanism not in ("plain", "login") or mechanism not in self.config.auth_mechanisms:
            return self.say(f"{tag} NO [ALERT] Unsupported authentication mechanism.")
        if self.cleartext_refused():
            self.refused_cleartext(mechanism)
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
            return self.log_in(tag, answers[0], answers[1], "LOGIN")
        parts = decoded.split("\0")
        if len(parts) != 3:
            self.attempts += 1
            self.attempted_method = "PLAIN"
            return self.say(f"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.")
        return self.log_in(tag, parts[1], parts[2])

    def refused_cleartext(self, mechanism: str) -> None:
        """An AUTHENTICATE refused before TLS: imap-login logs no user, the mechanism, and "tried to use
        disallowed plaintext auth" (measured with AUTHENTICATE PLAIN on 2.3.19.1 and 2.4.1)."""
        self.disallowed_cleartext = True
        self.attempts += 1
        self.attempted_user, self.attempted_method = "", mechanism.upper()

    def do_select(self, tag: str, argument: str, mode: str = "READ-WRITE") -> Reply:
        if imap_strings(argument)[:1] != ["INBOX"] and argument.upper() != "INBOX":
            return self.say(f"{tag} NO Mailbox doesn't exist: {argument} {TIMING}")
        self.selected = self.mailbox(self.user)  # type: ignore[arg-type]
        count = len(self.selected)
        return self.say("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
                        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
                        "Flags permitted.",
                        f"* {count} EXISTS", "* 0 RECENT", f"* OK [UIDVALIDITY {UIDVALIDITY}] UIDs valid",
                        f"* OK [UIDNEXT {count + 1}] Predicted next UID",
                        f"{tag} OK [{mode}] Select completed {SELECT_TIMING}")

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
        self.bodies.append(len(message))
        item = "BODY[]" if "BODY" in items.upper() else "RFC822"
        data = ((f"* {number_text} FETCH (FLAGS (\\Seen) {item} {{{len(message)}}}\r\n").encode()
                + message + b")\r\n")
        return Reply(data + f"{tag} OK Fetch completed {TIMING}\r\n".encode())


    # -- What Dovecot logs of the session ---------------------------------------------------------
    # Measured with Dovecot 2.3.19.1 and 2.4.1 (Debian 12 and 13), the lab's settings, clients on another
    # address: imaplib over 143 (STARTTLS) and 993, logging in and out, leaving without a word, failing
    # a handshake (a version the server refuses, a certificate the client does not trust).

    def log_event(self, event: str, user: str = "", method: str | None = None, mpid: int | None = None,
                  secured: str | None = None, level: str = "Info") -> None:
        """One imap-login line: ``EVENT: user=<...>, [method=...,] rip=..., lip=..., [mpid=...,]
        [TLS,] session=<...>``."""
        self.log("imap-login", level, maillog.LoginEvent(event, user, self.rip, self.lip, self.session_id,
                                                         method, mpid, secured).format())

    def log_tls_error(self) -> None:
        """imap-login could not set up TLS (``tls_error``): its Error line."""
        what = ("Failed to initialize SSL server context: " if self.config.dovecot == "2.3"
                else "Failed to initialize SSL connection: Couldn't initialize SSL server context: ")
        self.log_event(what + str(self.tls_error), level="Error")

    def tls_started(self, tls: Any) -> None:
        self.handshake = ""

    def tls_failed(self, failure: Exception | None) -> None:
        """The handshake did not finish: why, as imap-login says it after ``TLS handshaking:``."""
        reason = getattr(failure, "reason", None) if failure is not None else None
        if failure is None or reason in (None, "UNEXPECTED_EOF_WHILE_READING"):
            self.handshake = "Connection closed"
            return
        if reason == "UNSUPPORTED_PROTOCOL" and self.config.dovecot == "2.3" \
                and self.config.ssl_min_protocol.lower() in ("any", "sslv3", "tlsv1", "tlsv1.1") \
                and not self.config.seclevel_0:
            # 2.3 lets the old version through, then finds no signature algorithm for it (measured)
            reason = "NO_SUITABLE_SIGNATURE_ALGORITHM"
        self.handshake = "SSL_accept() failed: " + handshake_error(reason,
                                                                   OPENSSL_OF_DOVECOT[self.config.dovecot])

    def exchanged(self, line: bytes, reply: Reply | None) -> None:
        """Count what the imap process reads and writes after the login (its ``in=`` and ``out=``)."""
        if self.just_logged_in:  # the login's own OK is the imap process's first output
            self.just_logged_in = False
            self.bytes_out += len(reply.data) if reply else 0
            return
        if self.user is None or self.logged_end:
            return
        command = line.split(b" ", 2)[1:2]
        self.last_command = command[0].decode("latin-1").upper().strip() if command else self.last_command
        # LOGOUT's line ending is not counted (measured: in=12 for "XXXX3 LOGOUT\r\n", 14 bytes).
        self.bytes_in += len(line) - (len(line) - len(line.rstrip(b"\r\n")) if self.logged_out else 0)
        self.bytes_out += len(reply.data) if reply else 0

    def ended(self, by_client: bool) -> None:
        """The connection is over: the last line Dovecot logs of it."""
        if self.logged_end:
            return
        self.logged_end = True
        two_three = self.config.dovecot == "2.3"
        if self.user is not None:
            if self.logged_out:
                reason = "Logged out"
            elif self.last_command is None:
                reason = "Connection closed (No commands sent)"
            else:
                reason = f"Connection closed ({self.last_command} finished 0.001 secs ago)"
            self.log(f"imap({self.user})<{self.mpid}><{self.session_id}>", "Info",
                     maillog.ImapSessionEnd(reason, self.bytes_in, self.bytes_out, len(self.bodies),
                                            sum(self.bodies)).format())
            return
        attempts, code = _attempts(self)
        secured = None
        if self.handshake == "":
            secured = "TLS: Connection closed" if by_client and not self.logged_out else "TLS"
        elif self.handshake is not None:
            if self.handshake == "handshaking":
                self.handshake = "Connection closed"
            secured = "TLS handshaking: " + self.handshake
            closed = "Connection closed"
            if self.handshake != closed:
                closed += ": " + self.handshake
            event = (f"Disconnected: {closed} ({attempts})" if two_three else
                     f"Login aborted: {closed} (disconnected during TLS handshake) "
                     "(tls_handshake_not_finished)")
            self.log_event(event, user=self.attempted_user, method=self.attempted_method, secured=secured)
            return
        if self.buffer_full:
            event = (f"Disconnected: Input buffer full ({attempts})" if two_three else
                     "Login aborted: Input buffer full (client_limit and process_limit was hit and this "
                     "login session was killed.) (process_full)")
        elif self.tls_init_failed:
            event = (f"Disconnected: TLS initialization failed. ({attempts})" if two_three else
                     f"Login aborted: TLS initialization failed. ({attempts}) ({code})")
        elif self.logged_out:
            event = (f"Disconnected: Aborted login by logging out ({attempts})" if two_three else
                     f"Login aborted: Logged out ({attempts}) ({code})")
        else:
            event = (f"Disconnected: Connection closed ({attempts})" if two_three else
                     f"Login aborted: Connection closed ({attempts}) ({code})")
        self.log_event(event, user=self.attempted_user, method=self.attempted_method, secured=secured)


def imap_strings(text: str) -> list[str]:
    """The atoms and quoted strings of a command's arguments."""
    return [quoted.replace('\\"', '"').replace("\\\\", "\\") if quoted or not atom else atom
            for quoted, atom in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', text)]


def subject_of(message: bytes) -> str:
    match = re.search(rb"^Subject:[ \t]*(.*)$", message, re.IGNORECASE | re.MULTILINE)
    return match[1].decode("latin-1").strip() if match else ""


def _elapsed(session: ImapSession) -> int:
    return int(time.monotonic() - session.opened)


def _attempts(session: ImapSession) -> tuple[str, str]:
    """The parenthesis of an imap-login line on a client that did not log in, and 2.4's reason code."""
    secs = _elapsed(session)
    if session.disallowed_cleartext:
        if session.config.dovecot == "2.3":
            return "tried to use disallowed plaintext auth", "cleartext_auth_disabled"
        return (f"tried to use disallowed cleartext auth, {session.attempts} attempts in {secs} secs",
                "cleartext_auth_disabled")
    if session.attempts:
        return f"auth failed, {session.attempts} attempts in {secs} secs", "auth_failed"
    return f"no auth attempts in {secs} secs", "no_auth_attempts"
