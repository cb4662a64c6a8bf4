"""Operate Pipeline in the simulator: transitions that take time on the simulator's clock, refusals,
start's body, faults aimed at one action, and the log of it all (requests and transitions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from enos_pulumi.simulator import Fault, Simulator, parse_fault
from tests.support.fixtures_simulator import (
    SIM_ORG_ID,
    SIM_OTHER_PIPELINE,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_STAGE,
    START_BODY,
    FakeClock,
    SimApi,
)

Factory = Callable[..., Simulator]
RUNNING = SIM_RUNNING_PIPELINE


class Rig:
    """A simulator on a fake clock, with a client signing on that clock."""

    def __init__(self, factory: Factory, **options: Any) -> None:
        self.clock = FakeClock()
        self.sim = factory(clock=self.clock, **options)
        self.api = SimApi(self.sim, clock=self.clock)

    def ops(self, *names: str) -> list[dict[str, Any]]:
        return [e for e in self.sim.requests if e["operation"] in names]


@pytest.fixture
def rig(simulator_factory: Factory) -> Iterator[Rig]:
    made = Rig(simulator_factory, pause_seconds=5, start_seconds=3)
    yield made
    made.api.close()


def test_operate_pipeline_transitions_at_once_by_default(simulator: Simulator, sim_api: SimApi) -> None:
    assert sim_api.pause()["code"] == 0
    assert simulator.pipeline_status(SIM_ORG_ID, RUNNING) == "PAUSED"
    assert sim_api.start()["code"] == 0
    assert simulator.pipeline_status(SIM_ORG_ID, RUNNING) == "RUNNING"
    assert sim_api.operate(RUNNING, "stop").json()["code"] == 0
    assert simulator.pipeline_status(SIM_ORG_ID, RUNNING) == "STOPPED"
    assert sim_api.start(body={"executionMode": 0, "kafkaRate": 5})["code"] == 0
    assert sim_api.listed_status(RUNNING) == "RUNNING"
    assert [(t["action"], t["from"], t["to"]) for t in simulator.transitions] == [
        ("pause", "RUNNING", "PAUSED"),
        ("start", "PAUSED", "RUNNING"),
        ("stop", "RUNNING", "STOPPED"),
        ("start", "STOPPED", "RUNNING"),
    ]
    assert all(t["requested_at"] == t["effective_at"] for t in simulator.transitions)


def test_a_pause_takes_its_time_and_list_shows_the_old_status_meanwhile(rig: Rig) -> None:
    sim, api, clock = rig.sim, rig.api, rig.clock
    sim.set_pairs(SIM_ORG_ID, RUNNING, SIM_STAGE, ["a"], ["p"])
    t0 = clock.now
    pause = api.pause()
    assert pause["code"] == 0
    assert api.listed_status(RUNNING) == "RUNNING" and sim.pipeline_status(SIM_ORG_ID, RUNNING) == "RUNNING"
    # Still RUNNING, so the delete is refused: nothing may be deleted before the pause took effect.
    assert api.state("delete", "a", "p", pipeline=RUNNING).json()["data"] is False
    clock.now = t0 + 4.999
    assert api.listed_status(RUNNING) == "RUNNING"
    assert sim.transitions == []
    clock.now = t0 + 5
    assert api.listed_status(RUNNING) == "PAUSED"
    assert api.state("delete", "a", "p", pipeline=RUNNING).json()["data"] is True
    assert sim.transitions == [
        {
            "org_id": SIM_ORG_ID,
            "pipeline_id": RUNNING,
            "action": "pause",
            "from": "RUNNING",
            "to": "PAUSED",
            "requested_at": t0,
            "effective_at": t0 + 5,
            "request_id": pause["requestId"],
        }
    ]
    deletes = rig.ops("delete")
    assert [(e["pipeline_status"], e["deleted"]) for e in deletes] == [("RUNNING", False), ("PAUSED", True)]
    assert [e["sim_time"] for e in deletes] == [t0, t0 + 5]


def test_a_start_takes_its_time_and_refuses_other_operations_meanwhile(rig: Rig) -> None:
    sim, api, clock = rig.sim, rig.api, rig.clock
    t0 = clock.now
    assert api.start(SIM_PAUSED_PIPELINE)["code"] == 0
    assert api.listed_status(SIM_PAUSED_PIPELINE) == "PAUSED"
    again = api.start(SIM_PAUSED_PIPELINE)
    assert again["code"] == 61121 and "start in progress" in again["msg"]
    assert api.pause(SIM_PAUSED_PIPELINE)["code"] == 61152
    assert api.operate(SIM_PAUSED_PIPELINE, "stop").json()["code"] == 61152
    clock.now = t0 + 3
    assert api.listed_status(SIM_PAUSED_PIPELINE) == "RUNNING"
    assert [(t["action"], t["effective_at"]) for t in sim.transitions] == [("start", t0 + 3)]
    assert api.pause(SIM_PAUSED_PIPELINE)["code"] == 0  # accepted once the start is done


def test_a_start_while_a_pause_is_in_progress_is_61165(rig: Rig) -> None:
    assert rig.api.pause()["code"] == 0
    refused = rig.api.start()
    assert refused["code"] == 61165 and "RUNNING, pause in progress" in refused["msg"]
    rig.clock.now += 5
    assert rig.api.listed_status(RUNNING) == "PAUSED"
    assert rig.api.start()["code"] == 0


def test_set_pipeline_status_drops_an_operation_in_progress(rig: Rig) -> None:
    assert rig.api.pause()["code"] == 0
    rig.sim.set_pipeline_status(SIM_ORG_ID, RUNNING, "STOPPED")
    rig.clock.now += 60
    assert rig.sim.pipeline_status(SIM_ORG_ID, RUNNING) == "STOPPED" and rig.sim.transitions == []


@pytest.mark.parametrize(
    ("status", "action", "code"),
    [
        ("PAUSED", "pause", 61152),
        ("STOPPED", "pause", 61152),
        ("PUBLISHED", "pause", 61152),
        ("RUNNING", "start", 61165),
        ("STOPPED", "stop", 61152),
        ("PUBLISHED", "stop", 61152),
    ],
)
def test_illegal_transitions(
    simulator: Simulator, sim_api: SimApi, status: str, action: str, code: int
) -> None:
    simulator.add_pipeline(SIM_ORG_ID, "pl-x", status=status)
    reply = sim_api.operate("pl-x", action, START_BODY if action == "start" else None).json()
    assert reply["code"] == code and status in reply["msg"]
    assert simulator.pipeline_status(SIM_ORG_ID, "pl-x") == status and simulator.transitions == []


@pytest.mark.parametrize("status", ["PAUSED", "STOPPED", "PUBLISHED"])
def test_start_from_every_startable_status(simulator: Simulator, sim_api: SimApi, status: str) -> None:
    simulator.add_pipeline(SIM_ORG_ID, "pl-x", status=status)
    assert sim_api.start("pl-x")["code"] == 0
    assert simulator.pipeline_status(SIM_ORG_ID, "pl-x") == "RUNNING"


def test_operate_on_a_missing_or_foreign_pipeline_or_another_action(
    simulator: Simulator, sim_api: SimApi
) -> None:
    assert sim_api.operate("pl-nope", "pause").json()["code"] == 61108
    assert sim_api.operate(SIM_OTHER_PIPELINE, "pause").json()["code"] == 61108
    assert sim_api.operate(SIM_PAUSED_PIPELINE, "release").json()["code"] == 61102
    assert simulator.requests[-1]["operation"] == "operate" and simulator.requests[-1]["action"] == "release"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (None, "body"),
        (b"[1]", "body"),
        ({"kafkaRate": 1}, "executionMode"),
        ({"executionMode": 2, "kafkaRate": 1}, "executionMode"),
        ({"executionMode": True, "kafkaRate": 1}, "executionMode"),
        ({"executionMode": "1", "kafkaRate": 1}, "executionMode"),
        ({"executionMode": 1}, "kafkaRate"),
        ({"executionMode": 1, "kafkaRate": 0}, "kafkaRate"),
        ({"executionMode": 1, "kafkaRate": -5}, "kafkaRate"),
        ({"executionMode": 1, "kafkaRate": "1000"}, "kafkaRate"),
        (b'{"executionMode": 1, "kafkaRate": NaN}', "body"),
        ({"executionMode": 0, "kafkaRate": 1, "resourceConfig": "big"}, "resourceConfig"),
        ({"executionMode": 0, "kafkaRate": 1, "resourceConfig": None}, "resourceConfig"),
        ({"executionMode": 0, "kafkaRate": 1, "resourceConfig": [1]}, "resourceConfig"),
    ],
)
def test_start_needs_the_documented_body(
    simulator: Simulator, sim_api: SimApi, body: Any, names: str
) -> None:
    reply = sim_api.operate(SIM_PAUSED_PIPELINE, "start", body).json()
    assert reply["code"] == 61102 and names in reply["msg"]
    assert simulator.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"


def test_start_with_resource_config_is_logged_with_its_body(simulator: Simulator, sim_api: SimApi) -> None:
    body = {"executionMode": 0, "kafkaRate": 250, "resourceConfig": {"cpu": 2, "memory": "4g"}}
    assert sim_api.start(SIM_PAUSED_PIPELINE, body)["code"] == 0
    entry = simulator.requests[-1]
    assert (entry["operation"], entry["action"], entry["operate_body"]) == ("start", "start", body)
    assert (entry["pipeline_id"], entry["org_id"], entry["pipeline_status"]) == (
        SIM_PAUSED_PIPELINE,
        SIM_ORG_ID,
        "PAUSED",
    )


# -- faults aimed at one action -------------------------------------------------------------------------


def test_a_start_fault_spares_the_pause(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.add_fault("code=61165,op=start,count=1")
    assert sim_api.pause()["code"] == 0
    failed = sim_api.start()
    assert failed["code"] == 61165
    assert simulator.pipeline_status(SIM_ORG_ID, RUNNING) == "PAUSED"
    assert sim_api.start()["code"] == 0
    log = [(e["operation"], e["code"], e["fault"]) for e in simulator.requests if e["action"]]
    assert log == [("pause", 0, None), ("start", 61165, "code"), ("start", 0, None)]


def test_a_61121_burst_on_start(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.start_in_progress(count=2)
    assert sim_api.pause()["code"] == 0
    assert [sim_api.start()["code"] for _ in range(3)] == [61121, 61121, 0]
    assert simulator.pipeline_status(SIM_ORG_ID, RUNNING) == "RUNNING"
    assert [e["pipeline_status"] for e in simulator.requests if e["operation"] == "start"] == ["PAUSED"] * 3


def test_a_dropped_start_leaves_the_pipeline_paused(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.drop_connections(op="start", count=1)
    assert sim_api.pause()["code"] == 0
    with pytest.raises(requests.ConnectionError):
        sim_api.start()
    assert simulator.pipeline_status(SIM_ORG_ID, RUNNING) == "PAUSED"
    dropped = simulator.requests[-1]
    assert (dropped["operation"], dropped["status"], dropped["fault"]) == ("start", None, "drop")


def test_an_operate_fault_still_matches_every_action(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.add_fault("code=61121,op=operate,count=2")  # a spec written before per-action names
    assert sim_api.pause()["code"] == 61121
    assert sim_api.pause()["code"] == 61121
    assert sim_api.pause()["code"] == 0


def test_a_pause_that_never_takes_effect(rig: Rig) -> None:
    sim, api = rig.sim, rig.api
    sim.set_pairs(SIM_ORG_ID, RUNNING, SIM_STAGE, ["a"], ["p"])
    sim.no_effect("pause")
    assert api.pause()["code"] == 0
    rig.clock.now += 3600
    assert api.listed_status(RUNNING) == "RUNNING" and sim.transitions == []
    assert api.state("delete", "a", "p", pipeline=RUNNING).json()["data"] is False
    assert sim.stage_pairs(SIM_ORG_ID, RUNNING, SIM_STAGE) == {("a", "p")}
    pause = rig.ops("pause")[0]
    assert (pause["code"], pause["fault"], pause["pipeline_status"]) == (0, "no-effect", "RUNNING")
    # Until cleared: a second pause is answered 0 too and still does nothing; a start is unaffected.
    assert api.pause()["code"] == 0 and api.listed_status(RUNNING) == "RUNNING"
    assert api.start(SIM_PAUSED_PIPELINE)["code"] == 0


def test_a_no_effect_fault_still_refuses_an_illegal_transition(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.no_effect("start", count=1)
    assert sim_api.start()["code"] == 61165  # RUNNING cannot start, fault or not


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no-effect", Fault("no-effect", op="operate")),
        ("no-effect,op=pause,count=1", Fault("no-effect", op="pause", count=1)),
        ("61121,op=start,count=3", Fault("code", code=61121, op="start", count=3)),
        ("drop,op=stop", Fault("drop", op="stop")),
    ],
)
def test_parse_operate_faults(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize("op", ["pause", "start", "stop", "operate"])
def test_an_operate_fault_matches_each_action_and_an_action_fault_only_its_own(op: str) -> None:
    assert Fault("code", code=61121, op="operate").matches(op)
    assert Fault("code", code=61121, op="start").matches(op) == (op == "start")


def test_no_effect_is_for_operate_pipeline_only() -> None:
    with pytest.raises(ValueError, match="no-effect"):
        parse_fault("no-effect,op=delete")


@pytest.mark.parametrize(
    ("kind", "http_status", "code"), [("status", 503, None), ("code", 200, 61199), ("html", 502, None)]
)
def test_an_answer_lost_after_the_pause_took_effect(
    simulator: Simulator, sim_api: SimApi, kind: str, http_status: int, code: int | None
) -> None:
    # EnOS paused the pipeline; what the client reads is a failure (a 5xx from the gateway, 61199).
    simulator.answer_lost(kind, op="pause", status=http_status if kind != "code" else 503, code=61199)
    reply = sim_api.operate(RUNNING, "pause")
    assert reply.status_code == http_status
    if code is not None:
        assert reply.json()["code"] == code
    assert simulator.pipeline_status(SIM_ORG_ID, RUNNING) == "PAUSED"
    (transition,) = simulator.transitions
    assert (transition["action"], transition["to"]) == ("pause", "PAUSED")
    assert simulator.requests[-1]["fault"] == f"{kind} after"
    assert sim_api.pause()["code"] == 61152  # the fault was for one request: a retry is refused


def test_a_dropped_answer_after_the_start_took_effect(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.answer_lost("drop", op="start")
    with pytest.raises(requests.ConnectionError):
        sim_api.start(SIM_PAUSED_PIPELINE)
    assert simulator.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "RUNNING"


def test_a_start_that_becomes_failed(rig: Rig) -> None:
    rig.sim.becomes("FAILED", op="start", count=1)
    assert rig.api.start(SIM_PAUSED_PIPELINE)["code"] == 0
    assert rig.api.listed_status(SIM_PAUSED_PIPELINE) == "PAUSED"  # 3 s to take effect
    rig.clock.now += 3
    assert rig.api.listed_status(SIM_PAUSED_PIPELINE) == "FAILED"
    assert [(t["action"], t["from"], t["to"]) for t in rig.sim.transitions] == [("start", "PAUSED", "FAILED")]
    # Start's rules know nothing of FAILED: it is refused, like any status start may not leave.
    assert rig.api.start(SIM_PAUSED_PIPELINE)["code"] == 61165


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("becomes=FAILED,op=start", Fault("becomes", op="start", to="FAILED")),
        ("status=503,op=pause,after=true", Fault("status", op="pause", status=503, after=True)),
        ("61199,op=pause,after=1,count=1", Fault("code", code=61199, op="pause", after=True, count=1)),
    ],
)
def test_parse_effect_faults(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("becomes,op=start", "needs the status"),
        ("becomes=FAILED,op=delete", "'becomes' fault targets"),
        ("latency=5,after=true", "'after' applies to"),
        ("status=503,after=maybe", "expected true or false"),
    ],
)
def test_bad_effect_faults_are_refused(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_fault(spec)


def test_transitions_are_served_by_the_admin_endpoint(rig: Rig) -> None:
    assert rig.api.pause()["code"] == 0
    admin = rig.sim.base_url + "/__admin/"
    assert requests.get(admin + "transitions", timeout=5).json() == {"transitions": []}
    rig.clock.now += 5
    listed = requests.get(admin + "transitions", timeout=5).json()["transitions"]
    assert [(t["action"], t["to"]) for t in listed] == [("pause", "PAUSED")]
    rig.sim.clear_log()
    assert rig.sim.transitions == [] and rig.sim.requests == []
