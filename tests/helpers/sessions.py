"""Raw SMTP and IMAP conversations, line by line, that keep every line the server sent.

The chapters quote what servers say (RFC 5321 section 4.2 for SMTP's replies, RFC 3501 section
2.2.2 for IMAP's tagged and untagged responses); these sessions collect the real lines to
compare with.
"""

from __future__ import annotations

import socket
import ssl

from mailtls import smtp_reply


class LineSession:
    """A connection to ``address:port`` that appends each line the server sends to ``heard``.

    Lines are decoded as UTF-8 and kept without their CRLF. Raises ``OSError`` when the server
    cannot be reached within 10 seconds.
    """

    def __init__(self, address: str, port: int, heard: list[str]) -> None:
        self.sock = socket.create_connection((address, port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.heard = heard

    def read_smtp_reply(self) -> str:
        """Read one SMTP reply, every line of a multi-line one (``250-...``); return its last line."""
        reply = smtp_reply.read(self.file.readline)  # the package's one reader (RFC 5321, 4.2.1)
        lines = [line.decode().rstrip("\r\n") for line in reply.lines]
        self.heard.extend(lines)
        return lines[-1]

    def read_imap_until(self, tag: str) -> str:
        """Read IMAP lines up to the one that starts with ``tag`` (or to the end); return that line."""
        while True:
            line = self.file.readline().decode().rstrip("\r\n")
            self.heard.append(line)
            if line.startswith(tag + " ") or not line:
                return line

    def send(self, line: str) -> None:
        """Send one line; the CRLF is added."""
        self.sock.sendall(line.encode() + b"\r\n")

    def smtp(self, *commands: str) -> str:
        """Send each SMTP command and read its reply; return the last reply's last line."""
        reply = ""
        for command in commands:
            self.send(command)
            reply = self.read_smtp_reply()
        return reply

    def imap(self, command: str) -> str:
        """Send a tagged IMAP command (``a1 LOGIN ...``) and read up to its tagged answer; return that."""
        self.send(command)
        return self.read_imap_until(command.split(" ", 1)[0])

    def starttls(self, context: ssl.SSLContext) -> None:
        """Start TLS on the connection, for ``mail.lab.test`` (raises ``ssl.SSLError`` on a failure)."""
        self.sock = context.wrap_socket(self.sock, server_hostname="mail.lab.test")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        """Close the connection, without a QUIT or LOGOUT."""
        self.sock.close()

    def __enter__(self) -> LineSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
