"""The testing kit's Engine against the Pulumi engine rules it models, over the real provider host.

Each test names, in its docstring, the Pulumi engine source (file and function) of the rule it checks,
and asserts what the host was called with and what the simulator saw.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pulumi.output import Unknown

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import (
    DeploymentError,
    Engine,
    HostError,
    IgnoreChangesError,
    Interrupted,
    ResourceProtectedError,
    secret,
    serialize_provider,
)
from enos_pulumi.testing._paths import process_ignore_changes
from tests.support.engine_providers import FailingDeleteProvider
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_RUNNING_PIPELINE

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.host_fixtures import HostedProvider, HostFactory

pytest_plugins = ["tests.support.host_fixtures"]

OTHER_PAUSED = "pl-paused-kit-engine"


@pytest.fixture(scope="module", autouse=True)
def _second_paused_pipeline(module_simulator: Simulator) -> None:
    module_simulator.add_pipeline(SIM_ORG_ID, OTHER_PAUSED, status="PAUSED")


@pytest.fixture(autouse=True)
def _clean_log(clean_module_simulator: None) -> None:
    """Every test starts with no faults or log left over (the host's simulator is per module)."""


@pytest.fixture
def stage(request: pytest.FixtureRequest) -> str:
    return "LatestRecordMerger_" + re.sub(r"\W", "_", request.node.name)


def rpcs(h: HostedProvider, name: str, engine: Engine | None = None) -> list[str]:
    urn = (engine or h.engine).urn(name)
    return [method for method, call_urn in h.host.calls if call_urn == urn]


def deletes(sim: Simulator, pipeline: str | None = None) -> int:
    return sum(
        1
        for entry in sim.requests
        if entry["operation"] == "delete" and pipeline in (None, entry["pipeline_id"])
    )


# -- protect ------------------------------------------------------------------------------------------


def test_a_protected_resource_is_neither_replaced_nor_deleted(
    provider_host: HostedProvider, stage: str
) -> None:
    """step_generator.go, continueStepsFromDiff: a replacement of a resource protected in the old and the
    new state fails (preview included) before any Create; step.go, DeleteStep.Apply: a protected resource
    is not deleted (deleteProtectedError). Unprotecting and replacing in one update is allowed."""
    h, sim = provider_host, provider_host.simulator
    h.engine.up("guarded", h.inputs(stage_instance_name=stage), protect=True)
    stored = h.engine.state["guarded"]
    moved = h.inputs(stage_instance_name=stage, pipeline_id=OTHER_PAUSED)
    sim.clear_log()
    h.host.calls.clear()
    urn = h.engine.urn("guarded")
    with pytest.raises(ResourceProtectedError, match=f'unable to replace resource "{re.escape(urn)}"'):
        h.engine.preview("guarded", moved, protect=True)
    with pytest.raises(ResourceProtectedError, match="currently marked for protection"):
        h.engine.up("guarded", moved, protect=True)
    with pytest.raises(ResourceProtectedError):
        h.engine.up("guarded", h.inputs(stage_instance_name=stage), protect=True, replace=True)
    with pytest.raises(ResourceProtectedError, match="cannot be deleted\nbecause it is protected"):
        h.engine.destroy("guarded")
    assert "Create" not in rpcs(h, "guarded") and "Delete" not in rpcs(h, "guarded")
    assert deletes(sim) == 0 and h.engine.state["guarded"] == stored

    step = h.engine.up("guarded", moved, protect=False)
    assert (step.op, step.replaces) == ("replace", ["pipeline_id"])
    assert deletes(sim, OTHER_PAUSED) == 1
    assert h.engine.destroy("guarded").op == "delete" and "guarded" not in h.engine.state


# -- retainOnDelete and customTimeouts -----------------------------------------------------------------


def test_retain_on_delete_skips_the_providers_delete(provider_host: HostedProvider, stage: str) -> None:
    """step.go, DeleteStep.Apply: a resource stored with retainOnDelete is forgotten without a Delete call,
    on a replacement and on destroy; without the option the Delete is called."""
    h = provider_host
    h.engine.up("kept", h.inputs(stage_instance_name=stage), retain_on_delete=True)
    h.engine.up("kept", h.inputs(stage_instance_name=stage, pipeline_id=OTHER_PAUSED), retain_on_delete=True)
    h.engine.destroy("kept")
    assert rpcs(h, "kept") == ["Check", "Create", "Check", "Diff", "Check", "Create"]
    h.engine.up("dropped", h.inputs(stage_instance_name=stage))
    h.engine.destroy("dropped")
    assert rpcs(h, "dropped")[-1] == "Delete"


def test_custom_timeouts_go_to_the_call_they_name(
    provider_host: HostedProvider, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """step.go: CreateStep.Apply sends the create timeout, UpdateStep.Apply the new goal's update timeout,
    DeleteStep.Apply the delete timeout stored with the old resource."""
    h = provider_host
    seen: list[tuple[str, float]] = []
    for method in ("create", "update", "delete"):
        original = getattr(h.host, method)

        def record(*args: Any, _method: str = method, _original: Any = original) -> Any:
            seen.append((_method, args[-1]))
            return _original(*args)

        monkeypatch.setattr(h.host, method, record)
    h.engine.up("timed", h.inputs(stage_instance_name=stage, trigger="r1"), timeouts=(60, 120, 180))
    h.engine.up("timed", h.inputs(stage_instance_name=stage, trigger="r2"), timeouts=(61, 121, 181))
    moved = h.inputs(stage_instance_name=stage, pipeline_id=OTHER_PAUSED)
    h.engine.up("timed", moved, timeouts=(62, 122, 182))
    h.engine.destroy("timed")
    assert seen == [("create", 60), ("update", 121), ("create", 62), ("delete", 181), ("delete", 182)]


# -- ignoreChanges paths -------------------------------------------------------------------------------


def test_nested_ignore_changes_paths_reset_what_they_name() -> None:
    """step_generator.go, processIgnoreChanges: each path (``a.b``, ``a[0]``, ``a[*]``, ``["a.b"]``) is
    reset to the old inputs' value, removed where the old inputs have none, through secrets; a path whose
    parent is missing fails naming it."""
    old = {"cfg": {"cpu": 1, "mem": 2, "x.y": 0}, "ids": ["a1", "a2"], "tags": secret({"owner": "ops"})}
    new = {
        "cfg": {"cpu": 4, "mem": 8, "x.y": 9, "gpu": 1},
        "ids": ["a9", "a8"],
        "tags": secret({"owner": "dev"}),
    }
    result = process_ignore_changes(new, old, ["cfg.cpu", "cfg.gpu", 'cfg["x.y"]', "ids[1]", "tags.owner"])
    assert result == {
        "cfg": {"cpu": 1, "mem": 8, "x.y": 0},
        "ids": ["a9", "a2"],
        "tags": secret({"owner": "ops"}),
    }
    assert process_ignore_changes(new, old, ["ids[*]"])["ids"] == ["a1", "a2"]
    assert new["cfg"]["cpu"] == 4  # the program's inputs are not changed
    with pytest.raises(IgnoreChangesError, match=r"'cfg\.a\.b'"):
        process_ignore_changes({"cfg": {}}, {"cfg": {"a": {"b": 1}}}, ["cfg.a.b"])


def test_an_ignored_list_element_keeps_the_stored_id(provider_host: HostedProvider, stage: str) -> None:
    """step_generator.go, generateSteps: ignoreChanges paths are applied before Check, so a changed element
    the program ignores is no change and runs no reset."""
    h, sim = provider_host, provider_host.simulator
    h.engine.up("element", h.inputs(stage_instance_name=stage, asset_ids=["a1", "a2"]))
    sim.clear_log()
    changed = h.inputs(stage_instance_name=stage, asset_ids=["a1", "a9"])
    assert h.engine.up("element", changed, ignore_changes=["asset_ids[1]"]).op == "same"
    assert deletes(sim) == 0 and h.engine.state["element"].inputs["asset_ids"] == ["a1", "a2"]


# -- replacement_trigger and replace_with ---------------------------------------------------------------


def test_a_changed_replacement_trigger_replaces_and_resets(provider_host: HostedProvider, stage: str) -> None:
    """The engine's replacement trigger (pkg/engine/lifecycletest/replacement_trigger_test.go): the same
    value, also as a secret, is no change; a new value replaces the resource (a new reset); an unknown
    value is a replacement in preview and an error in an update."""
    h, sim = provider_host, provider_host.simulator
    inputs = h.inputs(stage_instance_name=stage)
    assert h.engine.up("rotated", inputs, replacement_trigger="2026-11").op == "create"
    sim.clear_log()
    assert h.engine.up("rotated", inputs, replacement_trigger="2026-11").op == "same"
    assert h.engine.up("rotated", inputs, replacement_trigger=secret("2026-11")).op == "same"
    assert deletes(sim) == 0
    preview = h.engine.preview("rotated", inputs, replacement_trigger="2026-12")
    assert (preview.op, preview.replaces) == ("replace", ["replacementTrigger"])
    step = h.engine.up("rotated", inputs, replacement_trigger="2026-12")
    assert step.op == "replace" and deletes(sim) == 1
    assert h.engine.preview("rotated", inputs, replacement_trigger=Unknown()).op == "replace"
    with pytest.raises(DeploymentError, match="replacement trigger contains unknowns for urn:pulumi:"):
        h.engine.up("rotated", inputs, replacement_trigger=Unknown())
    assert deletes(sim) == 1


def test_a_resource_replaced_with_another_is_replaced(provider_host: HostedProvider, stage: str) -> None:
    """The replace_with option (sdk/python/lib/pulumi/resource.py, ResourceOptions.replace_with): the
    resource is replaced whenever one of the named resources is replaced in the same deployment."""
    h, sim = provider_host, provider_host.simulator
    inputs = h.inputs(stage_instance_name=stage)
    h.engine.up("follower", inputs)
    sim.clear_log()
    assert h.engine.up("follower", inputs).op == "same"
    step = h.engine.up("follower", inputs, replaced_with=["urn:pulumi:dev::p::t::leader"])
    assert (step.op, step.replaces) == ("replace", ["replaceWith"])
    assert deletes(sim) == 1


# -- failed replacements and interrupted updates ---------------------------------------------------------


def test_a_failed_replacement_keeps_the_old_resource_pending_delete(
    host_factory: HostFactory, module_simulator: Simulator, stage: str
) -> None:
    """step.go, CreateStep.Apply marks the replaced resource for deletion once its replacement exists;
    step_generator.go, GenerateDeletes deletes resources so marked in the next update: a Delete that
    failed leaves it pending, not lost."""
    from tests.support.host_fixtures import resource_inputs

    failing = host_factory(module_simulator, env={"KIT_FAIL_DELETE": "1"})
    inputs = resource_inputs(serialize_provider(FailingDeleteProvider()), stage_instance_name=stage)
    failing.engine.up("flaky", inputs)
    old = failing.engine.state["flaky"]
    with pytest.raises(HostError, match="delete refused by the test provider"):
        failing.engine.up("flaky", inputs, replace=True)
    assert failing.engine.state["flaky"].id != old.id
    assert failing.engine.pending_deletes == [("flaky", old)]

    healthy = host_factory(module_simulator)
    engine = Engine(
        healthy.host, project=failing.engine.project, state=failing.engine.state,
        pending_deletes=failing.engine.pending_deletes,
    )  # fmt: skip
    engine.delete_pending()
    assert engine.pending_deletes == [] and rpcs(healthy, "flaky", engine) == ["Delete"]


def test_a_delete_before_replace_whose_create_failed_is_replaced_next_time(
    provider_host: HostedProvider, stage: str
) -> None:
    """step.go, DeleteStep.Apply sets PendingReplacement once the old resource is deleted;
    step_generator.go, continueStepsFromDiff replaces a resource pending replacement without deleting it
    again."""
    h, sim = provider_host, provider_host.simulator
    h.engine.up("dbr", h.inputs(stage_instance_name=stage))
    old_id = h.engine.state["dbr"].id
    running = h.inputs(stage_instance_name=stage, pipeline_id=SIM_RUNNING_PIPELINE)
    with pytest.raises(HostError, match="RUNNING"):
        h.engine.up("dbr", running, delete_before_replace=True)
    pending = h.engine.state["dbr"]
    assert pending.pending_replacement and pending.id == old_id
    h.host.calls.clear()
    sim.clear_log()
    moved = h.inputs(stage_instance_name=stage, pipeline_id=OTHER_PAUSED)
    step = h.engine.up("dbr", moved, delete_before_replace=True)
    assert step.op == "replace" and rpcs(h, "dbr") == ["Check", "Diff", "Check", "Create"]
    assert not h.engine.state["dbr"].pending_replacement and deletes(sim, OTHER_PAUSED) == 1


def test_an_interrupted_update_is_warned_about_once(
    host_factory: HostFactory, module_simulator: Simulator, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deployment_executor.go, printPendingOperationsWarning lists every pending operation ("interrupted
    while updating"); only pending creates are kept in the next snapshot (lifecycle tests), so the next
    update warns once."""
    sim = module_simulator
    h = host_factory(sim)
    h.engine.up("halted", h.inputs(stage_instance_name=stage, trigger="r1"))
    interrupt, release = threading.Event(), threading.Event()
    handle = sim._handle

    def hold(call: Any) -> Any:
        if call.op == "delete":
            interrupt.set()
            release.wait(10)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", hold)
    with pytest.raises(Interrupted, match="while updating"):
        h.engine.up("halted", h.inputs(stage_instance_name=stage, trigger="r2"), interrupt=interrupt)
    release.set()
    monkeypatch.setattr(sim, "_handle", handle)
    assert list(h.engine.pending_updates) == ["halted"]
    engine = Engine(
        host_factory(sim).host, project=h.engine.project, state=h.engine.state,
        pending_updates=h.engine.pending_updates,
    )  # fmt: skip
    (warning,) = engine.up("halted", h.inputs(stage_instance_name=stage, trigger="r2")).warnings
    listed = f"  * {engine.urn('halted')}, interrupted while updating\n"
    assert "1 pending operations from previous deployment.\n" + listed in warning
    assert engine.up("halted", h.inputs(stage_instance_name=stage, trigger="r2")).warnings == []


# -- what a step says, and how long a call may take -------------------------------------------------------


def test_a_step_names_the_inputs_that_changed(provider_host: HostedProvider, stage: str) -> None:
    """pkg/display (the diff a preview shows): without a detailed diff from the provider, the changed keys
    are the engine's comparison of the stored and the checked new inputs; a create shows every input."""
    h = provider_host
    created = h.engine.up("shown", h.inputs(stage_instance_name=stage, trigger="r1"))
    assert created.changed == sorted(h.engine.state["shown"].inputs)
    assert h.engine.preview("shown", h.inputs(stage_instance_name=stage, trigger="r2")).changed == ["trigger"]
    both = h.engine.preview("shown", h.inputs(stage_instance_name=stage, trigger="r2", asset_ids=["a3"]))
    assert (both.op, both.changed) == ("update", ["asset_ids", "trigger"])
    assert h.engine.preview("shown", h.inputs(stage_instance_name=stage, trigger="r1")).changed == []


def test_host_calls_have_no_deadline_unless_the_caller_sets_one(
    provider_host: HostedProvider, host_factory: HostFactory, module_simulator: Simulator, stage: str
) -> None:
    """provider_plugin.go calls every provider method with p.requestContext(), which has no deadline: the
    kit sends none by default; a caller's call_timeout cuts the call and says which bound it was."""
    h = provider_host
    stub, timeouts = h.host._stub, []

    class Recording:
        def __getattr__(self, method: str) -> Any:
            def call(request: Any, timeout: float | None = None) -> Any:
                timeouts.append(timeout)
                return getattr(stub, method)(request, timeout=timeout)

            return call

    h.host._stub = Recording()
    try:
        h.engine.up("unbounded", h.inputs(stage_instance_name=stage))
    finally:
        h.host._stub = stub
    assert timeouts and set(timeouts) == {None}

    bounded = host_factory(module_simulator)
    bounded.host.call_timeout = 0.3
    module_simulator.add_latency(3000, op="delete", count=1)
    with pytest.raises(HostError) as info:
        bounded.engine.up(
            "bounded", bounded.inputs(stage_instance_name=stage, pipeline_id=SIM_PAUSED_PIPELINE)
        )
    assert info.value.error_type == "CallTimeout" and "within 0.3 s" in info.value.error_message


# -- a killed test process ---------------------------------------------------------------------------------

CHILD_TEST = """
import os, threading
from pathlib import Path
from enos_pulumi.testing import ProviderHost

def test_hold_a_host(tmp_path):
    hosts = []
    starter = threading.Thread(target=lambda: hosts.append(ProviderHost(cwd=tmp_path).start()))
    starter.start()
    starter.join()  # the thread that asked for the host is gone; the host must live on
    Path(os.environ["KIT_PID_FILE"]).write_text(str(hosts[0].process.pid))
    threading.Event().wait(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_a_test_process_killed_by_sigterm_leaves_no_provider_host(tmp_path: Path) -> None:
    """The CLI's plugins end with the CLI; a CI job's SIGTERM ends a test process without cleanup: the
    host started through ProviderHost (here from a thread that has already ended) must die with it."""
    (tmp_path / "test_child.py").write_text(CHILD_TEST)
    pid_file = tmp_path / "host.pid"
    env = {
        **os.environ,
        "KIT_PID_FILE": str(pid_file),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "test_child.py")],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        host_pid = int(pid_file.read_text())
        assert _alive(host_pid)
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == -signal.SIGTERM
        deadline = time.monotonic() + 10
        while _alive(host_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(host_pid)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
