"""A reset that paused a RUNNING pipeline, interrupted: the real provider host killed mid-reset (SIGTERM to
the host, SIGKILL to its process group as the Pulumi CLI does, SIGINT), its guardian starting the
pipeline again, and the next ``pulumi up`` (a new host re-running the pending create) behaving and
saying so. And when nothing could restore it (the guardian killed too, as with a whole container), the
next ``up`` warns, and ``resume_policy='always'`` starts the pipeline."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import Engine, Interrupted
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_SECRET_KEY, make_simulator
from tests.support.host_fixtures import HostedProvider, HostFactory

pytest_plugins = ["tests.support.host_fixtures"]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes in /proc"),
]

PAUSE = {"pause_pipeline": True, "resume_execution_mode": "cluster", "resume_kafka_rate": 700}
STAGE = "FixedTimeWindowAggregator_1"
# The guardian's own bounds come from these: a short operation timeout keeps a failing test short.
SETTINGS = {"enos:operationTimeoutSeconds": "20", "enos:retryDeadlineSeconds": "5"}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = make_simulator(pause_seconds=0.5, start_seconds=0.3)
    simulator.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, STAGE, ["a1", "a2"], ["p1", "p2"])
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def start_host(host_factory: HostFactory, sim: Simulator, tmp_path: Path) -> Callable[..., HostedProvider]:
    # Each host keeps its locks and guardian reports in this test's own temp dir.
    def start(**options: Any) -> HostedProvider:
        env = {"TMPDIR": str(tmp_path), **options.pop("env", {})}
        return host_factory(sim, settings={**SETTINGS, **options.pop("settings", {})}, env=env, **options)

    return start


def actions(sim: Simulator) -> list[str]:
    return [t["action"] for t in sim.transitions if t["pipeline_id"] == SIM_RUNNING_PIPELINE]


def guardian_pid(h: HostedProvider) -> int:
    found = re.findall(r"enos: Guard pipeline pl-running \| started \| pid (\d+)", h.host.stderr)
    assert found, h.host.stderr
    return int(found[-1])


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    """Real time: the guardian is another process, on real clocks."""
    until = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < until, f"gave up waiting for {what}"
        time.sleep(0.05)


def hold(sim: Simulator, monkeypatch: pytest.MonkeyPatch, op: str) -> tuple[threading.Event, threading.Event]:
    """The reset's first ``op`` request is held in the simulator; ``interrupt`` is set when it arrives,
    and it is served once ``release`` is set."""
    interrupt, release = threading.Event(), threading.Event()
    handle = sim._handle

    def held(call: Any) -> Any:
        if call.op == op and not interrupt.is_set():
            interrupt.set()
            release.wait(30)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", held)
    return interrupt, release


def inputs(h: HostedProvider, **overrides: Any) -> dict[str, Any]:
    return h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, stage_instance_name=STAGE, **{**PAUSE, **overrides})


def next_up(
    h: HostedProvider, start_host: Callable[..., HostedProvider], **overrides: Any
) -> tuple[Any, str]:
    """The next ``pulumi up``: a new host, the same stack state with its pending create."""
    new = start_host()
    engine = Engine(
        new.host, project=h.engine.project, state=h.engine.state, pending_creates=h.engine.pending_creates
    )
    step = engine.up("guarded", inputs(new, **overrides))
    return step, new.host.stderr


@pytest.mark.parametrize(
    ("how", "kill"),
    [
        ("SIGTERM to the host alone", signal.SIGTERM),
        ("SIGKILL to the host's process group, as the CLI ends its plugins", None),
    ],
)
def test_a_host_killed_while_the_pipeline_is_paused_leaves_it_running(
    sim: Simulator,
    start_host: Callable[..., HostedProvider],
    monkeypatch: pytest.MonkeyPatch,
    how: str,
    kill: int | None,
) -> None:
    h = start_host()
    interrupt, release = hold(sim, monkeypatch, "delete")  # killed while the reset's delete is in flight
    with pytest.raises(Interrupted):
        h.engine.up("guarded", inputs(h), interrupt=interrupt, interrupt_signal=kill)
    assert h.host.process is not None and h.host.process.poll() is not None  # the host is gone
    pid = guardian_pid(h)
    release.set()
    wait_for(lambda: gone(pid), "the guardian to finish")
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING", how
    assert actions(sim) == ["pause", "start"]
    (start,) = [e for e in sim.requests if e["operation"] == "start"]
    assert start["operate_body"] == {"executionMode": 1, "kafkaRate": 700}  # the resource's resume inputs

    # The next `pulumi up` re-runs the pending create: pause, reset, start, and says what happened.
    sim.clear_log()
    step, stderr = next_up(h, start_host)
    assert step.op == "create" and "1 pending operations" in step.warnings[0]
    assert step.outputs is not None and step.outputs["paused_by_reset"] is True
    assert "enos: WARNING (pipeline pl-running): an earlier reset of it was interrupted" in stderr
    assert "the process that ran the reset ended while the pipeline was paused for the reset" in stderr
    assert "the pipeline is RUNNING again" in stderr
    assert "was already PAUSED" not in stderr
    assert actions(sim) == ["pause", "start"]
    assert sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, STAGE) == set()
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_host_killed_while_its_pause_goes_out_is_undone_once_the_pause_lands(
    sim: Simulator, start_host: Callable[..., HostedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGKILL while the pause request is on its way: EnOS carries it out after the host is gone. The
    # guardian waits for it to take effect, then starts the pipeline.
    h = start_host()
    interrupt, release = hold(sim, monkeypatch, "pause")
    with pytest.raises(Interrupted):
        h.engine.up("guarded", inputs(h), interrupt=interrupt)
    pid = guardian_pid(h)
    release.set()
    wait_for(lambda: gone(pid), "the guardian to finish")
    assert actions(sim) == ["pause", "start"]
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    assert [e for e in sim.requests if e["operation"] == "delete"] == []


def test_a_host_killed_while_its_start_is_under_way_is_not_started_twice(
    sim: Simulator, start_host: Callable[..., HostedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    # EnOS accepted the host's start, which takes 2 s; the host dies meanwhile. The guardian's own start
    # is refused as another start in progress (61121): it waits for that one instead of a second start.
    sim.start_seconds = 2.0
    h = start_host()
    interrupt = threading.Event()
    handle = sim._handle

    def kill_once_started(call: Any) -> Any:
        reply = handle(call)
        if call.op == "start" and reply.code == 0:
            interrupt.set()
        return reply

    monkeypatch.setattr(sim, "_handle", kill_once_started)
    with pytest.raises(Interrupted):
        h.engine.up("guarded", inputs(h), interrupt=interrupt)
    wait_for(lambda: gone(guardian_pid(h)), "the guardian to finish")
    starts = [(e["code"], e["pipeline_status"]) for e in sim.requests if e["operation"] == "start"]
    assert starts[0] == (0, "PAUSED") and 61121 in {code for code, _ in starts[1:]}
    assert actions(sim) == ["pause", "start"]  # one start took effect
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_sigint_lets_the_host_finish_the_reset(
    sim: Simulator, start_host: Callable[..., HostedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGINT ends the host's wait for calls, and Python lets the call in flight finish before exiting:
    # the reset deletes, starts the pipeline and tells its guardian it is done.
    h = start_host()
    interrupt, release = hold(sim, monkeypatch, "delete")
    threading.Timer(0.5, release.set).start()  # the host is interrupted first, then the delete answers
    with pytest.raises(Interrupted):
        h.engine.up("guarded", inputs(h), interrupt=interrupt, interrupt_signal=signal.SIGINT)
    pid = guardian_pid(h)
    wait_for(lambda: gone(pid), "the guardian to finish")
    assert actions(sim) == ["pause", "start"]
    assert sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, STAGE) == set()
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    assert (Path(h.host.env["TMPDIR"]) / f"enos-pulumi-{os.getuid()}").exists()
    reports = list((Path(h.host.env["TMPDIR"]) / f"enos-pulumi-{os.getuid()}").glob("*.report"))
    assert [r.read_text() for r in reports] == [""]  # the guardian had nothing to do


@pytest.mark.parametrize("policy", [None, "always"])
def test_a_pipeline_left_paused_is_warned_about_and_started_with_resume_policy_always(
    sim: Simulator,
    start_host: Callable[..., HostedProvider],
    monkeypatch: pytest.MonkeyPatch,
    policy: str | None,
) -> None:
    # The whole container goes: the guardian and the host are killed together (the guardian first, so
    # that it cannot act), and nothing restores the pipeline. The next `pulumi up` finds it PAUSED and
    # says so prominently.
    h = start_host()
    interrupt, release = threading.Event(), threading.Event()
    handle = sim._handle

    def kill_both_during_the_delete(call: Any) -> Any:
        if call.op == "delete" and not interrupt.is_set():
            os.kill(guardian_pid(h), signal.SIGKILL)
            interrupt.set()
            release.wait(30)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", kill_both_during_the_delete)
    with pytest.raises(Interrupted):
        h.engine.up("guarded", inputs(h), interrupt=interrupt)
    release.set()
    wait_for(lambda: gone(guardian_pid(h)), "the guardian to die")
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "PAUSED"

    step, stderr = next_up(h, start_host, resume_policy=policy)
    assert step.op == "create"
    assert (
        "enos: WARNING (pipeline pl-running): pipeline pl-running (org o-test) was already PAUSED" in stderr
    )
    assert step.outputs is not None and step.outputs["paused_by_reset"] is False
    assert sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, STAGE) == set()
    if policy is None:
        assert "set resume_policy='always' on this resource to have the reset start it" in stderr
        assert "start it in the EnOS console (or Operate Pipeline action=start)" in stderr
        assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "PAUSED"
        assert actions(sim) == ["pause"]
    else:
        assert "resume_policy is 'always', so the reset starts it afterwards" in stderr
        assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
        assert actions(sim) == ["pause", "start"]


def test_the_guardian_gets_no_secret_in_argv_environment_or_report(
    sim: Simulator, start_host: Callable[..., HostedProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credentials from the environment, as in CI: the guardian's environment must not carry them on.
    other_secret = "pul-0123456789abcdef"  # the CLI's own credentials reach the host too
    h = start_host(
        secret_key=None, env={"ENOS_SECRET_KEY": SIM_SECRET_KEY, "PULUMI_ACCESS_TOKEN": other_secret}
    )
    interrupt, release = threading.Event(), threading.Event()
    handle = sim._handle
    seen: dict[str, bytes] = {}

    def look_then_kill(call: Any) -> Any:
        if call.op == "delete" and not interrupt.is_set():
            pid = guardian_pid(h)  # alive: its host is waiting for this delete
            seen.update({name: Path(f"/proc/{pid}/{name}").read_bytes() for name in ("cmdline", "environ")})
            interrupt.set()
            release.wait(30)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", look_then_kill)
    with pytest.raises(Interrupted):
        h.engine.up("guarded", inputs(h), interrupt=interrupt, interrupt_signal=signal.SIGTERM)
    pid = guardian_pid(h)
    assert b"enos_pulumi.guardian_main" in seen["cmdline"] and b"PATH=" in seen["environ"]
    for name, content in seen.items():
        assert SIM_SECRET_KEY.encode() not in content and other_secret.encode() not in content, name
    release.set()
    wait_for(lambda: gone(pid), "the guardian to finish")
    (report,) = (Path(h.host.env["TMPDIR"]) / f"enos-pulumi-{os.getuid()}").glob("*.report")
    text = report.read_text()
    assert "started it again (requestId" in text and SIM_SECRET_KEY not in text
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
