"""The lab's certificate authority and the certificates of its hosts, made when a lab comes up.

Why generated, never committed: a private key in a repository is a published key. Every lab
gets its own CA, so a certificate from one student's lab is not trusted by another's, and the
course can show what verification does: a client that trusts only the lab CA accepts
``mail.lab.test`` and refuses the self-signed ``selfsigned.lab.test`` or a wrong host name.

Keys are ECDSA P-256: quick to generate (a lab makes several at every start) and accepted by
Postfix, Dovecot, OpenSSL and Python's ``ssl`` alike.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)  # a lab is disposable; a month covers any course
CLOCK_SKEW = dt.timedelta(minutes=5)  # accept hosts whose clock is slightly behind


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _builder(subject: x509.Name, issuer: x509.Name,
             public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    """What every lab certificate has: names, key, a random serial and the lab's validity."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a server signs its TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=signs_certificates,
        crl_sign=signs_certificates, encipher_only=False, decipher_only=False,
    )


def _subject_alt_names(host: str, addresses: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(host)]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    return x509.SubjectAlternativeName(names)


@dataclass(frozen=True)
class HostCertificate:
    """A host's key and certificate (and the CA certificate that signed it, if any)."""

    host: str
    key_pem: bytes
    cert_pem: bytes
    issuer_pem: bytes | None  # None for a self-signed certificate

    @property
    def chain_pem(self) -> bytes:
        """Key, certificate, then issuer: the order of Postfix's ``smtpd_tls_chain_files``."""
        return self.key_pem + self.cert_pem + (self.issuer_pem or b"")

    def write(self, directory: Path) -> dict[str, Path]:
        """Write ``HOST.key`` (mode 0600), ``HOST.pem`` (certificate and issuer) and ``HOST.chain.pem``."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "key": _write(directory / f"{self.host}.key", self.key_pem, private=True),
            "cert": _write(directory / f"{self.host}.pem", self.cert_pem + (self.issuer_pem or b"")),
            "chain": _write(directory / f"{self.host}.chain.pem", self.chain_pem, private=True),
        }
        return files


def _write(path: Path, data: bytes, *, private: bool = False) -> Path:
    # Create with the final mode, so a private key is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600 if private else 0o644)
    return path


class LabCA:
    """A certificate authority that exists for one lab only."""

    def __init__(self, name: str = "mailtls lab CA") -> None:
        self._key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            _builder(subject, subject, self._key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return _cert_pem(self.certificate)

    def write(self, directory: Path) -> Path:
        """Write the CA certificate as ``ca.pem`` (the CA key stays in memory: nothing else is signed
        later)."""
        directory.mkdir(parents=True, exist_ok=True)
        return _write(directory / "ca.pem", self.cert_pem)

    def issue(self, host: str, addresses: Iterable[str] = ()) -> HostCertificate:
        """A server certificate for ``host`` (and its addresses), signed by this CA."""
        key = _new_key()
        cert = _server_certificate(
            host, addresses, key, issuer=self.certificate.subject, signing_key=self._key,
            authority_key=x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
        )
        return HostCertificate(host, _key_pem(key), _cert_pem(cert), self.cert_pem)


def self_signed(host: str, addresses: Iterable[str] = ()) -> HostCertificate:
    """A certificate that signs itself, like Debian's ``ssl-cert-snakeoil.pem``: no CA vouches for it."""
    key = _new_key()
    cert = _server_certificate(host, addresses, key, issuer=None, signing_key=key, authority_key=None)
    return HostCertificate(host, _key_pem(key), _cert_pem(cert), None)


def _server_certificate(
    host: str,
    addresses: Iterable[str],
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: x509.Name | None,
    signing_key: ec.EllipticCurvePrivateKey,
    authority_key: x509.AuthorityKeyIdentifier | None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    builder = (
        _builder(subject, issuer or subject, key.public_key())
        .add_extension(_subject_alt_names(host, addresses), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if authority_key is not None:
        builder = builder.add_extension(authority_key, critical=False)
    return builder.sign(signing_key, hashes.SHA256())
