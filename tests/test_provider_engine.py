"""The provider under what Pulumi's engine does around the calls, through the real provider host.

Each test drives one engine behaviour with :class:`enos_pulumi.testing.Engine` (the refresh diff,
``--replace``, the re-check of a replacement, ``ignoreChanges``, ``replaceOnChanges``, DIFF_UNKNOWN,
``customTimeouts``, Ctrl-C, an interrupted Create) and asserts the calls the host received and the
requests the simulator saw.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import pytest

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import CheckFailedError, Engine, Interrupted, serialize_provider
from tests.support.engine_providers import DiffUnknownProvider
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_PAUSED_PIPELINE

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.host_fixtures import HostedProvider, HostFactory

pytest_plugins = ["tests.support.host_fixtures"]

SECOND_PAUSED = "pl-paused-engine"
LIST = ("list", None, None, None, None)


@pytest.fixture(scope="module", autouse=True)
def _second_paused_pipeline(module_simulator: Simulator) -> None:
    module_simulator.add_pipeline(SIM_ORG_ID, SECOND_PAUSED, status="PAUSED")


@pytest.fixture(autouse=True)
def _clean_log(clean_module_simulator: None) -> None:
    """Every test starts with no faults or log left over (the host's simulator is per module)."""


@pytest.fixture
def stage(request: pytest.FixtureRequest) -> str:
    return "LatestRecordMerger_" + re.sub(r"\W", "_", request.node.name)


def calls(sim: Simulator) -> list[tuple[Any, ...]]:
    return [
        (e["operation"], e["pipeline_id"], e["stage_instance_name"], e["asset_count"], e["point_count"])
        for e in sim.requests
        if e["operation"] in ("list", "delete", "get")
    ]


def delete(stage: str, assets: int, points: int, pipeline: str = SIM_PAUSED_PIPELINE) -> tuple[Any, ...]:
    return ("delete", pipeline, stage, assets, points)


def rpcs(h: HostedProvider, name: str) -> list[str]:
    """The host calls made for one resource, in order."""
    urn = h.engine.urn(name)
    return [method for method, call_urn in h.host.calls if call_urn == urn]


# -- refresh ---------------------------------------------------------------------------------------


def test_the_refresh_diff_finds_no_change_after_any_history(
    provider_host: HostedProvider, stage: str
) -> None:
    """Refresh reads, then diffs the refreshed OUTPUTS against the stored INPUTS: after each kind of up
    (create, same with reordered IDs, a removed trigger, an update, changed flags) that says "same"."""
    h, sim = provider_host, provider_host.simulator
    history: list[tuple[dict[str, Any], str]] = [
        ({"trigger": 3, "asset_ids": ["a2", "a1"]}, "create"),
        ({"trigger": "3", "asset_ids": "a1, a2,a1"}, "same"),
        ({"trigger": None, "asset_ids": ["a1", "a2"]}, "same"),
        ({"trigger": None, "asset_ids": ["a1", "a2", "a3"]}, "update"),
        ({"trigger": None, "asset_ids": ["a1", "a2", "a3"], "verify": True, "require_paused": False}, "same"),
    ]
    for overrides, op in history:
        assert h.engine.up("refresh-diff", h.inputs(stage_instance_name=stage, **overrides)).op == op
        stored = h.engine.state["refresh-diff"]
        h.host.calls.clear()
        sim.clear_log()
        refreshed = h.engine.refresh("refresh-diff")
        assert (overrides, refreshed.op) == (overrides, "same")
        assert rpcs(h, "refresh-diff") == ["Read", "Diff"]
        assert sim.requests == []
        assert h.engine.state["refresh-diff"] == stored  # inputs kept, outputs unchanged


# -- forced and diff-driven replacement ---------------------------------------------------------------


def test_up_replace_resets_again_with_check_create_and_delete_but_no_diff(
    provider_host: HostedProvider, stage: str
) -> None:
    h, sim = provider_host, provider_host.simulator
    inputs = h.inputs(stage_instance_name=stage, trigger="r1")
    first = h.engine.up("forced", inputs)
    old_id = h.engine.state["forced"].id
    assert h.engine.preview("forced", inputs, replace=True).op == "replace"
    h.host.calls.clear()
    sim.clear_log()

    step = h.engine.up("forced", inputs, replace=True)  # pulumi up --replace <urn>

    assert (step.op, step.replaces) == ("replace", ["id"])
    assert rpcs(h, "forced") == ["Check", "Create", "Delete"]
    assert calls(sim) == [LIST, delete(stage, 2, 2)]
    assert h.engine.state["forced"].id != old_id
    assert step.outputs is not None and step.outputs["reset_at"] > first.outputs["reset_at"]  # type: ignore[index]


def test_a_replacement_checks_the_raw_inputs_again(provider_host: HostedProvider, stage: str) -> None:
    """ignoreChanges swaps the stored asset_ids in for the first Check; the replacement's own Check runs
    on the program's inputs, so the new target is reset for the IDs the program gives now."""
    h, sim = provider_host, provider_host.simulator
    h.engine.up("recheck", h.inputs(stage_instance_name=stage, asset_ids=["a1", "a2"]))
    sim.clear_log()
    changed = h.inputs(stage_instance_name=stage, pipeline_id=SECOND_PAUSED, asset_ids=["a3"])
    step = h.engine.up("recheck", changed, ignore_changes=["asset_ids"])
    assert (step.op, step.replaces) == ("replace", ["pipeline_id"])
    assert calls(sim) == [LIST, delete(stage, 1, 2, pipeline=SECOND_PAUSED)]
    assert h.engine.state["recheck"].inputs["asset_ids"] == ["a3"]


def test_a_replacement_fails_on_raw_inputs_that_ignore_changes_hid(
    provider_host: HostedProvider, stage: str
) -> None:
    h, sim = provider_host, provider_host.simulator
    h.engine.up("recheck-bad", h.inputs(stage_instance_name=stage))
    before = h.engine.state["recheck-bad"]
    sim.clear_log()
    bad = h.inputs(stage_instance_name=stage, pipeline_id=SECOND_PAUSED, asset_ids=[])
    with pytest.raises(CheckFailedError, match="property asset_ids has a problem: is empty"):
        h.engine.up("recheck-bad", bad, ignore_changes=["asset_ids"])
    with pytest.raises(CheckFailedError):
        h.engine.preview("recheck-bad", bad, ignore_changes=["asset_ids"])
    assert sim.requests == []
    assert h.engine.state["recheck-bad"] == before


# -- ignoreChanges, replaceOnChanges, customTimeouts --------------------------------------------------


def test_ignore_changes_keeps_the_stored_inputs_so_nothing_runs(
    provider_host: HostedProvider, stage: str
) -> None:
    h, sim = provider_host, provider_host.simulator
    h.engine.up("ignored", h.inputs(stage_instance_name=stage, trigger="r1"))
    sim.clear_log()
    changed = h.inputs(stage_instance_name=stage, trigger="r2", asset_ids=["a9"])
    assert h.engine.preview("ignored", changed, ignore_changes=["trigger", "asset_ids"]).op == "same"
    assert h.engine.up("ignored", changed, ignore_changes=["trigger", "asset_ids"]).op == "same"
    assert sim.requests == []
    stored = h.engine.state["ignored"].inputs
    assert (stored["trigger"], stored["asset_ids"]) == ("r1", ["a1", "a2"])
    assert h.engine.up("ignored", changed).op == "update"  # without the option, it resets


@pytest.mark.parametrize("rules", [["asset_ids", "trigger"], ["*"]])
def test_replace_on_changes_has_no_effect(
    provider_host: HostedProvider, stage: str, rules: list[str]
) -> None:
    """The engine turns only *changed keys* into replace keys, and the dynamic host reports none."""
    h, sim = provider_host, provider_host.simulator
    name = f"roc-{len(rules)}"
    h.engine.up(name, h.inputs(stage_instance_name=stage))
    sim.clear_log()
    changed = h.inputs(stage_instance_name=stage, asset_ids=["a3"], trigger="r2")
    step = h.engine.up(name, changed, replace_on_changes=rules)
    assert (step.op, step.replaces) == ("update", [])
    assert calls(sim) == [LIST, delete(stage, 1, 2)]


def test_custom_timeouts_do_not_cut_a_reset_short(provider_host: HostedProvider, stage: str) -> None:
    h, sim = provider_host, provider_host.simulator
    sim.add_latency(200, op="delete", count=1)  # the reset outlasts the 1 ms the engine passes on
    step = h.engine.up("timeouts", h.inputs(stage_instance_name=stage), timeout=0.001)
    assert step.op == "create"
    assert calls(sim) == [LIST, delete(stage, 2, 2)]


# -- DIFF_UNKNOWN ------------------------------------------------------------------------------------


def test_diff_unknown_makes_the_engine_compare_the_inputs(
    host_factory: HostFactory, module_simulator: Simulator, stage: str
) -> None:
    from tests.support.host_fixtures import resource_inputs  # (a plugin module: imported once pytest has it)

    sim = module_simulator
    h = host_factory(sim)  # cwd is the repository: tests.support.engine_providers is importable
    provider = serialize_provider(DiffUnknownProvider())

    def inputs(**overrides: Any) -> dict[str, Any]:
        return resource_inputs(provider, stage_instance_name=stage, **overrides)

    assert h.engine.up("unknown-diff", inputs(trigger="r1")).op == "create"
    # The checked inputs are equal (canonical IDs): no change.
    assert h.engine.up("unknown-diff", inputs(trigger="r1", asset_ids=["a2", "a1", "a2"])).op == "same"
    # The same set as a string is another input value: a change the provider's own diff would ignore.
    assert h.engine.preview("unknown-diff", inputs(trigger="r1", asset_ids="a1,a2")).op == "update"
    sim.clear_log()
    # Any changed input is an update now, even one the provider's own diff ignores.
    assert h.engine.up("unknown-diff", inputs(trigger="r1", verify=True)).op == "update"
    assert calls(sim) == [LIST, delete(stage, 2, 2), ("get", SIM_PAUSED_PIPELINE, stage, 2, 2)]
    # The engine's diff names changed keys, so replaceOnChanges applies to them.
    step = h.engine.up("unknown-diff", inputs(trigger="r2", verify=True), replace_on_changes=["trigger"])
    assert (step.op, step.replaces) == ("replace", ["trigger"])


# -- Ctrl-C and a killed CLI --------------------------------------------------------------------------


def test_ctrl_c_waits_for_a_reset_in_flight(
    host_factory: HostFactory, module_simulator: Simulator, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = module_simulator
    h = host_factory(sim)
    handle = sim._handle

    def cancel_during_the_delete(call: Any) -> Any:
        if call.op == "delete":
            h.host.cancel()  # the first Ctrl-C: the CLI sends Cancel and waits
        return handle(call)

    monkeypatch.setattr(sim, "_handle", cancel_during_the_delete)
    step = h.engine.up("cancelled", h.inputs(stage_instance_name=stage))
    assert step.op == "create"
    assert ("Cancel", "") in h.host.calls
    assert calls(sim) == [LIST, delete(stage, 2, 2)]
    assert "cancelled" in h.engine.state


def test_a_killed_create_leaves_a_pending_create_until_a_refresh_clears_it(
    host_factory: HostFactory, module_simulator: Simulator, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = module_simulator
    h = host_factory(sim)
    interrupt, release = threading.Event(), threading.Event()
    handle = sim._handle

    def hold_the_delete(call: Any) -> Any:
        if call.op == "delete":
            interrupt.set()  # the CLI is killed while the reset's delete is in flight
            release.wait(10)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", hold_the_delete)
    inputs = h.inputs(stage_instance_name=stage)
    with pytest.raises(Interrupted):
        h.engine.up("killed", inputs, interrupt=interrupt)
    release.set()
    monkeypatch.setattr(sim, "_handle", handle)
    assert h.host.process is not None and h.host.process.poll() is not None  # the host died with it
    assert "killed" not in h.engine.state
    assert list(h.engine.pending_creates) == ["killed"]

    # The next `pulumi up` (a new host) warns, and creates the resource: the reset runs again.
    engine = Engine(
        host_factory(sim).host,
        project=h.engine.project,
        state=h.engine.state,
        pending_creates=h.engine.pending_creates,
    )
    sim.clear_log()
    step = engine.up("killed", inputs)
    assert step.op == "create"
    assert calls(sim) == [LIST, delete(stage, 2, 2)]
    (warning,) = step.warnings
    # deployment_executor.go, printPendingOperationsWarning: the engine's own words.
    listed = f"  * {engine.urn('killed')}, interrupted while creating\n"
    assert "1 pending operations from previous deployment.\n" + listed in warning
    assert "`pulumi refresh` will need to be run interactively to clear pending CREATE operations" in warning
    # The engine keeps the pending create, so every update warns until a refresh clears it.
    assert engine.up("killed", inputs).warnings == [warning]
    assert engine.clear_pending_creates() == ["killed"]
    again = engine.up("killed", inputs)
    assert (again.op, again.warnings) == ("same", [])
