"""Pausing and starting pipelines through the client, against a simulator whose transitions take time."""

from __future__ import annotations

import pytest
import requests
import responses

from enos_pulumi.enos.errors import (
    AuthenticationError,
    OperationTimeoutError,
    PipelineStatusError,
    ServerError,
)
from enos_pulumi.enos.model import StageTarget
from enos_pulumi.enos.tokens import TOKEN_OPERATION
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_RUNNING_PIPELINE, SIM_STAGE
from tests.support.pause_rig import PauseRig
from tests.support.stubs import PIPELINES_URL, Harness, add_token, ok


def test_a_pause_waits_until_list_pipelines_says_paused(pause_rig: PauseRig) -> None:
    client = pause_rig.client()
    request_id = client.pause_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE)

    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "PAUSED"
    (transition,) = pause_rig.sim.transitions
    assert (transition["action"], transition["from"], transition["to"]) == ("pause", "RUNNING", "PAUSED")
    assert transition["request_id"] == request_id
    # It kept polling while the simulator still listed RUNNING (5 s of simulated time).
    assert sum(pause_rig.time.sleeps) >= 5.0
    waits = [e for e in pause_rig.events if e.operation == "Wait for pipeline status"]
    assert waits[0].outcome == "waiting" and "RUNNING, want PAUSED" in waits[0].detail
    assert waits[-1].outcome == "reached"
    lines = [e.describe() for e in pause_rig.events]
    assert any(line.startswith("enos: Operate Pipeline (pause) pipeline pl-running | ok") for line in lines)


def test_a_start_sends_its_body_and_waits_until_running(pause_rig: PauseRig) -> None:
    client = pause_rig.client()
    client.start_pipeline(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "cluster", 2500, {"cpu": 2, "memory": "4G"})

    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "RUNNING"
    (start,) = [e for e in pause_rig.log("start")]
    assert start["operate_body"] == {
        "executionMode": 1,
        "kafkaRate": 2500,
        "resourceConfig": {"cpu": 2, "memory": "4G"},
    }
    assert sum(pause_rig.time.sleeps) >= 3.0


def test_another_start_in_progress_is_asked_again(pause_rig: PauseRig) -> None:
    pause_rig.sim.error_code(61121, op="start", count=2)
    pause_rig.client().start_pipeline(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "standalone", 1000)
    starts = pause_rig.log("start")
    assert [e["code"] for e in starts] == [61121, 61121, 0]
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "RUNNING"


def test_an_illegal_start_is_not_retried(pause_rig: PauseRig) -> None:
    pause_rig.sim.error_code(61165, op="start")
    with pytest.raises(PipelineStatusError) as info:
        pause_rig.client().start_pipeline(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "standalone", 1000)
    assert info.value.code == 61165
    assert len(pause_rig.log("start")) == 1
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"


def test_a_start_refused_because_the_pipeline_already_runs_is_a_success(pause_rig: PauseRig) -> None:
    # A start whose answer was lost took effect; its retry is refused (61165). The pipeline runs, which
    # is what was asked: telling the user it is "left PAUSED" would be false.
    pause_rig.client().start_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "standalone", 1000)
    assert [e["code"] for e in pause_rig.log("start")] == [61165]


def test_a_pause_refused_on_its_first_answer_did_not_take_effect(pause_rig: PauseRig) -> None:
    # Not a lost answer: EnOS refused this pause (the pipeline is PAUSED by someone else, say).
    with pytest.raises(PipelineStatusError) as info:
        pause_rig.client().pause_pipeline(SIM_ORG_ID, SIM_PAUSED_PIPELINE)
    assert info.value.code == 61152
    assert [e["code"] for e in pause_rig.log("pause")] == [61152]


def test_a_lost_start_answer_is_not_reported_as_left_paused(mock: responses.RequestsMock, h: Harness) -> None:
    # The first start went through but its answer was lost (the connection dropped); the retry is
    # refused with 61165 because the pipeline already runs: the start succeeded.
    add_token(mock)
    start_url = "https://apim.example.com/streaming/v2.0/streaming/pipeline/pipe-1"
    mock.add(responses.POST, start_url, body=requests.exceptions.ConnectionError("reset by peer"))
    mock.add(responses.POST, start_url, json={"code": 61165, "msg": "cannot start", "requestId": "r2"})
    listing = {"count": 1, "pipelines": [{"pipelineId": "pipe-1", "status": "RUNNING"}]}
    mock.add(responses.GET, PIPELINES_URL, json=ok("r-list", data=listing))
    assert h.client().start_pipeline("o123", "pipe-1", "standalone", 1000) is None
    assert h.fake.sleeps  # the dropped answer was retried before the status was read


def test_a_pause_that_never_takes_effect_ends_at_the_operation_timeout(pause_rig: PauseRig) -> None:
    pause_rig.sim.no_effect("pause")
    client = pause_rig.client(operation_timeout=60.0)
    with pytest.raises(OperationTimeoutError) as info:
        client.pause_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE)
    text = str(info.value)
    assert "60 s (enos:operationTimeoutSeconds)" in text
    assert "still RUNNING, not PAUSED" in text
    assert 60.0 <= pause_rig.time.now <= 61.0


def test_a_wait_ends_at_once_on_a_status_it_cannot_leave(pause_rig: PauseRig) -> None:
    pause_rig.sim.set_pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "STOPPED")
    with pytest.raises(PipelineStatusError, match="became STOPPED while waiting for PAUSED"):
        pause_rig.client().wait_for_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "PAUSED")
    assert pause_rig.time.sleeps == []


@pytest.mark.parametrize(
    ("sim_auth", "client_auth"), [("bearer", "bearer"), ("any", "bearer"), ("any", "apim-signature")]
)
def test_both_auth_schemes_end_to_end(sim_auth: str, client_auth: str) -> None:
    rig = PauseRig(auth=sim_auth)
    try:
        rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1"], ["p1"])
        target = StageTarget(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)
        rig.client(auth_scheme=client_auth).delete_stage_state(target, ["a1"], ["p1"])
        assert rig.sim.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == set()
        assert rig.log("delete")[0]["auth"] == client_auth
    finally:
        rig.close()


def test_a_signature_client_is_refused_by_a_bearer_only_gateway() -> None:
    rig = PauseRig(auth="bearer")
    try:
        target = StageTarget(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)
        with pytest.raises(AuthenticationError) as info:
            rig.client(retry_deadline=0).delete_stage_state(target, ["a1"], ["p1"])
        assert info.value.http_status == 401
        assert "enos:authScheme" in str(info.value)
    finally:
        rig.close()


# -- a pause whose answer was lost may have landed; waits end on failures -----------------------------------


@pytest.mark.parametrize("kind", ["status", "code", "html"])
def test_a_pause_answered_with_a_server_failure_after_it_took_effect_is_waited_for(
    pause_rig: PauseRig, kind: str
) -> None:
    # EnOS paused the pipeline, the answer was a 503 (or 61199, or a proxy's 502 page); the retry is
    # refused (61152). The pause may have landed, so it is waited for rather than called refused.
    pause_rig.sim.answer_lost(kind, op="pause", status=503 if kind != "html" else 502)
    assert pause_rig.client().pause_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE) is None
    assert [e["code"] for e in pause_rig.log("pause")][-1] == 61152
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "PAUSED"


def test_a_pause_never_sent_for_want_of_a_token_did_not_land(pause_rig: PauseRig) -> None:
    # A 503 from the token service is a server failure too, but of a request that is not the pause: the
    # pause never went out, so it certainly did not take effect.
    pause_rig.sim.fail_with_status(503, op="token")
    with pytest.raises(ServerError) as info:
        pause_rig.client(retry_deadline=1.0).pause_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE)
    assert info.value.operation == TOKEN_OPERATION
    assert pause_rig.log("pause") == []


def test_a_start_that_ends_failed_ends_the_wait_at_once(pause_rig: PauseRig) -> None:
    pause_rig.sim.becomes("FAILED", op="start", count=1)
    client = pause_rig.client(operation_timeout=300.0)
    with pytest.raises(PipelineStatusError, match="became FAILED while waiting for RUNNING") as info:
        client.start_pipeline(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "standalone", 1000)
    assert info.value.context["status"] == "FAILED"
    assert pause_rig.time.now < 10.0  # the 3 s start, a poll or two: not the 300 s bound


@pytest.mark.parametrize("status", ["START_FAILED", "ERROR", "EXCEPTION"])
def test_a_wait_ends_on_any_failure_status_beyond_the_documented_four(
    pause_rig: PauseRig, status: str
) -> None:
    pause_rig.sim.set_pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE, status)
    with pytest.raises(PipelineStatusError, match=f"became {status} while waiting for RUNNING"):
        pause_rig.client().wait_for_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "RUNNING")
    assert pause_rig.time.sleeps == []


def test_an_unknown_status_that_is_no_failure_is_waited_through(pause_rig: PauseRig) -> None:
    # STARTING is not one of the four documented statuses: "not paused", and worth waiting through.
    pause_rig.sim.set_pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "STARTING")
    with pytest.raises(OperationTimeoutError, match="still STARTING, not RUNNING"):
        pause_rig.client(operation_timeout=20.0).wait_for_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "RUNNING")


def test_a_start_that_falls_back_to_paused_ends_the_wait(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    for status in ("PAUSED", "STARTING", "PAUSED"):
        listing = {"count": 1, "pipelines": [{"pipelineId": "pipe-1", "status": status}]}
        mock.add(responses.GET, PIPELINES_URL, json=ok("r-list", data=listing))
    with pytest.raises(PipelineStatusError, match="went back to PAUSED while waiting for RUNNING"):
        h.client().wait_for_status("o123", "pipe-1", "RUNNING")
    assert len(h.fake.sleeps) == 2  # three looks, then it stopped
