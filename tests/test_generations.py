"""Two generations of Debian's servers: the files each one runs, and bad choices refused at once."""

from __future__ import annotations

import pytest

from helpers.cli import mailtls
from helpers.requirements import require_backend
from mailtls import generations
from mailtls.config import LabConfig
from mailtls.hosts import MAIL, RELAY, SHIPPED_LABS


def test_each_generation_has_its_own_dovecot_file_and_shares_the_rest() -> None:
    for generation in generations.GENERATIONS:
        dovecot = MAIL.config_file(SHIPPED_LABS, "dovecot.conf", generation)
        assert dovecot == SHIPPED_LABS / "hosts" / "mail" / generation.folder / "dovecot.conf"
        shared = MAIL.config_dir(SHIPPED_LABS) / "master.cf"
        assert MAIL.config_file(SHIPPED_LABS, "master.cf", generation) == shared
        relay = RELAY.config_dir(SHIPPED_LABS) / "main.cf"
        assert RELAY.config_file(SHIPPED_LABS, "main.cf", generation) == relay
    # Dovecot 2.4 reads nothing before dovecot_config_version; 2.3 does not know it.
    first = {g.debian: next(line for line in MAIL.config_file(SHIPPED_LABS, "dovecot.conf", g).read_text()
                            .splitlines() if line.strip() and not line.startswith("#"))
             for g in generations.GENERATIONS}
    assert first[13] == "dovecot_config_version = 2.4.0"
    assert "dovecot_config_version" not in MAIL.config_file(SHIPPED_LABS, "dovecot.conf",
                                                            generations.BOOKWORM).read_text()


def test_a_generation_is_known_by_its_release_or_its_dovecot() -> None:
    assert generations.get("13") is generations.TRIXIE and generations.get(12) is generations.BOOKWORM
    assert generations.DEFAULT is generations.TRIXIE
    assert generations.of_dovecot_version("2.4.1-4 (7d8c0e5759)") is generations.TRIXIE
    assert generations.of_dovecot_version("2.3.19.1 (9b53102964)") is generations.BOOKWORM
    with pytest.raises(generations.UnknownGeneration, match="no Debian 14: it runs Debian 13"):
        generations.get(14)
    with pytest.raises(generations.UnknownGeneration, match="Dovecot 2.2.36"):
        generations.of_dovecot_version("2.2.36 (1f10bfa63)")


def test_an_unknown_generation_is_one_line_and_starts_nothing() -> None:
    done = mailtls("lab", "up", "--debian", "14")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1].endswith(
        "argument --debian: the lab has no Debian 14: it runs Debian 13 (Postfix 3.10, Dovecot 2.4) and "
        "Debian 12 (Postfix 3.7, Dovecot 2.3)"), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.lab
def test_the_native_backend_runs_only_this_machines_generation() -> None:
    from mailtls.backends.native import namespaces
    from mailtls.hostfiles import installed_generation

    require_backend("native")
    assert not LabConfig().runtime.exists(), "a lab is up: `python -m mailtls lab down` first"
    own = installed_generation()
    other = next(g for g in generations.GENERATIONS if g != own)
    done = mailtls("lab", "up", "--backend", "native", "--debian", str(other.debian))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == (
        f"error: the native backend runs this machine's own servers, {own.label}, "
        f"not Debian {other.debian}'s: run Debian {other.debian} in containers "
        f"(`python -m mailtls lab up --backend containers --debian {other.debian}`)\n")
    assert not LabConfig().runtime.exists(), "nothing may be left half-started"
    assert not [n for n in namespaces() if n.startswith(LabConfig().namespace_prefix)]
