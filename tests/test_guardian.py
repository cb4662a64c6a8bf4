"""The guardian's parts on their own: the per-pipeline lock on this machine (waited for, bounded, kept in
a directory private to this user, never in one another user could make or enter), and the guardian
process refusing a bad start message without echoing it, never left behind by a failed start."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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
    assert f"{shared} lets other users in (mode 777): chmod 700 {shared}" in warning


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """This test's temp dir, shared like /tmp (sticky, anyone may create in it), and its home directory."""
    shared, home = tmp_path / "tmp", tmp_path / "home"
    shared.mkdir()
    shared.chmod(0o1777)
    home.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setenv("HOME", str(home))
    return shared / f"enos-pulumi-{os.getuid()}", home / ".cache" / "enos-pulumi"


def locked_in(events: list[RequestEvent]) -> Path:
    """Where a reset with the default directories takes its lock (it must get one, unwarned)."""
    guardians = Guardians(lock_slack=0.3)
    lock = guardians.lock(client(events), TARGET)
    assert lock.fd is not None and lock.report is not None, [e.describe() for e in events]
    assert [e for e in events if e.outcome == "warning"] == []
    where = Path(os.readlink(f"/proc/self/fd/{lock.fd}")).parent
    # Another reset of this user picks the same directory: it waits for this one, then gives up.
    with pytest.raises(EnosError, match="another reset of it on this machine"):
        guardians.lock(client(events), TARGET)
    lock.release()
    return where


def test_the_lock_lives_in_a_private_directory_in_the_temp_dir(machine: tuple[Path, Path]) -> None:
    in_tmp, _ = machine
    assert locked_in([]) == in_tmp
    assert in_tmp.stat().st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a directory another user owns (needs root)")
def test_a_temp_dir_name_another_user_took_first_falls_back_to_the_home_directory(
    machine: tuple[Path, Path],
) -> None:
    # Anyone may create enos-pulumi-<our uid> in a sticky /tmp first, and we cannot remove it.
    in_tmp, in_home = machine
    in_tmp.mkdir(mode=0o700)
    os.chown(in_tmp, 65534, 65534)
    assert locked_in([]) == in_home
    assert in_home.stat().st_mode & 0o777 == 0o700 and in_home.stat().st_uid == os.getuid()


@pytest.mark.parametrize("squat", ["mode 755", "mode 777", "symlink", "file"])
def test_a_temp_dir_entry_that_is_not_private_falls_back_to_the_home_directory(
    machine: tuple[Path, Path], tmp_path: Path, squat: str
) -> None:
    in_tmp, in_home = machine
    if squat == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        in_tmp.symlink_to(tmp_path / "elsewhere")
    elif squat == "file":
        in_tmp.write_text("")
    else:
        in_tmp.mkdir()
        in_tmp.chmod(int(squat[-3:], 8))
    assert locked_in([]) == in_home
    assert list((tmp_path / "elsewhere").glob("*")) == []  # nothing followed the symlink


def test_when_no_directory_is_private_the_warning_names_each_and_the_remedy(
    machine: tuple[Path, Path],
) -> None:
    in_tmp, in_home = machine
    for path in (in_tmp, in_home):
        path.mkdir(parents=True)
        path.chmod(0o755)
    events: list[RequestEvent] = []
    assert Guardians().lock(client(events), TARGET).fd is None
    (warning,) = [e.detail for e in events if e.outcome == "warning"]
    assert "no guardian for this reset" in warning and "it stays PAUSED" in warning
    assert f"chmod 700 {in_tmp}" in warning and f"chmod 700 {in_home}" in warning
    assert "or set TMPDIR to a directory only you can write" in warning


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


def started_processes(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    started: list[subprocess.Popen[bytes]] = []
    start = guardian._start

    def recorded(*args: Any) -> subprocess.Popen[bytes]:
        started.append(start(*args))
        return started[-1]

    monkeypatch.setattr(guardian, "_start", recorded)
    return started


@pytest.mark.parametrize(
    ("what", "failure"),
    [("a start message that is not JSON", TypeError), ("an interrupt while it starts", KeyboardInterrupt)],
)
def test_a_failed_guardian_start_leaves_no_guardian_behind_holding_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str, failure: type[BaseException]
) -> None:
    # Left running, it would hold the pipeline's lock for its start message timeout, then report an
    # "interrupted" reset to the next one.
    started = started_processes(monkeypatch)
    resume: dict[str, Any] = {"execution_mode": "cluster", "kafka_rate": 1, "resource_config": None}
    if failure is TypeError:
        resume["resource_config"] = {"jar": object()}
    else:

        def interrupted(*args: Any) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(guardian.select, "select", interrupted)
    events: list[RequestEvent] = []
    guardians = Guardians(tmp_path / "locks", lock_slack=0.3)
    lock = guardians.lock(client(events), TARGET)
    with pytest.raises(failure):
        guardians.spawn(client(events), TARGET, resume, lock, "watching")
    lock.release()
    assert all(process.poll() is not None for process in started), what
    guardians.lock(client(events), TARGET).release()  # free at once
    assert [e.outcome for e in events] == [], what
