"""The simulated lab never ignores a setting silently.

Every setting of the lab's files is modelled, accepted or fixed at the lab's values
(:mod:`mailtls.sim.modelled_settings`); any other set to anything but the real server's default
stops the simulated host with NotModelled; a Postfix name the real Postfix does not know gets the
real lab's refusal, with ``postfix check``'s lines (compared with the real binaries when they are
here); the page "What the simulated lab simplifies" shows the data.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from course import LANGUAGES
from mailtls import generations
from mailtls.generations import BOOKWORM, GENERATIONS, TRIXIE, Generation
from mailtls.hostfiles import copy_postfix_files
from mailtls.hosts import HOSTS, SHIPPED_LABS
from mailtls.sim import modelled_settings
from mailtls.sim.config import (
    DovecotChecker,
    DovecotRefused,
    NotModelled,
    PostfixConfig,
    PostfixRefused,
    built_in_defaults,
    main_cf_entries,
    read_master_cf,
    setting_names,
)
from mailtls.sim.lab import SimLab
from mailtls.sim.modelled_settings import ACCEPTED, CATEGORIES, FIXED, MODELLED, SETTINGS

ROOT = Path(__file__).resolve().parent.parent
IDS = {"ids": lambda g: g.folder}


def edited(tmp_path: Path, file: str, added: str = "", replace: tuple[str, str] | None = None) -> Path:
    """A copy of the shipped labs/ with ``added`` appended to ``hosts/FILE`` (after ``replace``)."""
    labs = tmp_path / "labs"
    shutil.copytree(SHIPPED_LABS, labs)
    path = labs / "hosts" / file
    text = path.read_text()
    if replace is not None:
        assert replace[0] in text
        text = text.replace(*replace)
    path.write_text(text + added)
    return labs


def start(labs: Path, tmp_path: Path, generation: Generation) -> SimLab:
    return SimLab(labs, tmp_path / "files", generation=generation)


def dovecot_conf(generation: Generation) -> str:
    return f"mail/{generation.folder}/dovecot.conf"


def main_cf(generation: Generation) -> str:
    """mail.lab.test's main.cf of ``generation``."""
    return f"mail/{generation.folder}/main.cf"


# -- The shipped lab ---------------------------------------------------------------------------------


def shipped_names(generation: Generation) -> dict[str, set[str]]:
    """Every name the shipped files of ``generation`` set: Postfix's (main.cf, master.cf ``-o``)
    and Dovecot's (the top level's names, and settings inside sections by their path)."""
    postfix: set[str] = set()
    dovecot: set[str] = set()
    for host in HOSTS:
        folder = host.config_dir(SHIPPED_LABS)
        main = generations.host_file(folder, "main.cf", generation)
        master = generations.host_file(folder, "master.cf", generation)
        if main.exists():
            postfix |= {name for _, name, _ in main_cf_entries(main.read_text())}
        if master.exists():
            postfix |= {name for service in read_master_cf(master.read_text()) for name in service.overrides}
        conf = generations.host_file(folder, "dovecot.conf", generation)
        if conf.exists():
            sections: list[str] = []
            for raw in conf.read_text().splitlines():
                line = raw.split("#", 1)[0].strip()
                if line.endswith("{"):
                    sections.append(line[:-1].strip())
                elif line == "}":
                    sections.pop()
                elif line:
                    dovecot.add("/".join([*sections, line.partition("=")[0].strip()]))
    return {"postfix": postfix, "dovecot": dovecot}


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_every_setting_the_lab_ships_is_modelled_or_accepted(generation: Generation) -> None:
    names = shipped_names(generation)
    assert len(names["postfix"]) > 40 and len(names["dovecot"]) > 20
    missing = [f"{server}: {name}" for server, found in names.items() for name in sorted(found)
               if modelled_settings.find(server, name) is None]
    assert not missing


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_the_shipped_lab_starts(generation: Generation, tmp_path: Path) -> None:
    lab = SimLab(files=tmp_path, generation=generation)
    assert set(lab.postfix) == {h.name for h in HOSTS if h.postfix}
    assert lab.dovecot["mail.lab.test"].listeners == {143: False, 993: True}


# -- The data ------------------------------------------------------------------------------------------


def test_every_entry_is_well_formed() -> None:
    keys = {category.key for category in CATEGORIES}
    assert len(keys) == len(CATEGORIES)
    for setting in SETTINGS:
        assert setting.server in ("postfix", "dovecot") and setting.category in keys, setting
        assert setting.how in (MODELLED, ACCEPTED, FIXED), setting
        assert bool(setting.en) == bool(setting.es) == (setting.how != MODELLED), setting
        assert bool(setting.values) == (setting.how == FIXED), setting
    assert len({(s.server, s.name) for s in SETTINGS}) == len(SETTINGS), "a setting listed twice"


def test_every_entry_names_a_real_setting() -> None:
    """Each name is one that a Postfix or Dovecot of the lab knows: a parameter of ``postconf
    -d`` (TRANSPORT_X: a delivery service's X, as ``retry_X``), a Dovecot setting of the top level,
    or a setting inside sections that ``doveconf``'s rules accept (:class:`DovecotChecker`)."""
    unknown = []
    for setting in SETTINGS:
        versions = {getattr(g, setting.server) for g in GENERATIONS}
        if setting.server == "postfix":
            name = setting.name.replace("TRANSPORT_", "retry_")
            known = any(name in setting_names("postfix", v) for v in versions)
        elif "/" not in setting.name:
            known = any(setting.name in setting_names("dovecot", v) for v in versions)
        else:
            *sections, name = setting.name.replace("*", "imap").split("/")
            opened = [tuple(f"{s} ".split(" ", 1)) for s in sections]
            opened = [(kind, label.strip()) for kind, label in opened]
            known = False
            for version in versions:
                checker = DovecotChecker(Path("dovecot.conf"), version)
                checker.first = False  # past 2.4's dovecot_config_version
                try:
                    checker.setting(2, opened, name)
                    known = True
                except DovecotRefused:
                    pass
        if not known:
            unknown.append(setting.name)
    assert not unknown


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_the_defaults_are_package_data(generation: Generation) -> None:
    """Every name has its default (as ``postconf -d`` and ``doveconf -d`` print it), but for the
    machine's own (``myhostname``) and what is inside Dovecot's sections."""
    postfix = built_in_defaults("postfix", generation.postfix)
    assert postfix["smtpd_tls_ciphers"] == "medium" and postfix["smtpd_tls_exclude_ciphers"] == ""
    assert postfix["myhostname"] is None and postfix["mail_name"] == "Postfix"
    assert postfix["mail_version"].startswith(generation.postfix + ".")
    dovecot = built_in_defaults("dovecot", generation.dovecot)
    assert dovecot["ssl_cipher_list"].startswith("ALL:!kRSA")
    assert dovecot["ssl_min_protocol"] == "TLSv1.2"
    assert set(postfix) == setting_names("postfix", generation.postfix)
    size = sum((ROOT / "src" / "mailtls" / "sim" / "names" / f"{server}-{version}.txt").stat().st_size
               for server, version in (("postfix", generation.postfix), ("dovecot", generation.dovecot)))
    assert size < 80_000, "the lists ship to the browser: keep them small"


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_the_simulation_s_own_defaults_are_the_binaries(generation: Generation) -> None:
    """The defaults the Postfix simulation spells out (config.POSTFIX_DEFAULTS) are the package
    data's, but for the few that are expressions there (given evaluated; the expression names
    the value)."""
    from mailtls.sim.config import EVALUATED_DEFAULTS, POSTFIX_DEFAULTS

    data = built_in_defaults("postfix", generation.postfix)
    assert {n: v for n, v in POSTFIX_DEFAULTS.items() if n not in EVALUATED_DEFAULTS and data[n] != v} == {}
    assert all(POSTFIX_DEFAULTS[n] in data[n] or data[n] == "$virtual_mailbox_maps"
               for n in EVALUATED_DEFAULTS)


# -- Not modelled: NotModelled -----------------------------------------------------------------------


def message(name: str, where: str, generation: Generation) -> str:
    command = "sudo python -m mailtls lab up" + ("" if generation == TRIXIE else " --debian 12")
    return f"the simulated lab does not model {name} ({where}); the real lab does: `{command}`"


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_an_unmodelled_postfix_parameter_stops_the_host(generation: Generation, tmp_path: Path) -> None:
    labs = edited(tmp_path, main_cf(generation), "smtpd_tls_ciphers = high\n")
    with pytest.raises(NotModelled) as refused:
        start(labs, tmp_path, generation)
    where = f"labs/hosts/{main_cf(generation)}: smtpd_tls_ciphers = high"
    assert str(refused.value) == message("smtpd_tls_ciphers", where, generation)
    assert "\n" not in str(refused.value)


def test_an_unmodelled_master_cf_override_stops_the_host(tmp_path: Path) -> None:
    labs = edited(tmp_path, "mail/master.cf", replace=(
        "  -o smtpd_tls_auth_only=yes\n",
        "  -o smtpd_tls_auth_only=yes\n  -o smtpd_tls_exclude_ciphers=aNULL\n"))
    with pytest.raises(NotModelled) as refused:
        start(labs, tmp_path, TRIXIE)
    where = "labs/hosts/mail/master.cf, service submission: -o smtpd_tls_exclude_ciphers=aNULL"
    assert str(refused.value) == message("smtpd_tls_exclude_ciphers", where, TRIXIE)


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_an_unmodelled_parameter_at_its_default_starts(generation: Generation, tmp_path: Path) -> None:
    """The default as ``postconf -d`` prints it, in main.cf and as a ``-o``, spaces as the writer likes."""
    labs = edited(tmp_path, main_cf(generation), "smtpd_tls_ciphers = medium\nsmtpd_tls_exclude_ciphers =\n"
                  "smtpd_discard_ehlo_keywords =\nsmtpd_tls_protocols = " + built_in_defaults(
                      "postfix", generation.postfix)["smtpd_tls_protocols"].replace(" ", "   ") + "\n")
    start(labs, tmp_path, generation)


def test_a_fixed_parameter_stops_the_host_at_another_value(tmp_path: Path) -> None:
    """smtpd_tls_loglevel is accepted at the lab's 1 only: the simulation logs as at level 1."""
    labs = edited(tmp_path, "relay/main.cf", replace=("smtpd_tls_loglevel = 1", "smtpd_tls_loglevel = 0"))
    with pytest.raises(NotModelled, match=r"does not model smtpd_tls_loglevel \(labs/hosts/relay/main.cf: "):
        start(labs, tmp_path, TRIXIE)


def test_a_delivery_service_s_pace_is_accepted_but_not_its_rate_delay(tmp_path: Path) -> None:
    labs = edited(tmp_path, "relay/main.cf", "relay_destination_concurrency_limit = 2\n"
                  "tls-verify_destination_recipient_limit = 1\n")
    start(labs, tmp_path / "a", TRIXIE)
    labs = edited(tmp_path / "b", "relay/main.cf", "relay_destination_rate_delay = 5s\n")
    with pytest.raises(NotModelled, match="does not model relay_destination_rate_delay"):
        start(labs, tmp_path / "b", TRIXIE)


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_an_unmodelled_dovecot_setting_stops_the_host(generation: Generation, tmp_path: Path) -> None:
    labs = edited(tmp_path, dovecot_conf(generation), "ssl_curve_list = P-256\n")
    line = len((labs / "hosts" / dovecot_conf(generation)).read_text().splitlines())
    with pytest.raises(NotModelled) as refused:
        start(labs, tmp_path, generation)
    where = f"labs/hosts/{dovecot_conf(generation)} line {line}: ssl_curve_list = P-256"
    assert str(refused.value) == message("ssl_curve_list", where, generation)


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_an_unmodelled_dovecot_setting_at_its_default_starts(generation: Generation, tmp_path: Path) -> None:
    default = built_in_defaults("dovecot", generation.dovecot)["ssl_curve_list"]
    labs = edited(tmp_path, dovecot_conf(generation), f"ssl_curve_list = {default}\n")
    start(labs, tmp_path, generation)


LISTENER = {"2.4": "listen", "2.3": "address"}


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_dovecot_sections_the_simulation_models(generation: Generation, tmp_path: Path) -> None:
    """Another imap-login listener is modelled: the simulated Dovecot listens there too."""
    labs = edited(tmp_path, dovecot_conf(generation),
                  "service imap-login {\n  inet_listener imap-other {\n    port = 1143\n  }\n}\n")
    lab = start(labs, tmp_path, generation)
    assert lab.dovecot["mail.lab.test"].listeners == {143: False, 993: True, 1143: False}


SECTION_CASES = {
    # what is added, the name NotModelled gives: sections that are not the simulation's
    "lmtp's port": ("service lmtp {\n  inet_listener lmtp {\n    port = 2424\n  }\n}\n",
                    "service lmtp/inet_listener lmtp/port"),
    "a new service": ("service pop3-login {\n}\n", "service pop3-login { }"),
    "a filter": ("protocol imap {\n  ssl_min_protocol = TLSv1.3\n}\n",
                 "ssl_min_protocol inside protocol imap { }"),
    "a listener's address": ("service imap-login {\n  inet_listener imap {\n"
                             "    {listen} = 127.0.0.1\n  }\n}\n",
                             "service imap-login/inet_listener imap/{listen}"),
    "an unmodelled setting of a service": ("service imap-login {\n  process_min_avail = 2\n}\n",
                                           "service imap-login/process_min_avail"),
}


@pytest.mark.parametrize("case", SECTION_CASES)
@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_dovecot_sections_the_simulation_does_not_model(generation: Generation, case: str,
                                                         tmp_path: Path) -> None:
    added, name = (text.replace("{listen}", LISTENER[generation.dovecot]) for text in SECTION_CASES[case])
    labs = edited(tmp_path, dovecot_conf(generation), added)
    with pytest.raises(NotModelled, match=f"^the simulated lab does not model {re.escape(name)} "):
        start(labs, tmp_path, generation)


@pytest.mark.parametrize(("generation", "old", "new"), [
    (TRIXIE, "passdb passwd-file {\n  passwd_file_path = /run/mailtls/users",
     "passdb passwd-file {\n  passwd_file_path = /etc/dovecot/users"),
    (TRIXIE, "passdb passwd-file {\n  passwd_file_path = /run/mailtls/users\n}", "passdb pam {\n}"),
    (BOOKWORM, "args = /run/mailtls/users", "args = /etc/dovecot/users"),
    (BOOKWORM, "driver = passwd-file", "driver = pam"),
], ids=["2.4 file", "2.4 driver", "2.3 file", "2.3 driver"])
def test_another_password_database_stops_the_host(generation: Generation, old: str, new: str,
                                                  tmp_path: Path) -> None:
    """The simulation checks the lab's users itself: any other passdb is one it does not model."""
    labs = edited(tmp_path, dovecot_conf(generation), replace=(old, new))
    with pytest.raises(NotModelled, match="^the simulated lab does not model passdb"):
        start(labs, tmp_path, generation)


# -- Unknown names: the real reaction ---------------------------------------------------------------

UNKNOWN_CASES = {
    # file, what is added: the warnings of ``postfix check`` (after the file's name)
    "an unknown main.cf parameter": ("relay/main.cf", "smtpd_tls_cipherz = high\n",
                                     ["main.cf: unused parameter: smtpd_tls_cipherz=high"]),
    "an unknown -o": ("relay/master.cf", "  -o smtp_tls_bogus=3\n",
                      ["master.cf: unused parameter: smtp_tls_bogus=3"]),
    "a parameter set twice": ("relay/main.cf", "smtp_tls_loglevel = 2\n",
                              ["main.cf, line {line}: overriding earlier entry: smtp_tls_loglevel=1"]),
    "a parameter set twice to the same value": ("relay/main.cf", "smtp_tls_loglevel = 1\n", []),
    "an undefined $name": ("relay/main.cf", "smtpd_banner = $myhostname ESMTP $mail_nam\n",
                           ["main.cf, line {line}: overriding earlier entry: "
                            "smtpd_banner=$myhostname ESMTP $mail_name (Debian/GNU)",
                            "main.cf: undefined parameter: mail_nam"]),
    "a parameter of the file's own, used": ("relay/main.cf", "lab_domain = lab.test\n"
                                            "relay_domains = $lab_domain\n",
                                            ["main.cf, line {line}: overriding earlier entry: "
                                             "relay_domains=lab.test"]),
}


def expected_warnings(labs: Path, case: str) -> list[str]:
    file, _, lines = UNKNOWN_CASES[case]
    last = len((labs / "hosts" / file).read_text().splitlines())
    return [line.format(line=last) for line in lines]


def as_in_folder(warnings: str) -> list[str]:
    """``postconf``'s warning lines with the files named by their own name only."""
    found = []
    for line in warnings.splitlines():
        match = re.match(r"^(?:\S*postconf|postfix|postsuper): warning: \S*/((?:main|master)\.cf.*)$", line)
        if match and re.search(r"unused parameter|undefined parameter|overriding earlier entry", line):
            found.append(match[1])
    return list(dict.fromkeys(found))


@pytest.mark.parametrize("case", UNKNOWN_CASES)
@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_an_unknown_postfix_name_is_refused_as_the_real_lab_refuses_it(generation: Generation, case: str,
                                                                      tmp_path: Path) -> None:
    file, added, _ = UNKNOWN_CASES[case]
    labs = edited(tmp_path, file, added)
    if not expected_warnings(labs, case):
        start(labs, tmp_path, generation)
        return
    with pytest.raises(PostfixRefused) as refused:
        start(labs, tmp_path, generation)
    first, *lines = str(refused.value).splitlines()
    assert first == f"Postfix refuses the configuration of relay.lab.test ({labs / 'hosts' / 'relay'}):"
    assert all(line.startswith("/usr/sbin/postconf: warning: labs/hosts/relay/") for line in lines)
    assert as_in_folder("\n".join(lines)) == expected_warnings(labs, case)


def real_postfix_check(generation: Generation, folder: Path) -> str | None:
    """What ``postfix -c FOLDER check`` of ``generation`` prints, or None without its binaries here."""
    version = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                             text=True).stdout if shutil.which("postfix") else ""
    if version.startswith(generation.postfix + "."):
        done = subprocess.run(["postfix", "-c", str(folder), "check"], capture_output=True, text=True)
        return done.stdout + done.stderr
    environment = {**os.environ, "CONTAINERS_CONF": str(ROOT / "labs" / "containers" / "containers.conf")}
    if shutil.which("podman") and subprocess.run(["podman", "image", "exists", generation.host_image],
                                                 capture_output=True, env=environment).returncode == 0:
        done = subprocess.run(["podman", "run", "--rm", "-v", f"{folder}:/mnt/postfix:ro",
                               "--entrypoint", "sh", generation.host_image, "-c",
                               "cp -r /mnt/postfix /tmp/postfix && postfix -c /tmp/postfix check"],
                              capture_output=True, text=True, env=environment)
        return done.stdout + done.stderr
    return None


@pytest.mark.parametrize("case", UNKNOWN_CASES)
@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_the_refusal_is_the_real_postfix_check_s(generation: Generation, case: str, tmp_path: Path) -> None:
    """The same files, copied as the real lab copies them, to the real ``postfix check``."""
    file, added, _ = UNKNOWN_CASES[case]
    labs = edited(tmp_path, file, added)
    copy_postfix_files(labs / "hosts" / "relay", tmp_path / "postfix", generation)
    said = real_postfix_check(generation, tmp_path / "postfix")
    if said is None:
        pytest.skip(f"no Postfix {generation.postfix} here (nor {generation.host_image})")
    assert sorted(as_in_folder(said)) == sorted(expected_warnings(labs, case))


@pytest.mark.parametrize("generation", GENERATIONS, **IDS)
def test_the_real_postfix_check_is_silent_on_the_shipped_files(generation: Generation,
                                                               tmp_path: Path) -> None:
    for host in HOSTS:
        if host.postfix:
            copy_postfix_files(host.config_dir(SHIPPED_LABS), tmp_path / host.short, generation)
            said = real_postfix_check(generation, tmp_path / host.short)
            if said is None:
                pytest.skip(f"no Postfix {generation.postfix} here (nor {generation.host_image})")
            assert as_in_folder(said) == []
            assert PostfixConfig(host.config_dir(SHIPPED_LABS), tmp_path, generation).main


# -- The page ---------------------------------------------------------------------------------------


def code_texts(page: str) -> set[str]:
    """The text of every inline code element of an HTML page."""
    return {html.unescape(re.sub(r"<[^>]+>", "", code))
            for code in re.findall(r"<code[^>]*>(.*?)</code>", page, re.S)}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_page_shows_every_setting_from_the_data(site: Path, language: str) -> None:
    page = (site / language / "notebooks" / "simulated-lab.html").read_text(encoding="utf-8")
    shown = code_texts(page)
    assert not [s.name for s in SETTINGS if s.name not in shown]
    text = html.unescape(re.sub(r"<[^>]+>", "", page)).replace("\u2019", "'")  # smart quotes back
    assert not [s.name for s in SETTINGS if s.how != MODELLED and getattr(s, language) not in text]
    assert all(getattr(category, language) in text for category in CATEGORIES)


def test_postfix_expands_values_as_postconf_does() -> None:
    """:func:`mailtls.sim.config.expand` against ``postconf -x -d`` of this machine's Postfix, on
    every default that uses an expansion (conditionals and compatibility levels included)."""
    from helpers.requirements import require_program
    from mailtls.sim.config import expand

    require_program("postconf", "Debian package postfix")

    def postconf(*options: str) -> dict[str, str]:
        listed = subprocess.run(["postconf", *options], capture_output=True, text=True, check=True).stdout
        return {name.strip(): value.strip() for name, _, value in
                (line.partition("=") for line in listed.splitlines())}

    raw, expanded = postconf("-d"), postconf("-x", "-d")
    # postconf leaves a few values as they are (texts with $ of their own, expanded as mail comes).
    with_expansions = [name for name, value in raw.items() if "$" in value and "$" not in expanded[name]]
    assert len(with_expansions) > 100 and any("<level" in raw[name] for name in with_expansions)
    wrong = {name: (expand(raw[name], raw), expanded[name]) for name in with_expansions
             if " ".join(expand(raw[name], raw).split()) != " ".join(expanded[name].split())}
    assert not wrong
