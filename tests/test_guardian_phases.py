"""What a pausing reset tells its guardian, moment by moment, and what a real guardian process does when
the reset's side of its pipe goes at that moment: it starts the pipeline again only while the pipeline
may be paused by this reset, never after someone else's pause. And an unexpected error (no EnOS answer
says how the pipeline is left) hands the pipeline to the guardian instead of dropping it."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enos_pulumi import pause_steps
from enos_pulumi.enos.client import EnosClient
from enos_pulumi.enos.errors import EnosError
from enos_pulumi.enos.model import StageTarget
from enos_pulumi.enos.settings import resolve_settings
from enos_pulumi.guardian import Guard, Guardians, PipelineLock
from enos_pulumi.pausing import PauseCoordinator
from enos_pulumi.simulator import Simulator
from tests.support.fixtures_simulator import (
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_RUNNING_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
    make_simulator,
)

TARGET = StageTarget(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE)
RESUME = pause_steps.Resume("cluster", 700)


class HostKilled(BaseException):
    """Stands for the host's death at this point: nothing after it runs on the host's side."""


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = make_simulator(pause_seconds=0.0, start_seconds=0.0)
    try:
        yield simulator
    finally:
        simulator.stop()


def client(sim: Simulator) -> EnosClient:
    settings = resolve_settings(
        {"api_gateway": sim.base_url, "access_key": SIM_ACCESS_KEY, "secret_key": SIM_SECRET_KEY}
    )
    return EnosClient(dataclasses.replace(settings, operation_timeout=10.0, retry_deadline=5.0))


class Watched(Guardians):
    """Real guardians, each one's process kept so that a test can end the host's side of its pipe."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.guards: list[Guard] = []

    def spawn(
        self, client: EnosClient, target: StageTarget, resume: dict[str, Any], lock: PipelineLock, phase: str
    ) -> Guard:
        guard = super().spawn(client, target, resume, lock, phase)
        assert guard._process is not None, "no guardian was started"
        self.processes.append(guard._process)
        self.guards.append(guard)
        return guard

    def host_dies(self) -> None:
        """What a guardian sees when its host is killed: its pipe closes, with no more lines."""
        (guard,), (process,) = self.guards, self.processes
        with guard._lock:
            assert process.stdin is not None
            process.stdin.close()

    def outcome(self, directory: Path) -> str:
        """The guardian's report, once it has exited."""
        (process,) = self.processes
        process.wait(60)
        return "".join(report.read_text() for report in directory.glob("*.report"))


def actions(sim: Simulator) -> list[str]:
    return [t["action"] for t in sim.transitions if t["pipeline_id"] == SIM_RUNNING_PIPELINE]


def status(sim: Simulator) -> str:
    return sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE)


def test_a_pause_refused_because_someone_else_paused_it_is_never_undone_by_the_guardian(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone pauses the pipeline just before our pause arrives: EnOS refuses ours (61152). The host is
    # killed while it reads the status to word that error; the pause the guardian would find is not ours.
    guardians = Watched(tmp_path)
    handle, seen = sim._handle, []

    def someone_else_pauses_then_the_host_dies(call: Any) -> Any:
        if call.op == "pause":
            sim.set_pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "PAUSED")
        elif call.op == "list" and "pause" in seen:
            guardians.host_dies()
        seen.append(call.op)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", someone_else_pauses_then_the_host_dies)
    with pytest.raises(EnosError, match="this reset's pause did not take effect"):
        pause_steps.pause(client(sim), TARGET, RESUME, guardians)
    report = guardians.outcome(tmp_path)
    assert actions(sim) == [] and status(sim) == "PAUSED", report
    assert "started it again" not in report


def test_a_host_killed_before_its_pause_went_out_leaves_the_pipeline_as_it_is(
    sim: Simulator, tmp_path: Path
) -> None:
    # Killed between starting its guardian and sending its pause; someone else pauses the pipeline then.
    class KilledOnceGuarded(Watched):
        def spawn(self, *args: Any, **kwargs: Any) -> Guard:
            super().spawn(*args, **kwargs)
            sim.set_pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "PAUSED")
            self.host_dies()
            raise HostKilled

    guardians = KilledOnceGuarded(tmp_path)
    with pytest.raises(HostKilled):
        pause_steps.pause(client(sim), TARGET, RESUME, guardians)
    report = guardians.outcome(tmp_path)
    assert actions(sim) == [] and status(sim) == "PAUSED", report
    assert "before it paused the pipeline: nothing to do" in report


def test_an_unexpected_error_once_the_pause_went_out_hands_the_pipeline_to_the_guardian(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not an EnOS answer (a bug, say) after the pause was sent: whether it paused is unknown to the reset,
    # which raises. Its guardian, handed the pipeline, waits for the pause and starts the pipeline again.
    guardians = Watched(tmp_path)
    c = client(sim)
    monkeypatch.setattr(c, "wait_for_status", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("bug")))
    with pytest.raises(RuntimeError, match="bug"):
        pause_steps.pause(c, TARGET, RESUME, guardians)
    report = guardians.outcome(tmp_path)
    assert actions(sim) == ["pause", "start"] and status(sim) == "RUNNING", report
    assert "the reset stopped unexpectedly while it was pausing the pipeline" in report
    assert "started it again" in report


def test_an_unexpected_error_while_starting_again_hands_the_pipeline_to_the_guardian(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guardians = Watched(tmp_path)
    c = client(sim)

    def start_pipeline(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("bug before the start went out")

    monkeypatch.setattr(c, "start_pipeline", start_pipeline)
    deleted: list[str] = []
    with pytest.raises(RuntimeError, match="bug before the start"):
        PauseCoordinator(guardians).run(c, TARGET, RESUME, lambda: deleted.append("reset"), lambda: None)
    report = guardians.outcome(tmp_path)
    assert deleted == ["reset"]
    assert actions(sim) == ["pause", "start"] and status(sim) == "RUNNING", report
    assert "while it was starting the pipeline again" in report


# -- the phases a reset announces, against what it knows at that moment ----------------------------------


class Recorder(Guard):
    """A guard without a process: each phase with the simulator's status and operations at that moment."""

    def __init__(self, sim: Simulator, hello: str) -> None:
        super().__init__()
        self.sim = sim
        self.log: list[tuple[str, str, list[str]]] = []
        self.phase(hello)

    def phase(self, name: str) -> None:
        ops = [e["operation"] for e in self.sim.requests if e["operation"] != "token"]
        self.log.append((name, status(self.sim), ops))

    def done(self) -> None:
        self.phase("done")

    def hand_over(self) -> None:
        self.phase("handed over")


class Recording(Guardians):
    def __init__(self, sim: Simulator, directory: Path) -> None:
        super().__init__(directory)
        self.sim = sim
        self.recorders: list[Recorder] = []

    def spawn(self, *args: Any, **kwargs: Any) -> Guard:
        phase = args[-1] if len(args) == 5 else kwargs["phase"]
        self.recorders.append(Recorder(self.sim, phase))
        return self.recorders[-1]


def test_each_phase_claims_only_what_the_reset_knows_at_that_moment(sim: Simulator, tmp_path: Path) -> None:
    guardians = Recording(sim, tmp_path)
    PauseCoordinator(guardians).run(client(sim), TARGET, RESUME, lambda: None, lambda: None)
    (recorder,) = guardians.recorders
    assert [(name, now) for name, now, _ in recorder.log] == [
        ("watching", "RUNNING"),  # nothing of ours to undo: no pause sent yet
        ("pausing", "RUNNING"),
        ("paused", "PAUSED"),
        ("starting", "PAUSED"),
        ("done", "RUNNING"),
    ]
    ops = {name: seen for name, _, seen in recorder.log}
    assert "pause" not in ops["pausing"]  # announced before the request went out
    assert "start" not in ops["starting"]


def test_a_refused_pause_is_done_before_anything_else_is_asked(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guardians = Recording(sim, tmp_path)
    handle = sim._handle

    def someone_else_pauses_first(call: Any) -> Any:
        if call.op == "pause":
            sim.set_pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "PAUSED")
        return handle(call)

    monkeypatch.setattr(sim, "_handle", someone_else_pauses_first)
    with pytest.raises(EnosError):
        pause_steps.pause(client(sim), TARGET, RESUME, guardians)
    (recorder,) = guardians.recorders
    names = [name for name, _, _ in recorder.log]
    assert names[:3] == ["watching", "pausing", "done"]
    ops_when_done = recorder.log[2][2]
    assert ops_when_done[-1] == "pause"  # the refused pause was the last request: no status read yet


# -- SIGTERM to the guardian -----------------------------------------------------------------------------


def paused_under_guard(sim: Simulator, tmp_path: Path) -> tuple[Watched, Guard]:
    guardians = Watched(tmp_path)
    paused_by_us, guard = pause_steps.pause(client(sim), TARGET, RESUME, guardians)
    assert paused_by_us and status(sim) == "PAUSED"
    return guardians, guard


def test_sigterm_while_the_host_still_runs_the_reset_is_recorded_and_starts_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    # The reset may be deleting: the pipeline must not be started from under it. The host starts it.
    guardians, guard = paused_under_guard(sim, tmp_path)
    (process,) = guardians.processes
    os.kill(process.pid, signal.SIGTERM)
    report = guardians.outcome(tmp_path)
    assert "got SIGTERM" in report
    assert "its host still runs the reset (last phase: paused), which goes on unguarded" in report
    assert actions(sim) == ["pause"] and status(sim) == "PAUSED"
    guard.done()  # the host's side does not mind a guardian that went


def test_sigterm_with_the_host_going_too_restores_the_pipeline_first(sim: Simulator, tmp_path: Path) -> None:
    # A whole process tree stopped with SIGTERM (systemd stopping a unit, say): the host dies of it, the
    # guardian does its job before exiting.
    guardians, _ = paused_under_guard(sim, tmp_path)
    (process,) = guardians.processes
    os.kill(process.pid, signal.SIGTERM)
    guardians.host_dies()
    report = guardians.outcome(tmp_path)
    assert "got SIGTERM" in report and "started it again" in report, report
    assert actions(sim) == ["pause", "start"] and status(sim) == "RUNNING"


def test_sigterm_while_restoring_lets_the_restore_finish(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guardians, _ = paused_under_guard(sim, tmp_path)
    (process,) = guardians.processes
    handle = sim._handle

    def terminated_as_its_start_arrives(call: Any) -> Any:
        if call.op == "start":
            os.kill(process.pid, signal.SIGTERM)  # the guardian waits for this answer, then for RUNNING
        return handle(call)

    monkeypatch.setattr(sim, "_handle", terminated_as_its_start_arrives)
    guardians.host_dies()
    report = guardians.outcome(tmp_path)
    assert "got SIGTERM while restoring the pipeline: it finishes that first" in report
    assert "the pipeline is RUNNING again" in report
    assert status(sim) == "RUNNING"
