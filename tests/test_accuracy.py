"""Every Postfix and Dovecot setting the course shows exists in the real programs.

Postfix names are checked against the installed Postfix's ``postconf -d``; Dovecot 2.3 blocks
are parsed by the installed Dovecot's own ``doveconf``; Dovecot 2.4 blocks, which Debian 12's
Dovecot cannot read, against the lists in ``dovecot24_settings.py``: their names, and the values
of their boolean and enumerated settings.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import dovecot24_settings
from course import (
    LANGUAGES,
    built_page,
    code_blocks,
    dovecot_assignments,
    dovecot_names,
    postconf_command_names,
    postfix_main_names,
    postfix_master_names,
    source_pages,
)
from helpers.requirements import require_dovecot_23, require_program

PAGES = source_pages("en")
CLIENT_LEVELS = {"none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure"}
POLICY_ATTRIBUTES = {"match", "protocols", "ciphers", "exclude", "tafile", "connection_reuse", "servername"}


@pytest.fixture(scope="session")
def postfix_parameters() -> frozenset[str]:
    postconf = require_program("postconf", "Debian package postfix")
    output = subprocess.run([postconf, "-d"], capture_output=True, text=True, check=True).stdout
    # "name = value", or "name =" when the default is empty
    names = frozenset(m[1] for line in output.splitlines() if (m := re.match(r"^([A-Za-z0-9_]+) =", line)))
    assert "smtpd_tls_security_level" in names  # the real postconf answered
    return names


@pytest.fixture(scope="session")
def doveconf() -> str:
    path = require_program("doveconf", "Debian package dovecot-core")
    require_dovecot_23("parsing the course's Dovecot 2.3 blocks")
    return path


def blocks_of(site: Path, page: str, language: str) -> list:
    return code_blocks(built_page(site, language, page))


@pytest.mark.parametrize("page", PAGES)
def test_postfix_parameters_exist(site, postfix_parameters, page: str) -> None:
    unknown = []
    for language in LANGUAGES:
        for block in blocks_of(site, page, language):
            if block.language == "postfix-main":
                names = postfix_main_names(block.text)
            elif block.language == "postfix-master":
                names = postfix_master_names(block.text)
            elif block.language == "console":
                names = postconf_command_names(block.text)
            else:
                continue
            unknown += [(language, block.language, n) for n in names if n not in postfix_parameters]
    assert not unknown, f"not Postfix 3.7 parameters (postconf -d): {sorted(set(unknown))}"


@pytest.mark.parametrize("page", PAGES)
def test_postconf_links_name_real_parameters(site, postfix_parameters, page: str) -> None:
    for language in LANGUAGES:
        html = built_page(site, language, page).read_text(encoding="utf-8")
        linked = set(re.findall(r"postconf\.5\.html#([A-Za-z0-9_]+)", html))
        assert linked <= postfix_parameters, \
            f"{language}: links to unknown parameters {linked - postfix_parameters}"


@pytest.mark.parametrize("page", PAGES)
def test_tls_policy_tables_use_client_levels(site, page: str) -> None:
    for block in blocks_of(site, page, "en"):
        if block.language != "postfix-map":
            continue
        for line in block.text.splitlines():
            fields = line.split()
            if not fields or fields[0].startswith("#") or len(fields) < 2:
                continue
            assert fields[1] in CLIENT_LEVELS, f"{line!r}: {fields[1]!r} is not a TLS security level"
            for attribute in fields[2:]:
                name = attribute.split("=", 1)[0]
                assert name in POLICY_ATTRIBUTES, f"{line!r}: unknown policy attribute {name!r}"


def doveconf_verdict(doveconf: str, text: str, scratch: Path) -> str:
    """What the real Dovecot says of a configuration: '' when it accepts it."""
    config = scratch / "dovecot.conf"
    config.write_text(text, encoding="utf-8")
    done = subprocess.run([doveconf, "-c", str(config), "-n"], capture_output=True, text=True)
    return "" if done.returncode == 0 else done.stderr.strip()


@pytest.mark.parametrize("page", PAGES)
def test_dovecot23_blocks_parse_in_real_dovecot(site, doveconf, tmp_path, page: str) -> None:
    for block in blocks_of(site, page, "en"):
        if block.language == "dovecot":
            verdict = doveconf_verdict(doveconf, block.text, tmp_path)
            assert verdict == "", f"Dovecot 2.3 rejects this block:\n{block.text}\n{verdict}"


@pytest.mark.parametrize("page", PAGES)
def test_dovecot24_blocks_use_24_names(site, page: str) -> None:
    for block in blocks_of(site, page, "en"):
        if block.language != "dovecot24":
            continue
        settings, sections = dovecot_names(block.text)
        assert set(settings) <= dovecot24_settings.SETTINGS, (
            f"not in the Dovecot 2.4 list: {set(settings) - dovecot24_settings.SETTINGS}\n{block.text}"
        )
        assert set(sections) <= dovecot24_settings.SECTIONS, f"unknown 2.4 sections: {set(sections)}"
        if "dovecot_config_version" in settings:
            assert settings[0] == "dovecot_config_version", "2.4 requires dovecot_config_version first"


def dovecot24_wrong_values(text: str) -> list[str]:
    """The lines of a Dovecot 2.4 fragment whose boolean or enumerated value 2.4 would refuse."""
    wrong = []
    for sections, name, value in dovecot_assignments(text):
        allowed = dovecot24_settings.allowed_values(sections, name)
        if allowed is not None and value not in allowed:
            where = " in ".join([name, *reversed(sections)])
            wrong.append(f"{where} = {value} (Dovecot 2.4 takes: {', '.join(sorted(allowed))})")
    return wrong


@pytest.mark.parametrize("page", PAGES)
def test_dovecot24_blocks_use_24_values(site, page: str) -> None:
    for language in LANGUAGES:
        for block in blocks_of(site, page, language):
            if block.language == "dovecot24":
                wrong = dovecot24_wrong_values(block.text)
                assert not wrong, f"{language}: values Dovecot 2.4 refuses: {wrong}\n{block.text}"


def test_dovecot24_value_check_knows_the_rules() -> None:
    """The value check refuses what Dovecot 2.4.1 refuses, and accepts what it accepts."""
    assert dovecot24_wrong_values("ssl_server_prefer_ciphers = yes")  # 2.3's value: "Invalid value: yes"
    assert dovecot24_wrong_values("auth_allow_cleartext = required")
    assert dovecot24_wrong_values("service imap-login {\n  inet_listener imaps {\n    ssl = required\n  }\n}")
    assert not dovecot24_wrong_values(
        "ssl = required\nssl_server_prefer_ciphers = server\nauth_allow_cleartext = no\n"
        "service imap-login {\n  inet_listener imaps {\n    port = 993\n    ssl = yes\n  }\n}"
    )


def test_dovecot24_value_check_has_values_to_check(site) -> None:
    """Guard against a silent pass: the course's 2.4 blocks do set values the check knows."""
    checked = {
        name
        for page in PAGES
        for block in blocks_of(site, page, "en") if block.language == "dovecot24"
        for sections, name, _ in dovecot_assignments(block.text)
        if dovecot24_settings.allowed_values(sections, name) is not None
    }
    assert {"ssl", "auth_allow_cleartext", "ssl_server_prefer_ciphers"} <= checked


def test_the_checks_have_something_to_check(site) -> None:
    """Guard against a silent pass: the course does show Postfix and Dovecot configuration."""
    languages = {b.language for page in PAGES for b in blocks_of(site, page, "en")}
    assert {"postfix-main", "postfix-master", "dovecot", "dovecot24", "console"} <= languages
