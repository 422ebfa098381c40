"""Every Postfix and Dovecot setting the course shows is accepted by the real programs of the
generation the block belongs to.

A block's generation is the sphinx-design tab around it (``Debian 13 (...)``, ``Debian 12 (...)``),
or both outside tabs; the fence language narrows it (``dovecot24`` is Dovecot 2.4's language,
Debian 13's; ``dovecot`` is 2.3's, Debian 12's), and a fence language that contradicts its tab
is an error. The real programs are those of ``helpers.binaries``: Debian 13's from the lab's
host image, Debian 12's from this machine (or the image). All the blocks of a generation are
checked in one batch, in one container:

- Postfix (``postfix-main``, ``postfix-master``, ``postconf -e`` in ``console`` blocks): the
  names against that generation's ``postconf -d``; then the block put into a complete,
  otherwise default configuration (the lab's mail.lab.test ``main.cf`` of that generation and
  Debian's own ``master.cf``), on which ``postfix -c DIR check`` and ``postconf -c DIR -n`` must say nothing.
- Dovecot: ``doveconf -n -c FILE`` on the block made a complete file of its version (2.4's
  needs ``dovecot_config_version`` and ``dovecot_storage_version`` first): names and values.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from course import (
    DEBIANS,
    LANGUAGES,
    CodeBlock,
    built_page,
    code_blocks,
    postconf_command_names,
    postfix_main_names,
    postfix_master_names,
    source_pages,
)
from helpers.binaries import LAB_MAIL, Answer, Servers, servers
from helpers.transcripts import Exercised, quoted_lines, text_blocks, unmatched
from mailtls import generations
from mailtls.backends.containers import engine_env

PAGES = source_pages("en")
CLIENT_LEVELS = {"none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure"}
POLICY_ATTRIBUTES = {"match", "protocols", "ciphers", "exclude", "tafile", "connection_reuse", "servername"}
CHECKED_LANGUAGES = {"postfix-main", "postfix-master", "console", "dovecot", "dovecot24"}
DOVECOT24_HEADER = ("dovecot_config_version", "dovecot_storage_version")


def blocks_of(site: Path, page: str, language: str) -> list[CodeBlock]:
    return code_blocks(built_page(site, language, page))


# -- Making complete configurations of blocks -----------------------------------------------------


def postconf_command_settings(block: str) -> list[str]:
    """The ``name = value`` lines that ``postconf -e 'name = value' ...`` commands of a console
    block write into main.cf, in order."""
    settings = []
    for line in block.splitlines():
        if match := re.search(r"postconf\s+(?:-[c]\s+\S+\s+)?-e\s+(.*)", line):
            settings += [word for word in shlex.split(match[1]) if "=" in word]
    return settings


def without_parameters(main_cf: str, names: set[str]) -> str:
    """``main_cf`` without the settings (and their indented continuation lines) of ``names``."""
    kept, dropping = [], False
    for line in main_cf.splitlines():
        if line[:1].isspace() and line.strip():
            if not dropping:
                kept.append(line)
            continue
        match = re.match(r"^([A-Za-z0-9_]+)\s*=", line)
        dropping = bool(match and match[1] in names)
        if not dropping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def master_entries(master_cf: str) -> list[tuple[str, list[str]]]:
    """The entries of a master.cf text: ((service, type), lines), comments and blank lines dropped."""
    entries: list[tuple[str, list[str]]] = []
    for line in master_cf.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[:1].isspace() and entries:
            entries[-1][1].append(line)
        else:
            fields = line.split()
            entries.append((f"{fields[0]}/{fields[1]}", [line]))
    return entries


def with_master_entries(master_cf: str, block: str) -> str:
    """Debian's master.cf with the block's entries in place of the entries of the same service/type."""
    replaced = {name for name, _ in master_entries(block)}
    kept = [line for name, lines in master_entries(master_cf) if name not in replaced for line in lines]
    return "\n".join(kept) + "\n" + block.rstrip("\n") + "\n"


def base_main_cf(generation: generations.Generation) -> str:
    """The main.cf the Postfix blocks of ``generation`` go into: mail.lab.test's of that generation
    (Debian's images have no main.cf of their own until Postfix is configured)."""
    return generations.host_file(LAB_MAIL, "main.cf", generation).read_text(encoding="utf-8")


def postfix_files(block: CodeBlock, main_cf: str, debian_master_cf: str) -> dict[str, str] | None:
    """The complete main.cf and master.cf that hold ``block``, from the base ``main_cf`` and Debian's
    own ``debian_master_cf``; None for a block that sets nothing."""
    if block.language == "postfix-master":
        return {"main.cf": main_cf, "master.cf": with_master_entries(debian_master_cf, block.text)}
    if block.language == "postfix-main":
        lines = block.text.splitlines()
    else:
        lines = postconf_command_settings(block.text)
    if not lines:
        return None
    names = {m[1] for line in lines if (m := re.match(r"^\s*([A-Za-z0-9_]+)\s*=", line))}
    main_cf = without_parameters(main_cf, names) + "\n".join(lines) + "\n"
    return {"main.cf": main_cf, "master.cf": debian_master_cf}


def dovecot_file(block: CodeBlock, debian: int) -> str:
    """The complete dovecot.conf of ``block`` for Debian ``debian``'s Dovecot. A 2.4 file must start
    with ``dovecot_config_version`` and set ``dovecot_storage_version``: added unless the block has them."""
    if debian < 13:
        return block.text

    def sets(name: str) -> bool:
        return re.search(rf"^\s*{name}\s*=", block.text, re.MULTILINE) is not None

    text = block.text if sets("dovecot_config_version") else "dovecot_config_version = 2.4.0\n" + block.text
    if sets("dovecot_storage_version"):
        return text
    return text.rstrip("\n") + "\ndovecot_storage_version = 2.4.0\n"


# -- One batch per generation ---------------------------------------------------------------------


@dataclass
class Verdicts:
    """What one generation's real programs said of every block that belongs to it."""

    servers: Servers
    parameters: frozenset[str]  # the names postconf -d knows
    base: Answer  # Postfix on the base configuration alone
    answers: dict[tuple[str, str], Answer]  # (kind, block text) -> Answer

    def of(self, block: CodeBlock) -> Answer | None:
        kind = "dovecot" if block.language.startswith("dovecot") else "postfix"
        return self.answers.get((kind, block.text))


def debian_master_cf(where: Servers) -> str:
    """Debian's own master.cf of a generation (``/etc/postfix/master.cf`` of the machine or image)."""
    if where.image is None:
        return Path("/etc/postfix/master.cf").read_text(encoding="utf-8")
    done = subprocess.run(["podman", "run", "--rm", "--network", "none", "--entrypoint", "cat", where.image,
                           "/etc/postfix/master.cf"], capture_output=True, text=True, check=True,
                          env={**os.environ, **engine_env("podman")})
    return done.stdout


def check_blocks(where: Servers, blocks: list[CodeBlock], batch: Path) -> Verdicts:
    """Write every block (of ``where``'s generation) into ``batch`` as a complete configuration and
    let ``where``'s real programs judge them all in one run."""
    master_cf = debian_master_cf(where)
    named: dict[tuple[str, str], str] = {}
    base = batch / "postfix" / "base"
    base.mkdir(parents=True)
    main_cf = base_main_cf(where.generation)
    (base / "main.cf").write_text(main_cf)
    (base / "master.cf").write_text(master_cf)
    (batch / "dovecot").mkdir()
    for block in blocks:
        name = f"b{len(named):03d}"
        if block.language.startswith("dovecot"):
            (batch / "dovecot" / f"{name}.conf").write_text(dovecot_file(block, where.generation.debian))
            named[("dovecot", block.text)] = name
        elif (files := postfix_files(block, main_cf, master_cf)) is not None:
            (batch / "postfix" / name).mkdir()
            for file, text in files.items():
                (batch / "postfix" / name / file).write_text(text)
            named[("postfix", block.text)] = name
    answers = where.run(batch)
    listed = answers[("postconf-d", "all")].output
    parameters = frozenset(m[1] for line in listed.splitlines()
                           if (m := re.match(r"^([A-Za-z0-9_]+) =", line)))
    assert "smtpd_tls_security_level" in parameters, f"{where.where}: postconf -d said:\n{listed[:2000]}"
    missing = [key for key, name in named.items() if (key[0], name) not in answers]
    assert not missing, f"{where.where}: no answer for {missing}"
    return Verdicts(where, parameters, answers[("postfix", "base")],
                    {key: answers[(key[0], name)] for key, name in named.items()})


def blocks_to_check(site: Path, debian: int) -> list[CodeBlock]:
    """Every distinct block, in both editions, that Debian ``debian``'s programs must accept."""
    seen: dict[tuple[str, str], CodeBlock] = {}
    for page in PAGES:
        for language in LANGUAGES:
            for block in blocks_of(site, page, language):
                if block.language in CHECKED_LANGUAGES and debian in block.checked_on:
                    seen.setdefault((block.language, block.text), block)
    return list(seen.values())


@pytest.fixture(scope="session")
def verdicts(site: Path, tmp_path_factory: pytest.TempPathFactory):
    """``verdicts(debian)``: the Verdicts of that generation, one batch run each, made when first asked.
    A run that failed (or skipped: no Podman) is not tried again: every test that asks gets its error."""
    made: dict[int, Verdicts | BaseException] = {}

    def of(debian: int) -> Verdicts:
        if debian not in made:
            try:
                where = servers(generations.get(debian))
                made[debian] = check_blocks(where, blocks_to_check(site, debian),
                                            tmp_path_factory.mktemp(f"debian{debian}"))
            except (Exception, pytest.skip.Exception, pytest.fail.Exception) as error:
                made[debian] = error
        result = made[debian]
        if isinstance(result, BaseException):
            raise result
        return result

    return of


# -- The tests --------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_fence_languages_agree_with_tabs(site, page: str) -> None:
    wrong = [(language, block.conflict(), block.text) for language in LANGUAGES
             for block in blocks_of(site, page, language) if block.conflict()]
    assert not wrong, f"blocks in the wrong generation's tab: {wrong}"


def block_names(block: CodeBlock) -> list[str]:
    if block.language == "postfix-main":
        return postfix_main_names(block.text)
    if block.language == "postfix-master":
        return postfix_master_names(block.text)
    if block.language == "console":
        return postconf_command_names(block.text)
    return []


@pytest.mark.parametrize("debian", DEBIANS)
@pytest.mark.parametrize("page", PAGES)
def test_postfix_parameters_exist(site, verdicts, page: str, debian: int) -> None:
    blocks = [(language, block) for language in LANGUAGES for block in blocks_of(site, page, language)
              if debian in block.checked_on and block_names(block)]
    if not blocks:
        return
    known = verdicts(debian).parameters
    unknown = sorted({(language, block.language, name) for language, block in blocks
                      for name in block_names(block) if name not in known})
    assert not unknown, f"not parameters of {verdicts(debian).servers.where} (postconf -d): {unknown}"


def test_base_configuration_is_clean(verdicts) -> None:
    """The configuration the Postfix blocks are put into is itself accepted silently, by every generation."""
    for debian in DEBIANS:
        base = verdicts(debian).base
        where = verdicts(debian).servers.where
        assert base.complaint == "", f"{where} on the base configuration:\n{base.complaint}"


def refusals(verdicts, site: Path, page: str, debian: int, kinds: set[str]) -> list[str]:
    found = []
    for language in LANGUAGES:
        for block in blocks_of(site, page, language):
            if block.language not in kinds or debian not in block.checked_on:
                continue
            answer = verdicts(debian).of(block)
            if answer is not None and answer.complaint:
                where = verdicts(debian).servers.where
                found.append(f"{language} ```{block.language}```:\n{block.text}\n"
                             f"{where} says:\n{answer.complaint}")
    return found


def has_blocks(site: Path, page: str, debian: int, kinds: set[str]) -> bool:
    return any(block.language in kinds and debian in block.checked_on
               for language in LANGUAGES for block in blocks_of(site, page, language))


@pytest.mark.parametrize("debian", DEBIANS)
@pytest.mark.parametrize("page", PAGES)
def test_postfix_accepts_the_blocks(site, verdicts, page: str, debian: int) -> None:
    kinds = {"postfix-main", "postfix-master", "console"}
    if not has_blocks(site, page, debian, kinds):
        return
    found = refusals(verdicts, site, page, debian, kinds)
    assert not found, "\n\n".join(found)


@pytest.mark.parametrize("debian", DEBIANS)
@pytest.mark.parametrize("page", PAGES)
def test_dovecot_accepts_the_blocks(site, verdicts, page: str, debian: int) -> None:
    kinds = {"dovecot", "dovecot24"}
    if not has_blocks(site, page, debian, kinds):
        return
    found = refusals(verdicts, site, page, debian, kinds)
    assert not found, "\n\n".join(found)


@pytest.mark.parametrize("page", PAGES)
def test_postconf_links_name_real_parameters(site, verdicts, page: str) -> None:
    """A link to postconf(5) names a parameter that some generation's Postfix knows."""
    known = verdicts(13).parameters | verdicts(12).parameters
    for language in LANGUAGES:
        html = built_page(site, language, page).read_text(encoding="utf-8")
        linked = set(re.findall(r"postconf\.5\.html#([A-Za-z0-9_]+)", html))
        assert linked <= known, f"{language}: links to unknown parameters {linked - known}"


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


def test_the_checks_have_something_to_check(site, verdicts) -> None:
    """Guard against a silent pass: the course does show Postfix and Dovecot configuration of both
    generations, and each generation's programs did judge blocks of each kind."""
    languages = {b.language for page in PAGES for b in blocks_of(site, page, "en")}
    assert {"postfix-main", "postfix-master", "dovecot", "dovecot24", "console"} <= languages
    for debian in DEBIANS:
        judged = verdicts(debian).answers
        kinds = [kind for kind, _ in judged]
        assert kinds.count("postfix") >= 5, f"Debian {debian}: few Postfix blocks judged: {judged}"
        assert kinds.count("dovecot") >= 3, f"Debian {debian}: few Dovecot blocks judged: {judged}"


# -- The checks themselves can fail ----------------------------------------------------------------

DEBIAN_13, DEBIAN_12 = ("Debian 13", frozenset({13})), ("Debian 12", frozenset({12}))
WRONG = {  # block -> what the real programs must find wrong with it
    CodeBlock("dovecot24", "ssl_server_prefer_ciphers = yes\n", *DEBIAN_13): "Invalid value",
    CodeBlock("dovecot24", "ssl_cert = </etc/ssl/certs/x.pem\n", *DEBIAN_13): "ssl_cert",
    CodeBlock("dovecot", "ssl_server_cert_file = /etc/ssl/certs/x.pem\n", *DEBIAN_12): "ssl_server_cert_file",
    CodeBlock("dovecot", "ssl_prefer_server_ciphers = maybe\n", *DEBIAN_12): "maybe",
    CodeBlock("postfix-main", "smtpd_tls_securty_level = may\n"): "unused parameter",
    CodeBlock("postfix-master", "submission inet n - y - - smtpd\n"
                                "  -o smtpd_client_restrictions=$mua_nothing\n"): "mua_nothing",
    CodeBlock("console", "# postconf -e 'smtpd_tls_auth_onyl = yes'\n"): "unused parameter",
}
RIGHT = [
    CodeBlock("dovecot24", "ssl_server_prefer_ciphers = server\n", *DEBIAN_13),
    CodeBlock("dovecot", "ssl_prefer_server_ciphers = yes\n", *DEBIAN_12),
    CodeBlock("postfix-main", "smtpd_tls_security_level = may\n"),
]


@pytest.mark.parametrize("debian", DEBIANS)
def test_the_checks_catch_wrong_blocks(tmp_path: Path, debian: int) -> None:
    """Wrong blocks, through the same path as the course's, are refused; right ones are accepted."""
    where = servers(generations.get(debian))
    wrong = [block for block in WRONG if debian in block.checked_on]
    right = [block for block in RIGHT if debian in block.checked_on]
    checked = check_blocks(where, wrong + right, tmp_path)
    for block in wrong:
        assert WRONG[block] in checked.of(block).complaint, \
            f"{where.where} did not refuse:\n{block.text}\nit said: {checked.of(block).complaint!r}"
    for block in right:
        assert checked.of(block).complaint == "", f"{where.where} refused:\n{block.text}\n{checked.of(block)}"


def test_a_tab_contradicting_the_fence_is_reported() -> None:
    assert CodeBlock("dovecot24", "x = 1\n", "Debian 12 (Dovecot 2.3)", frozenset({12})).conflict()
    assert CodeBlock("dovecot", "x = 1\n", "Debian 13 (Dovecot 2.4)", frozenset({13})).conflict()
    assert not CodeBlock("dovecot24", "x = 1\n", "Debian 13 (Dovecot 2.4)", frozenset({13})).conflict()
    assert CodeBlock("dovecot24", "x = 1\n").checked_on == {13}
    assert CodeBlock("postfix-main", "x = 1\n").checked_on == {12, 13}


TABBED_HTML = """<html><body><article>
<div class="highlight-postfix-main notranslate"><div class="highlight"><pre>a = 1</pre></div></div>
<div class="sd-tab-set docutils">
<input checked="checked" id="t0" name="s0" type="radio">
<label class="sd-tab-label" data-sync-id="debian13" for="t0">Debian 13 (Dovecot 2.4)</label>
<div class="sd-tab-content docutils">
<div class="highlight-dovecot24 notranslate"><div class="highlight"><pre>b = 2</pre></div></div>
</div>
<input id="t1" name="s0" type="radio">
<label class="sd-tab-label" data-sync-id="debian12" for="t1">Debian 12 (Dovecot 2.3)</label>
<div class="sd-tab-content docutils">
<div class="highlight-dovecot24 notranslate"><div class="highlight"><pre>c = 3</pre></div></div>
</div>
</div>
</article></body></html>"""


def test_code_blocks_take_their_generation_from_the_tab(tmp_path: Path) -> None:
    """sphinx-design's HTML: a block in a tab belongs to the release its label names, else to both."""
    page = tmp_path / "page.html"
    page.write_text(TABBED_HTML)
    outside, debian13, debian12 = code_blocks(page)
    assert (outside.tab, outside.generations) == (None, {12, 13})
    assert (debian13.tab, debian13.generations) == ("Debian 13 (Dovecot 2.4)", {13})
    assert debian13.conflict() is None
    assert (debian12.generations, debian12.checked_on) == ({12}, {13})
    assert "Debian 12 (Dovecot 2.3)" in debian12.conflict()


TABBED_MARKDOWN = """Intro.

```text
S: 220 both
```

::::{tab-set}
:::{tab-item} Debian 13 (Dovecot 2.4)
:sync: debian13

```text
S: * OK Dovecot ready.
```
:::
:::{tab-item} Debian 12 (Dovecot 2.3)
:sync: debian12

```text
S: * OK Dovecot (Debian) ready.
S: 220 both
```
:::
::::
"""


def test_quoted_lines_take_their_generation_from_the_tab(tmp_path: Path) -> None:
    """The Markdown sources: the transcripts' lines go to the generation of the tab that holds them."""
    page = tmp_path / "page.md"
    page.write_text(TABBED_MARKDOWN)
    blocks = text_blocks(page)
    assert [(b.tab, b.generations) for b in blocks] == [
        (None, {12, 13}), ("Debian 13 (Dovecot 2.4)", {13}), ("Debian 12 (Dovecot 2.3)", {12})]
    lines = quoted_lines(blocks, prefix="S: ")
    assert lines == {"220 both": {12, 13}, "* OK Dovecot ready.": {13}, "* OK Dovecot (Debian) ready.": {12}}
    # A Debian 13 lab that said only 2.4's greeting: the 2.3 greeting is not asked of it, and the
    # other way round; a line outside tabs is asked of both.
    assert unmatched(lines, 13, ["220 both", "* OK Dovecot ready."]) == []
    assert unmatched(lines, 12, ["220 both", "* OK Dovecot ready."]) == ["* OK Dovecot (Debian) ready."]
    assert unmatched(lines, 13, ["* OK Dovecot ready."]) == ["220 both"]
    exercised = Exercised()
    exercised.record("page", 12)
    assert exercised.missing({"page": lines}) == [("page", 13)]  # no Debian 13 lab checked it
    exercised.record("page", 13)
    assert exercised.missing({"page": lines}) == []
