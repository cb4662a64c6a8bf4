"""The guardian's parts on their own: the per-pipeline lock on this machine (waited for, bounded, and
refused in a directory that is not private), and the guardian process refusing a bad start message
without echoing it."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from enos_pulumi import guardian
from enos_pulumi.enos.client import EnosClient, RequestEvent
from enos_pulumi.enos.errors import EnosError
from enos_pulumi.enos.model import StageTarget
from enos_pulumi.enos.settings import Settings
from enos_pulumi.guardian import NO_GUARD, Guardians

TARGET = StageTarget("o1", "pl-1", "FixedTimeWindowAggregator_1")


def client(events: list[RequestEvent]) -> EnosClient:
    settings = Settings(api_gateway="https://gw.example.test", access_key="ak", secret_key="sk")
    return EnosClient(dataclasses.replace(settings, operation_timeout=0.1), on_event=events.append)


def test_a_pipeline_locked_by_another_reset_on_this_machine_is_waited_for_then_refused(
    tmp_path: Path,
) -> None:
    events: list[RequestEvent] = []
    guardians = Guardians(tmp_path / "locks", lock_slack=0.3)
    first = guardians.lock(client(events), TARGET)  # held, as a guardian of an earlier run holds it
    assert first.fd is not None
    with pytest.raises(EnosError, match="another reset of it on this machine") as info:
        guardians.lock(client(events), TARGET)
    assert "Nothing was paused or deleted" in str(info.value)
    assert [e.outcome for e in events] == ["waiting"]
    first.release()
    second = guardians.lock(client(events), TARGET)  # free again
    assert second.fd is not None
    other = os.open(next((tmp_path / "locks").glob("*.lock")), os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # and really held
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)
    second.release()


def test_an_earlier_guardians_report_is_shown_once(tmp_path: Path) -> None:
    events: list[RequestEvent] = []
    guardians = Guardians(tmp_path / "locks")
    guardians.lock(client(events), TARGET).release()
    (report,) = [p.with_suffix(".report") for p in (tmp_path / "locks").glob("*.lock")]
    report.write_text("t1 guardian: the pipeline was PAUSED: started it again\nt2 guardian: RUNNING again\n")
    guardians.lock(client(events), TARGET).release()
    guardians.lock(client(events), TARGET).release()
    (warning,) = [e.describe() for e in events if e.outcome == "warning"]
    assert warning.startswith("enos: WARNING (pipeline pl-1): an earlier reset of it was interrupted")
    assert (
        "\n    t1 guardian: the pipeline was PAUSED: started it again\n    t2 guardian: RUNNING again"
        in warning
    )


def test_no_lock_and_no_guardian_in_a_directory_others_may_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    events: list[RequestEvent] = []
    lock = Guardians(shared).lock(client(events), TARGET)
    assert lock.fd is None
    (warning,) = [e.detail for e in events if e.outcome == "warning"]
    assert "no guardian for this reset" in warning and "it stays PAUSED" in warning


def test_the_guardian_refuses_a_bad_start_message_without_echoing_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "enos_pulumi.guardian_main"],
        input=b'{"settings": {"secret_key": "s3cr3t-value", "nonsense": 1}}\n',
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"no usable start message" in done.stderr and b"s3cr3t" not in done.stderr


def test_a_guardian_that_does_not_start_is_not_counted_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An interpreter that cannot run the guardian (a frozen binary, say): the reset is warned, unguarded.
    events: list[RequestEvent] = []
    guardians = Guardians(tmp_path / "locks")
    lock = guardians.lock(client(events), TARGET)
    monkeypatch.setattr(guardian.sys, "executable", shutil.which("false") or "/bin/false")
    guard = guardians.spawn(client(events), TARGET, {}, lock, "pausing")
    lock.release()
    assert guard is NO_GUARD
    (warning,) = [e.detail for e in events if e.outcome == "warning"]
    assert "the guardian process did not start" in warning and "it stays PAUSED" in warning


def test_a_guardian_that_started_says_so_and_exits_when_done(tmp_path: Path) -> None:
    events: list[RequestEvent] = []
    guardians = Guardians(tmp_path / "locks")
    lock = guardians.lock(client(events), TARGET)
    guard = guardians.spawn(client(events), TARGET, {}, lock, "pausing")
    lock.release()
    pid = guard.pid
    assert pid is not None
    (started,) = [e.describe() for e in events if e.outcome == "started"]
    assert f"| started | pid {pid}: starts the pipeline again if this process ends" in started
    guard.done()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped): the pipeline's lock is free again
    guardians.lock(client(events), TARGET).release()
