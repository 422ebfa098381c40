"""The repository holds no secrets: keys and certificates are made when a lab comes up."""

from __future__ import annotations

import re
import subprocess

from course import ROOT

# PEM armour of any private key (PKCS#8, EC, RSA, ...) or certificate.
PEM_SECRET = re.compile(r"-----BEGIN (?:[A-Z]+ )?(?:PRIVATE KEY|CERTIFICATE)-----")


def test_the_pattern_finds_what_the_lab_ca_writes() -> None:
    from mailtls.certs import LabCA

    issued = LabCA().issue("mail.lab.test")
    assert PEM_SECRET.search(issued.key_pem.decode()) and PEM_SECRET.search(issued.cert_pem.decode())


def test_no_key_or_certificate_is_tracked() -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = [name for name in tracked.decode().split("\0") if name]
    assert "labs/hosts/mail/master.cf" in files  # the listing is real
    found = [name for name in files
             if (ROOT / name).is_file() and PEM_SECRET.search((ROOT / name).read_bytes().decode("latin-1"))]
    assert not found, f"key or certificate material is tracked: {found}"
