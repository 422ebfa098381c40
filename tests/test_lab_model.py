"""The lab's configuration and description as data: what every backend and reader relies on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mailtls.config import LabConfig
from mailtls.errors import LabError
from mailtls.hosts import MAIL, SHIPPED_LABS
from mailtls.polling import WaitTimeout, wait_until
from mailtls.status import LabState, LabStatus


def test_a_students_lab_follows_from_their_number() -> None:
    single, student = LabConfig(), LabConfig(student=7)
    assert (single.runtime, single.address(MAIL), single.gateway) == (
        Path("/run/mailtls"), "198.18.0.10", "198.18.0.1")
    assert (student.runtime, student.address(MAIL), student.gateway) == (
        Path("/run/mailtls-classroom/student-7"), "198.18.7.10", "198.18.7.1")
    assert (single.bridge, single.namespace(MAIL), single.compose_project) == (
        "mtls0", "mtls-mail", "mailtls")
    assert (student.bridge, student.namespace(MAIL), student.compose_project) == (
        "mtls7-br", "mtls7-mail", "mailtls-student-7")
    assert all(len(LabConfig(student=50).namespace(h)) <= 15 for h in (MAIL,)), "Linux's limit for link names"
    assert student.for_this_lab("smtpd_tls_chain_files = /run/mailtls/mail.lab.test.pem") == \
        "smtpd_tls_chain_files = /run/mailtls-classroom/student-7/mail.lab.test.pem"


def test_the_environment_names_a_lab_and_a_bad_number_is_one_clear_error(tmp_path: Path) -> None:
    assert LabConfig.from_environment({}) == LabConfig(student=None, labs=SHIPPED_LABS)
    named = LabConfig.from_environment({"MAILTLS_STUDENT": "3", "MAILTLS_LABS": str(tmp_path)})
    assert named == LabConfig(student=3, labs=tmp_path)
    assert LabConfig.from_environment(named.environment()) == named
    with pytest.raises(LabError, match="MAILTLS_STUDENT must be a number from 1 to 50, not 'seven'"):
        LabConfig.from_environment({"MAILTLS_STUDENT": "seven"})
    with pytest.raises(LabError, match="students are numbered 1 to 50, not 51"):
        LabConfig(student=51)


def test_the_description_reads_back_as_written(tmp_path: Path) -> None:
    from mailtls.lab import connect

    simulated = connect(backend="sim")  # its status.json is written as every backend writes it
    written = json.loads((Path(simulated.ca_file).parent / "status.json").read_text())
    status = LabStatus.from_json(written)
    assert status.to_json() == written
    assert [e.port for e in status.services if e.host == "mail.lab.test"] == [25, 587, 465, 143, 993]
    status.write(tmp_path)
    read = LabStatus.read(tmp_path)
    assert read is not None and (read.services, read.users) == (status.services, status.users)
    assert (status.wiretap.mode, read.wiretap.mode) == (None, "pass"), "the mode is read from its file"
    assert LabStatus.read(tmp_path / "nothing") is None
    LabState("containers", "/srv/labs", "podman").write(tmp_path)
    assert LabState.read(tmp_path) == LabState("containers", "/srv/labs", "podman")


def test_waiting_gives_the_answer_or_says_what_it_waited_for() -> None:
    answers = iter([None, 0, "ready"])
    assert wait_until(lambda: next(answers), timeout=5, what="an answer", interval=0.01) == "ready"
    began = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"the port to open: not after 0.2 s"):
        wait_until(lambda: False, timeout=0.2, what="the port to open", interval=0.05)
    assert 0.2 <= time.monotonic() - began < 1.0
