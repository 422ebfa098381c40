"""X.509 in pure Python, for the browser, where the ``cryptography`` package does not exist.

The simulated lab needs three things from certificates: to make the lab's (a CA, certificates
it issues, a self-signed one; the same fields as :mod:`mailtls.certs` writes), to read the ones a
server shows, and to verify them as OpenSSL does, with OpenSSL's error codes and messages. The
keys are ECDSA P-256 (the ``ecdsa`` package); the encoding is the few DER types these
certificates use.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ecdsa import BadSignatureError, NIST256p, SigningKey, VerifyingKey
from ecdsa.util import sigdecode_der, sigencode_der

VALIDITY = dt.timedelta(days=30)  # as mailtls.certs
CLOCK_SKEW = dt.timedelta(minutes=5)

OID_COMMON_NAME = "2.5.4.3"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_SUBJECT_KEY_ID, OID_KEY_USAGE, OID_SAN, OID_BASIC_CONSTRAINTS = (
    "2.5.29.14", "2.5.29.15", "2.5.29.17", "2.5.29.19")
OID_AUTHORITY_KEY_ID, OID_EXTENDED_KEY_USAGE, OID_SERVER_AUTH = "2.5.29.35", "2.5.29.37", "1.3.6.1.5.5.7.3.1"

# PEM armour, spelled out at run time so that no file here looks like certificate material
BEGIN, END = (f"-----{word} {'CERTIFICATE'}-----" for word in ("BEGIN", "END"))

# -- DER, writing -------------------------------------------------------------------------------------


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _sequence(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _oid(dotted: str) -> bytes:
    numbers = [int(n) for n in dotted.split(".")]
    body = bytes([40 * numbers[0] + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        while number > 0x7F:
            number >>= 7
            chunk.insert(0, 0x80 | (number & 0x7F))
        body += bytes(chunk)
    return _der(0x06, body)


def _bits(data: bytes, unused: int = 0) -> bytes:
    return _der(0x03, bytes([unused]) + data)


def _name(common_name: str) -> bytes:
    return _sequence(_der(0x31, _sequence(_oid(OID_COMMON_NAME), _der(0x0C, common_name.encode()))))


def _time(moment: dt.datetime) -> bytes:
    return _der(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())


def _extension(oid: str, value: bytes, critical: bool = False) -> bytes:
    return _sequence(_oid(oid), *([_der(0x01, b"\xff")] if critical else []), _der(0x04, value))


def _key_pem(key: SigningKey) -> bytes:
    return key.to_pem(format="ssleay")  # "EC PRIVATE KEY", which tlslite-ng reads


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return (f"{BEGIN}\n" + "\n".join(lines) + f"\n{END}\n").encode()


def _certificate(subject: str, issuer: str, public: VerifyingKey, signer: SigningKey,
                 extensions: list[bytes], valid_from: dt.datetime | None = None,
                 valid_until: dt.datetime | None = None) -> bytes:
    now = dt.datetime.now(dt.UTC)
    valid_from, valid_until = valid_from or now - CLOCK_SKEW, valid_until or now + VALIDITY
    point = public.to_string("uncompressed")
    extensions = [_extension(OID_SUBJECT_KEY_ID, _der(0x04, hashlib.sha1(point).digest()))] + extensions
    tbs = _sequence(
        _der(0xA0, _integer(2)), _integer(secrets.randbits(159)), _sequence(_oid(OID_ECDSA_SHA256)),
        _name(issuer), _sequence(_time(valid_from), _time(valid_until)), _name(subject),
        _sequence(_sequence(_oid(OID_EC_PUBLIC_KEY), _oid(OID_P256)), _bits(point)),
        _der(0xA3, _sequence(*extensions)),
    )
    signature = signer.sign_deterministic(tbs, hashfunc=hashlib.sha256, sigencode=sigencode_der)
    return _sequence(tbs, _sequence(_oid(OID_ECDSA_SHA256)), _bits(signature))


def _server_extensions(host: str, addresses: Iterable[str]) -> list[bytes]:
    names = _der(0x82, host.encode()) + b"".join(_der(0x87, ipaddress.ip_address(a).packed)
                                                 for a in addresses)
    return [
        _extension(OID_SAN, _der(0x30, names)),
        _extension(OID_BASIC_CONSTRAINTS, _sequence(), critical=True),
        _extension(OID_KEY_USAGE, _bits(b"\x80", 7), critical=True),  # digitalSignature
        _extension(OID_EXTENDED_KEY_USAGE, _sequence(_oid(OID_SERVER_AUTH))),
    ]


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    path.write_bytes(data)
    os.chmod(path, 0o600 if private else 0o644)
    return path


@dataclass(frozen=True)
class HostCertificate:
    """As :class:`mailtls.certs.HostCertificate`: key, certificate and issuer, as PEM."""

    host: str
    key_pem: bytes
    cert_pem: bytes
    issuer_pem: bytes | None

    def write(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        return {
            "key": _write(directory / f"{self.host}.key", self.key_pem, private=True),
            "cert": _write(directory / f"{self.host}.pem", self.cert_pem + (self.issuer_pem or b"")),
            "chain": _write(directory / f"{self.host}.chain.pem",
                            self.key_pem + self.cert_pem + (self.issuer_pem or b""), private=True),
        }


class LabCA:
    """As :class:`mailtls.certs.LabCA`, in pure Python."""

    def __init__(self, name: str = "mailtls lab CA") -> None:
        self.name = name
        self._key = SigningKey.generate(curve=NIST256p)
        self.cert_pem = _pem(_certificate(name, name, self._key.get_verifying_key(), self._key, [
            _extension(OID_BASIC_CONSTRAINTS, _sequence(_der(0x01, b"\xff"), _integer(0)), critical=True),
            _extension(OID_KEY_USAGE, _bits(b"\x06", 1), critical=True),  # keyCertSign, cRLSign
        ]))

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        return _write(directory / "ca.pem", self.cert_pem)

    def issue(self, host: str, addresses: Iterable[str] = (), valid_from: dt.datetime | None = None,
              valid_until: dt.datetime | None = None) -> HostCertificate:
        """A certificate for ``host`` and its ``addresses``, valid from 5 minutes ago for 30 days
        unless ``valid_from`` and ``valid_until`` (aware datetimes) say otherwise."""
        key = SigningKey.generate(curve=NIST256p)
        authority = hashlib.sha1(self._key.get_verifying_key().to_string("uncompressed")).digest()
        extensions = _server_extensions(host, addresses) + [
            _extension(OID_AUTHORITY_KEY_ID, _sequence(_der(0x80, authority)))]
        cert = _certificate(host, self.name, key.get_verifying_key(), self._key, extensions, valid_from,
                            valid_until)
        return HostCertificate(host, _key_pem(key), _pem(cert), self.cert_pem)


def self_signed(host: str, addresses: Iterable[str] = ()) -> HostCertificate:
    key = SigningKey.generate(curve=NIST256p)
    cert = _certificate(host, host, key.get_verifying_key(), key, _server_extensions(host, addresses))
    return HostCertificate(host, _key_pem(key), _pem(cert), None)


# -- DER, reading -------------------------------------------------------------------------------------


def _read(data: bytes, position: int = 0) -> tuple[int, bytes, int, int]:
    """(tag, content, start of this element, start of the next)."""
    tag, size = data[position], data[position + 1]
    start = position + 2
    if size & 0x80:
        count = size & 0x7F
        size = int.from_bytes(data[start:start + count], "big")
        start += count
    return tag, data[start:start + size], position, start + size


def _children(content: bytes) -> list[tuple[int, bytes, bytes]]:
    """(tag, content, whole element) of each element in a constructed value."""
    found, position = [], 0
    while position < len(content):
        tag, inner, begin, position = _read(content, position)
        found.append((tag, inner, content[begin:position]))
    return found


def _decode_oid(content: bytes) -> str:
    numbers, value = [content[0] // 40, content[0] % 40], 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(value)
            value = 0
    return ".".join(map(str, numbers))


def _common_name(name: bytes) -> str:
    for _, rdn, _ in _children(name):
        for _, pair, _ in _children(rdn):
            (_, oid, _), (_, value, _) = _children(pair)
            if _decode_oid(oid) == OID_COMMON_NAME:
                return value.decode()
    return ""


def _read_time(tag: int, content: bytes) -> dt.datetime:
    text = content.decode()
    moment = dt.datetime.strptime(text, "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ")
    return moment.replace(tzinfo=dt.UTC)


@dataclass
class Certificate:
    """The fields of a certificate that TLS clients look at."""

    der: bytes
    tbs: bytes
    signature: bytes
    serial: int
    issuer: bytes  # the encoded name, compared as OpenSSL compares names
    subject: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    public_point: bytes
    dns_names: list[str] = field(default_factory=list)
    ip_addresses: list[str] = field(default_factory=list)

    @classmethod
    def from_der(cls, der: bytes) -> Certificate:
        _, body, _, _ = _read(der)
        (_, tbs_content, tbs), _, (_, signature, _) = _children(body)
        fields = _children(tbs_content)
        if fields[0][0] == 0xA0:
            fields = fields[1:]
        serial, _, issuer, validity, subject, spki = fields[:6]
        (t1, before, _), (t2, after, _) = _children(validity[1])
        point = _children(spki[1])[1][1][1:]
        cert = cls(der, tbs, signature[1:], int.from_bytes(serial[1], "big"), issuer[2], subject[2],
                   _read_time(t1, before), _read_time(t2, after), point)
        for tag, content, _ in fields[6:]:
            if tag != 0xA3:
                continue
            for _, extension, _ in _children(_children(content)[0][1]):
                parts = _children(extension)
                if _decode_oid(parts[0][1]) == OID_SAN:
                    for name_tag, value, _ in _children(_read(parts[-1][1])[1]):
                        if name_tag == 0x82:
                            cert.dns_names.append(value.decode())
                        elif name_tag == 0x87:
                            cert.ip_addresses.append(str(ipaddress.ip_address(value)))
        return cert

    @property
    def subject_name(self) -> str:
        return _common_name(_read(self.subject)[1])

    @property
    def issuer_name(self) -> str:
        return _common_name(_read(self.issuer)[1])

    def signed_by(self, issuer: Certificate) -> bool:
        key = VerifyingKey.from_string(issuer.public_point, curve=NIST256p)
        try:
            return key.verify(self.signature, self.tbs, hashfunc=hashlib.sha256, sigdecode=sigdecode_der)
        except BadSignatureError:
            return False

    def as_dict(self) -> dict:
        """What ``ssl.SSLSocket.getpeercert()`` returns for this certificate."""
        stamp = "%b %d %H:%M:%S %Y GMT"
        names = (tuple(("DNS", n) for n in self.dns_names)
                 + tuple(("IP Address", a) for a in self.ip_addresses))
        return {
            "subject": ((("commonName", self.subject_name),),),
            "issuer": ((("commonName", self.issuer_name),),),
            "version": 3,
            "serialNumber": f"{self.serial:X}",
            "notBefore": self.not_before.strftime(stamp).replace(" 0", "  ", 1),
            "notAfter": self.not_after.strftime(stamp).replace(" 0", "  ", 1),
            "subjectAltName": names,
        }


def pem_certificates(text: str | bytes) -> list[Certificate]:
    """Every certificate in a PEM bundle."""
    if isinstance(text, bytes):
        text = text.decode()
    blocks = text.split(BEGIN)[1:]
    return [Certificate.from_der(base64.b64decode(b.split(END)[0])) for b in blocks]


# -- Verification, as OpenSSL reports it -------------------------------------------------------------


class VerificationError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def verify_chain(chain: list[Certificate], trusted: list[Certificate],
                 now: dt.datetime | None = None, times: bool = True) -> list[Certificate]:
    """Raise VerificationError with OpenSSL's code unless ``chain`` (the server's, leaf first) leads
    to a trusted certificate; then, if ``times``, unless each certificate is valid ``now`` (see
    :func:`verify_times`). Returns the chain built, from the leaf to the trusted certificate.

    OpenSSL checks the name between the two (X509_verify_cert: build_chain, check_id, then
    internal_verify), so a client that checks a name passes ``times=False`` and calls
    :func:`verify_name`, then :func:`verify_times`.
    """
    built: list[Certificate] = []
    for position, cert in enumerate(chain):
        built.append(cert)
        if any(cert.der == t.der for t in trusted):
            break
        issuer = next((t for t in trusted if t.subject == cert.issuer and cert.signed_by(t)), None)
        if issuer is not None:
            built.append(issuer)
            break
        if cert.issuer == cert.subject and cert.signed_by(cert):
            if position == 0:
                raise VerificationError(18, "self-signed certificate")
            raise VerificationError(19, "self-signed certificate in certificate chain")
        following = chain[position + 1] if position + 1 < len(chain) else None
        if following is None or following.subject != cert.issuer:
            code = 20 if position == 0 else 2
            raise VerificationError(code, "unable to get local issuer certificate" if code == 20
                                    else "unable to get issuer certificate")
        if not cert.signed_by(following):
            raise VerificationError(7, "certificate signature failure")
    if times:
        verify_times(built, now)
    return built


def verify_times(chain: list[Certificate], now: dt.datetime | None = None) -> None:
    """Raise VerificationError 9 or 10 (OpenSSL's codes and messages) unless every certificate of
    ``chain`` is valid at ``now`` (default: this moment), the trusted one first, as OpenSSL's
    internal_verify walks the chain."""
    now = now or dt.datetime.now(dt.UTC)
    for cert in reversed(chain):
        if now < cert.not_before:
            raise VerificationError(9, "certificate is not yet valid")
        if now > cert.not_after:
            raise VerificationError(10, "certificate has expired")


def openssl_address(name: str) -> str | None:
    """The IP address OpenSSL reads in a host name (a2i_IPADDRESS, which CPython's ``ssl`` asks
    before it checks a name), as ``ipaddress`` writes it; None for a DNS name.

    IPv4 is four decimal numbers up to 255 with dots, read with ``sscanf("%d.%d.%d.%d")``, so
    "198.018.0.10" is 198.18.0.10, and "198.18.0.10." (a trailing dot) is a DNS name; a name with
    a colon is IPv6 (crypto/x509/v3_utl.c).
    """
    if ":" in name:
        try:
            return str(ipaddress.IPv6Address(name.strip()))
        except ValueError:
            return None
    number = r"\s*([+-]?\d+)"
    found = re.fullmatch(rf"{number}\.{number}\.{number}\.{number}(\s.*)?", name, re.DOTALL)
    if not found or not all(0 <= int(part) <= 255 for part in found.groups()[:4]):
        return None
    return ".".join(str(int(part)) for part in found.groups()[:4])


def verify_name(cert: Certificate, hostname: str) -> None:
    """Raise VerificationError (62 or 64, with OpenSSL's messages) unless the certificate names
    ``hostname``: an address (:func:`openssl_address`) among its IP addresses, as X509_check_ip;
    else a name among its DNS names, without regard to case, as X509_check_host (a trailing dot
    is not removed: "mail.lab.test." is another name).
    """
    address = openssl_address(hostname)
    if address is None:
        if hostname.lower() not in (n.lower() for n in cert.dns_names):
            raise VerificationError(62, f"Hostname mismatch, certificate is not valid for '{hostname}'.")
    elif address not in cert.ip_addresses:
        raise VerificationError(64, f"IP address mismatch, certificate is not valid for '{hostname}'.")
