"""Pulumi's real dynamic provider host over gRPC, against the simulator, in the engine's call order.

Every scenario asserts the exact list/delete/get calls the simulator received. One host serves the
module (as one host serves a whole ``pulumi up``); tests keep apart through their own resource and
stage names. Scenarios that need other settings or a fresh token count start their own host.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest
from pulumi.output import Unknown

from enos_pulumi.enos.ids import ids_hash
from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import UNKNOWN, CheckFailedError, HostError
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_RUNNING_PIPELINE
from tests.support.host_errors import assert_raised

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.host_fixtures import HostedProvider, HostFactory

pytest_plugins = ["tests.support.host_fixtures"]

SECOND_PAUSED = "pl-paused-2"
LIST = ("list", None, None, None, None)
Call = tuple[str, Any, Any, Any, Any]


@pytest.fixture(scope="module", autouse=True)
def _second_paused_pipeline(module_simulator: Simulator) -> None:
    module_simulator.add_pipeline(SIM_ORG_ID, SECOND_PAUSED, status="PAUSED")


@pytest.fixture(autouse=True)
def _clean_log(clean_module_simulator: None) -> None:
    """Every test starts with no faults or log left over (the host's simulator is per module)."""


@pytest.fixture
def stage(request: pytest.FixtureRequest) -> str:
    """A stage of this test's own (state is per org, pipeline and stage)."""
    return "FixedTimeWindowAggregator_" + re.sub(r"\W", "_", request.node.name)


@pytest.fixture
def hosted(provider_host: HostedProvider) -> HostedProvider:
    return provider_host


def calls(sim: Simulator, ops: tuple[str, ...] = ("list", "delete", "get")) -> list[Call]:
    """The simulator's log as (operation, pipeline, stage, assets, points), tokens left out."""
    return [
        (e["operation"], e["pipeline_id"], e["stage_instance_name"], e["asset_count"], e["point_count"])
        for e in sim.requests
        if e["operation"] in ops
    ]


def delete(stage: str, assets: int, points: int, pipeline: str = SIM_PAUSED_PIPELINE) -> Call:
    return ("delete", pipeline, stage, assets, points)


def pairs(sim: Simulator, stage: str, pipeline: str = SIM_PAUSED_PIPELINE) -> set[tuple[str, str]]:
    return sim.stage_pairs(SIM_ORG_ID, pipeline, stage)


def fill(sim: Simulator, stage: str, pipeline: str = SIM_PAUSED_PIPELINE) -> None:
    sim.set_pairs(SIM_ORG_ID, pipeline, stage, ["a1", "a2", "a3"], ["p1", "p2", "p3"])


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``condition`` (the host's stderr is read by a thread, so lines arrive a little later)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def up(h: HostedProvider, name: str, stage: str, **overrides: Any) -> Any:
    return h.engine.up(name, h.inputs(stage_instance_name=stage, **overrides))


# -- create and no-op ups ------------------------------------------------------------------------------


def test_first_up_deletes_exactly_the_named_pairs(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    fill(sim, stage)
    plan = up(hosted, "first", stage, asset_ids=["a2", "a1"], point_ids="p1,p2")

    assert plan.op == "create"
    assert calls(sim) == [LIST, delete(stage, 2, 2)]
    assert pairs(sim, stage) == {("a3", "p1"), ("a3", "p2"), ("a3", "p3"), ("a1", "p3"), ("a2", "p3")}
    outs = plan.outputs
    assert outs["ids_hash"] == ids_hash(["a1", "a2"], ["p1", "p2"])
    assert (outs["asset_count"], outs["point_count"], outs["request_count"]) == (2, 2, 1)
    assert outs["request_ids"] == [e["request_id"] for e in sim.requests if e["operation"] == "delete"]
    assert (outs["org_id"], outs["pipeline_id"], outs["stage_instance_name"]) == (
        SIM_ORG_ID,
        SIM_PAUSED_PIPELINE,
        stage,
    )
    assert "asset_ids" not in outs and "point_ids" not in outs
    assert outs["__provider"] == hosted.provider
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", outs["reset_at"])


def test_a_second_identical_up_changes_nothing(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    first = up(hosted, "noop", stage, trigger="r1")
    fill(sim, stage)
    sim.clear_log()
    plan = up(hosted, "noop", stage, trigger="r1")
    assert plan.op == "same"
    assert calls(sim) == []
    assert plan.outputs == first.outputs
    assert len(pairs(sim, stage)) == 9


@pytest.mark.parametrize(
    "ids",
    [
        {"asset_ids": ["a2", "a1", "a2"], "point_ids": ["p2", "p1"]},
        {"asset_ids": " a1 , a2,a1", "point_ids": "p2,p1"},  # the string form of the same sets
        {"asset_ids": ("a1", "a2"), "point_ids": ["p1", " p2 ", "p2"]},
    ],
)
def test_reordered_or_duplicated_ids_change_nothing(
    hosted: HostedProvider, stage: str, ids: dict[str, Any]
) -> None:
    sim = hosted.simulator
    up(hosted, "reorder", stage)
    fill(sim, stage)
    sim.clear_log()
    plan = up(hosted, "reorder", stage, **ids)
    assert plan.op == "same"
    assert calls(sim) == []
    assert len(pairs(sim, stage)) == 9


def test_require_paused_and_verify_changes_do_not_reset(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    up(hosted, "flags", stage)
    sim.clear_log()
    assert up(hosted, "flags", stage, require_paused=False, verify=True).op == "same"
    assert calls(sim) == []


# -- updates -------------------------------------------------------------------------------------------


def test_changed_ids_update_and_delete_again(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    first = up(hosted, "changed", stage)
    resource_id = hosted.engine.state["changed"].id
    fill(sim, stage)
    sim.clear_log()
    plan = up(hosted, "changed", stage, asset_ids=["a3", "a1", "a2", "a1"])
    assert plan.op == "update"
    assert calls(sim) == [LIST, delete(stage, 3, 2)]
    assert pairs(sim, stage) == {("a1", "p3"), ("a2", "p3"), ("a3", "p3")}
    assert plan.outputs["ids_hash"] == ids_hash(["a1", "a2", "a3"], ["p1", "p2"])
    assert plan.outputs["ids_hash"] != first.outputs["ids_hash"]
    assert plan.outputs["reset_at"] >= first.outputs["reset_at"]
    assert hosted.engine.state["changed"].id == resource_id  # updated in place
    assert hosted.engine.state["changed"].outputs == plan.outputs


def test_trigger_set_changed_and_removed(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    up(hosted, "trig", stage)
    resource_id = hosted.engine.state["trig"].id

    steps: list[tuple[Any, str, list[Call]]] = [
        ("release-1", "update", [LIST, delete(stage, 2, 2)]),  # set for the first time
        ("release-1", "same", []),
        ("release-2", "update", [LIST, delete(stage, 2, 2)]),  # changed
        (None, "same", []),  # removed: nothing runs
        ("", "same", []),  # empty means none
        ("release-2", "same", []),  # back to the trigger of the last reset
        (3, "update", [LIST, delete(stage, 2, 2)]),
        ("3", "same", []),  # numbers compare as text: 3, 3.0 and "3" are one trigger
        (3.0, "same", []),
    ]
    for trigger, op, expected in steps:
        sim.clear_log()
        plan = up(hosted, "trig", stage, trigger=trigger)
        assert (trigger, plan.op) == (trigger, op)
        assert calls(sim) == expected, trigger
    assert hosted.engine.state["trig"].id == resource_id
    assert hosted.engine.state["trig"].outputs["trigger"] == "3"


@pytest.mark.parametrize(
    ("change", "replaced"),
    [
        ({"pipeline_id": SECOND_PAUSED}, ["pipeline_id"]),
        ({"stage_instance_name": "LatestRecordMerger_replace"}, ["stage_instance_name"]),
    ],
)
def test_a_new_target_replaces_without_touching_the_old_one(
    hosted: HostedProvider, stage: str, change: dict[str, str], replaced: list[str]
) -> None:
    sim = hosted.simulator
    up(hosted, "target-" + replaced[0], stage)
    old_id = hosted.engine.state["target-" + replaced[0]].id
    fill(sim, stage)
    sim.clear_log()
    inputs = hosted.inputs(**{"stage_instance_name": stage, **change})
    plan = hosted.engine.up("target-" + replaced[0], inputs)

    assert plan.op == "replace"
    assert plan.replaces == replaced
    new_pipeline = inputs["pipeline_id"]
    new_stage = inputs["stage_instance_name"]
    # Create of the new target, then the old resource's delete, which calls nothing.
    assert calls(sim) == [LIST, delete(new_stage, 2, 2, pipeline=new_pipeline)]
    assert len(pairs(sim, stage)) == 9  # the old target's state is untouched
    assert hosted.engine.state["target-" + replaced[0]].id != old_id


# -- preview, refresh, destroy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unknown", "op"),
    [
        ({"asset_ids": UNKNOWN}, "update"),
        ({"asset_ids": Unknown()}, "update"),
        ({"point_ids": ["p1", Unknown()]}, "update"),
        ({"trigger": UNKNOWN}, "update"),
        ({"pipeline_id": Unknown()}, "replace"),
        ({"stage_instance_name": UNKNOWN}, "replace"),
    ],
)
def test_preview_with_unknown_inputs_reports_a_change_and_calls_nothing(
    hosted: HostedProvider, stage: str, unknown: dict[str, Any], op: str
) -> None:
    sim = hosted.simulator
    name = stage  # one resource per parameter set
    up(hosted, name, stage)
    before = hosted.engine.state[name]
    sim.clear_log()
    plan = hosted.engine.preview(name, hosted.inputs(**{"stage_instance_name": stage, **unknown}))
    assert plan.op == op
    assert sim.requests == []  # no HTTP at all, not even a token
    assert hosted.engine.state[name] == before


def test_preview_with_unknown_flags_does_not_fail(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    up(hosted, "unknown-flags", stage)
    sim.clear_log()
    plan = hosted.engine.preview(
        "unknown-flags", hosted.inputs(stage_instance_name=stage, require_paused=UNKNOWN, verify=Unknown())
    )
    assert plan.op == "same"
    assert sim.requests == []


def test_preview_of_a_new_resource_with_unknowns_calls_nothing(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    inputs = hosted.inputs(stage_instance_name=stage, asset_ids=UNKNOWN, pipeline_id=Unknown())
    assert hosted.engine.preview("unknown-new", inputs).op == "create"
    assert sim.requests == []
    assert "unknown-new" not in hosted.engine.state


def test_preview_of_a_change_deletes_nothing(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    up(hosted, "preview", stage)
    before = hosted.engine.state["preview"]
    fill(sim, stage)
    sim.clear_log()
    engine = hosted.engine
    changed = hosted.inputs(stage_instance_name=stage, asset_ids=["a3"], trigger="new")
    assert engine.preview("preview", changed).op == "update"
    assert engine.preview("preview", {**changed, "pipeline_id": SECOND_PAUSED}).op == "replace"
    assert sim.requests == []
    assert len(pairs(sim, stage)) == 9
    assert engine.state["preview"] == before


def test_refresh_calls_nothing_and_keeps_the_outputs(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    created = up(hosted, "refresh", stage, trigger="r1")
    inputs_before = hosted.engine.state["refresh"].inputs
    sim.clear_log()
    refreshed = hosted.engine.refresh("refresh")
    assert sim.requests == []
    assert refreshed.op == "same"  # the refresh diff (refreshed outputs against stored inputs)
    assert refreshed.outputs == created.outputs
    assert hosted.engine.state["refresh"].inputs == inputs_before
    sim.clear_log()
    assert up(hosted, "refresh", stage, trigger="r1").op == "same"  # the next diff is unchanged
    assert calls(sim) == []


def test_destroy_calls_nothing(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    up(hosted, "destroy", stage)
    fill(sim, stage)
    sim.clear_log()
    hosted.engine.destroy("destroy")
    assert sim.requests == []
    assert "destroy" not in hosted.engine.state
    assert len(pairs(sim, stage)) == 9


# -- failures ------------------------------------------------------------------------------------------


def test_a_running_pipeline_fails_the_up_clearly_and_records_nothing(
    hosted: HostedProvider, stage: str
) -> None:
    sim = hosted.simulator
    fill(sim, stage, pipeline=SIM_RUNNING_PIPELINE)
    with pytest.raises(HostError) as info:
        up(hosted, "running", stage, pipeline_id=SIM_RUNNING_PIPELINE)
    assert info.value.method == "Create"
    assert_raised(info.value.details, "PipelineNotPausedError")
    assert f"pipeline {SIM_RUNNING_PIPELINE} is RUNNING" in info.value.details
    assert calls(sim) == [LIST]
    assert "running" not in hosted.engine.state
    assert len(pairs(sim, stage, pipeline=SIM_RUNNING_PIPELINE)) == 9


def test_bad_inputs_fail_check_before_any_call(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    with pytest.raises(
        CheckFailedError, match=r"property asset_ids has a problem: item 1 .*contains a comma"
    ) as info:
        up(hosted, "bad", stage, asset_ids=["a1", "a2,a3"], point_ids=[])
    assert [prop for prop, _ in info.value.failures] == ["asset_ids", "point_ids"]
    assert "asset_ids: asset_ids" not in str(info.value)
    assert sim.requests == []


def test_a_failure_mid_batch_fails_the_up_and_the_next_up_retries(
    host_factory: HostFactory, module_simulator: Simulator, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = module_simulator
    # 3 assets x 2 points, 2 pairs per request, one request at a time: 3 delete requests.
    h = host_factory(sim, settings={"enos:maxPairsPerRequest": 2, "enos:parallelRequests": 1})
    first = up(h, "midbatch", stage, asset_ids=["a1", "a2", "a3"])
    assert first.op == "create"
    assert calls(sim) == [LIST] + [delete(stage, 1, 2)] * 3
    fill(sim, stage)
    sim.clear_log()

    # The second delete request of the next reset is answered data=false (not retried).
    handle = sim._handle
    deletes_seen = []

    def second_delete_fails(call: Any) -> Any:
        if call.op == "delete":
            deletes_seen.append(call)
            if len(deletes_seen) == 2:
                sim.answer_data_false(count=1)
        return handle(call)

    monkeypatch.setattr(sim, "_handle", second_delete_fails)
    changed = h.inputs(stage_instance_name=stage, asset_ids=["a1", "a2", "a3"], trigger="again")
    with pytest.raises(HostError) as info:
        h.engine.up("midbatch", changed)
    details = info.value.details
    assert_raised(details, "DeletionRejectedError")
    assert "data: false" in details
    assert "1 of 3 requests had succeeded" in details
    assert "running pulumi up again retries" in details
    assert calls(sim) == [LIST, delete(stage, 1, 2), delete(stage, 1, 2)]  # no third request
    assert [e["fault"] for e in sim.requests if e["operation"] == "delete"] == [None, "data-false"]
    assert h.engine.state["midbatch"].outputs == first.outputs  # nothing new recorded
    (rejected,) = [e["request_id"] for e in sim.requests if e["fault"] == "data-false"]
    assert wait_until(lambda: rejected in h.host.stderr)
    (rejected_line,) = [line for line in h.host.stderr.splitlines() if rejected in line]
    assert "| failed |" in rejected_line  # the failed request has its progress line too
    assert len(pairs(sim, stage)) == 9 - 2  # only the first request's pairs are gone

    sim.clear_log()
    retried = h.engine.up("midbatch", changed)
    assert retried.op == "update"
    assert calls(sim) == [LIST] + [delete(stage, 1, 2)] * 3
    assert retried.outputs["request_count"] == 3
    assert retried.outputs["trigger"] == "again"
    assert pairs(sim, stage) == {("a1", "p3"), ("a2", "p3"), ("a3", "p3")}


# -- concurrency, tokens and progress ------------------------------------------------------------------


def test_four_resets_at_once_share_one_token_and_print_one_line_per_request(
    host_factory: HostFactory, simulator_factory: Callable[..., Simulator]
) -> None:
    sim = simulator_factory()  # a fresh token count
    sim.add_latency(50, op="token")  # all four wait for the one token fetch...
    sim.add_latency(100, op="list")  # ...and their status checks overlap
    h = host_factory(sim, settings={"enos:maxPairsPerRequest": 2})
    names = [f"LastRecordAppender_{i}" for i in range(4)]
    for name in names:
        fill(sim, name)
    start = threading.Barrier(len(names))

    def reset(name: str) -> Any:
        start.wait(timeout=10)
        return h.engine.up(name, h.inputs(stage_instance_name=name))

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        plans = list(pool.map(reset, names))

    assert [plan.op for plan in plans] == ["create"] * 4
    assert sim.tokens_issued == 1
    log = sim.requests
    assert [e["operation"] for e in log].count("token") == 1
    lists = [e for e in log if e["operation"] == "list"]
    assert len(lists) == 4
    # The host really ran resets at once: status checks were in flight together.
    spans = sorted((e["time"] - e["duration_ms"] / 1000, e["time"]) for e in lists)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    for name, plan in zip(names, plans, strict=True):
        # 2 assets x 2 points at 2 pairs per request: 2 deletes of 1 asset x 2 points per reset.
        assert sorted(c for c in calls(sim) if c[2] == name) == [delete(name, 1, 2)] * 2
        assert plan.outputs["stage_instance_name"] == name
        assert plan.outputs["request_count"] == 2
        assert pairs(sim, name) == {("a1", "p3"), ("a2", "p3"), ("a3", "p1"), ("a3", "p2"), ("a3", "p3")}

    assert len(log) == 1 + 4 + 8
    assert wait_until(lambda: h.host.stderr.count("enos: ") >= len(log))
    lines = [line for line in h.host.stderr.splitlines() if line.startswith("enos: ")]
    assert len(lines) == len(log)  # one whole line per request, none interleaved
    for entry in log:
        if entry["operation"] == "token":
            assert sum("Get access token" in line for line in lines) == 1
        else:
            assert sum(entry["request_id"] in line for line in lines) == 1


def test_a_failed_request_also_prints_its_progress_line(hosted: HostedProvider, stage: str) -> None:
    sim = hosted.simulator
    with pytest.raises(HostError, match="61106"):
        up(hosted, "failed-line", stage, pipeline_id="pl-other-org", require_paused=False)
    (failed,) = [e for e in sim.requests if e["operation"] == "delete"]
    assert failed["code"] == 61106
    assert wait_until(lambda: failed["request_id"] in hosted.host.stderr)
    (line,) = [line for line in hosted.host.stderr.splitlines() if stage in line]
    assert "| failed |" in line and failed["request_id"] in line and "61106" in line


def test_stopping_a_host_closes_its_pipes(host_factory: HostFactory, module_simulator: Simulator) -> None:
    h = host_factory(module_simulator)
    h.stop()
    process = h.host.process
    assert process is not None and process.poll() is not None
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.closed and process.stderr.closed
