"""OpenSSL's error queue as the simulated servers log it: codes, texts and the places they name.

Postfix writes each queued error on a line of its own (tls_misc.c ``tls_print_errors``:
``warning: TLS library problem: error:CODE:LIBRARY::TEXT:FILE:LINE:DATA``); Dovecot's imap-login
puts the last one after ``SSL_accept() failed: `` without the place. The places are OpenSSL's
source lines, so they change with its version: OpenSSL 3.0 in Debian 12 (Postfix 3.7, Dovecot 2.3)
and 3.5 in Debian 13 (Postfix 3.10, Dovecot 2.4). Every line here was measured on the lab's
servers: a TLS 1.0 client on a port that wants TLS 1.2, a clear-text EHLO on 465, a server
without a certificate, a certificate file and a CA file that do not exist.
"""

from __future__ import annotations

# The OpenSSL of each Postfix and Dovecot generation the lab runs (Debian 12, Debian 13).
OPENSSL_OF_POSTFIX = {"3.7": "3.0", "3.10": "3.5"}
OPENSSL_OF_DOVECOT = {"2.3": "3.0", "2.4": "3.5"}

# A failed handshake's error, by the ``reason`` of the engine's ssl.SSLError. ``{bad}`` is the
# word OpenSSL 3.5 changed for alert 42 ("sslv3" in 3.0, "ssl/tls" in 3.5).
HANDSHAKE_ERRORS = {
    "UNSUPPORTED_PROTOCOL": "error:0A000102:SSL routines::unsupported protocol",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "error:0A000076:SSL routines::no suitable signature algorithm",
    "NO_SHARED_CIPHER": "error:0A0000C1:SSL routines::no shared cipher",
    "TLSV1_ALERT_UNKNOWN_CA": "error:0A000418:SSL routines::tlsv1 alert unknown ca: SSL alert number 48",
    "SSLV3_ALERT_BAD_CERTIFICATE": "error:0A000412:SSL routines::{bad} alert bad certificate: "
                                   "SSL alert number 42",
    "WRONG_VERSION_NUMBER": "error:0A00010B:SSL routines::wrong version number",
}

# Where OpenSSL raised a handshake error on the server's side, by OpenSSL version and reason.
# A reason without a place here gets no "TLS library problem" line from the simulated smtpd.
HANDSHAKE_PLACES = {
    ("3.0", "UNSUPPORTED_PROTOCOL"): "../ssl/statem/statem_srvr.c:1664",
    ("3.0", "WRONG_VERSION_NUMBER"): "../ssl/record/ssl3_record.c:350",
    ("3.0", "NO_SHARED_CIPHER"): "../ssl/statem/statem_srvr.c:2226",
    ("3.5", "UNSUPPORTED_PROTOCOL"): "../ssl/statem/statem_srvr.c:1780",
    ("3.5", "WRONG_VERSION_NUMBER"): "../ssl/record/methods/tlsany_meth.c:77",
    ("3.5", "NO_SHARED_CIPHER"): "../ssl/statem/statem_srvr.c:2361",
}

# A certificate file that does not exist (SSL_CTX_use_certificate_chain_file), and a CA file that
# does not exist (SSL_CTX_load_verify_locations): the queue, oldest first; {path} as configured.
MISSING_CERTIFICATE_FILE = {
    "3.0": ("error:80000002:system library::No such file or directory:../crypto/bio/bss_file.c:297:"
            "calling fopen({path}, r):",
            "error:10080002:BIO routines::system lib:../crypto/bio/bss_file.c:300:",
            "error:0A080002:SSL routines::system lib:../ssl/ssl_rsa.c:450:"),
    "3.5": ("error:80000002:system library::No such file or directory:../crypto/bio/bss_file.c:299:"
            "calling fopen({path}, r):",
            "error:10080002:BIO routines::system lib:../crypto/bio/bss_file.c:302:",
            "error:0A080002:SSL routines::system lib:../ssl/ssl_rsa.c:503:"),
}
MISSING_CA_FILE = {
    "3.0": ("error:80000002:system library::No such file or directory:../crypto/bio/bss_file.c:67:"
            "calling fopen({path}, r):",
            "error:10000080:BIO routines::no such file:../crypto/bio/bss_file.c:75:",
            "error:05880002:x509 certificate routines::system lib:../crypto/x509/by_file.c:229:"),
    "3.5": ("error:80000002:system library::No such file or directory:../crypto/bio/bss_file.c:67:"
            "calling fopen({path}, r):",
            "error:10000080:BIO routines::no such file:../crypto/bio/bss_file.c:75:",
            "error:05880020:x509 certificate routines::BIO lib:../crypto/x509/by_file.c:248:"),
}


def handshake_error(reason: str, openssl: str = "3.0") -> str:
    """The error line for a failed handshake's ``reason`` (``UNSUPPORTED_PROTOCOL``) without its
    place, as imap-login logs it after ``SSL_accept() failed: ``."""
    text = HANDSHAKE_ERRORS.get(reason, f"error:0A000000:SSL routines::{reason.lower().replace('_', ' ')}")
    return text.replace("{bad}", "sslv3" if openssl == "3.0" else "ssl/tls")


def postfix_handshake_problem(reason: str | None, postfix: str) -> list[str]:
    """smtpd's ``warning: TLS library problem: ...`` line after a failed handshake whose engine
    error had ``reason``, under Postfix ``postfix`` ("3.7", "3.10"); none for a reason whose place
    was not measured."""
    openssl = OPENSSL_OF_POSTFIX[postfix]
    place = HANDSHAKE_PLACES.get((openssl, reason or ""))
    if reason is None or place is None:
        return []
    return [f"warning: TLS library problem: {handshake_error(reason, openssl)}:{place}:"]


def postfix_missing_file(path: str, postfix: str, kind: str) -> list[str]:
    """The ``warning: TLS library problem: ...`` lines Postfix ``postfix`` logs after failing to
    open ``path`` as a certificate file (``kind`` ``certificate``) or a CA file (``ca``)."""
    queues = MISSING_CERTIFICATE_FILE if kind == "certificate" else MISSING_CA_FILE
    queue = queues[OPENSSL_OF_POSTFIX[postfix]]
    return [f"warning: TLS library problem: {line.replace('{path}', path)}" for line in queue]
