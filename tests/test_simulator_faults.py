"""Fault injection in the simulator over real sockets: latency, status bursts, dropped connections, HTML
pages, data:false, EnOS codes, expired tokens; targeting by operation; fault specs."""

from __future__ import annotations

import time

import pytest
import requests

from enos_pulumi.simulator import Fault, Simulator, parse_fault
from tests.support.fixtures_simulator import (
    LIST_PATH,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_STAGE,
    STATE_PATH,
    SimApi,
)

Api = SimApi


@pytest.fixture
def api(sim_api: SimApi) -> SimApi:
    return sim_api


def test_latency_fault_delays_only_the_targeted_requests(simulator: Simulator, api: Api) -> None:
    api.token  # noqa: B018 - fetch the token before timing
    simulator.add_latency(150, op="delete", count=1)
    started = time.perf_counter()
    assert api.state("delete", "a", "p").json()["data"] is True
    assert time.perf_counter() - started >= 0.14
    assert simulator.faults == []
    log = simulator.requests
    assert log[-1]["fault"] == "latency" and log[-1]["duration_ms"] >= 140


def test_global_latency(simulator: Simulator, api: Api) -> None:
    simulator.latency_ms = 60
    started = time.perf_counter()
    api.post_token(api.token_body())
    assert time.perf_counter() - started >= 0.055


def test_status_burst_with_retry_after(simulator: Simulator, api: Api) -> None:
    api.token  # noqa: B018
    simulator.fail_with_status(429, op="delete", count=2, retry_after=1)
    for _ in range(2):
        reply = api.state("delete", "a", "p")
        assert reply.status_code == 429 and reply.headers["Retry-After"] == "1"
        assert reply.json()["msg"] == "API rate limit exceeded"
    assert api.state("delete", "a", "p").json()["data"] is True
    simulator.fail_with_status(503, count=1)
    reply = api.state("get", "a", "p")
    assert reply.status_code == 503 and "Retry-After" not in reply.headers


def test_dropped_connection_raises_connection_error(simulator: Simulator, api: Api) -> None:
    api.token  # noqa: B018
    simulator.drop_connections(op="delete", count=1)
    with pytest.raises(requests.ConnectionError):
        api.state("delete", "a", "p")
    assert api.state("delete", "a", "p").json()["data"] is True
    dropped = [e for e in simulator.requests if e["fault"] == "drop"]
    assert len(dropped) == 1 and dropped[0]["status"] is None and dropped[0]["code"] is None
    assert (dropped[0]["pipeline_id"], dropped[0]["asset_count"], dropped[0]["point_count"]) == (
        SIM_PAUSED_PIPELINE,
        1,
        1,
    )


def test_html_error_page(simulator: Simulator, api: Api) -> None:
    simulator.html_error(502, op="token", count=1)
    reply = api.post_token(api.token_body())
    assert reply.status_code == 502 and reply.headers["Content-Type"].startswith("text/html")
    assert reply.text.startswith("<html>") and "502 Bad Gateway" in reply.text
    with pytest.raises(ValueError):
        reply.json()
    assert api.post_token(api.token_body()).json()["status"] == 0


def test_data_false_fault_deletes_nothing(simulator: Simulator, api: Api) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a"], ["p"])
    simulator.answer_data_false(count=1)
    assert api.state("delete", "a", "p").json() == {
        "code": 0,
        "msg": " OK",
        "requestId": simulator.requests[-1]["request_id"],
        "data": False,
    }
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == {("a", "p")}
    assert api.state("delete", "a", "p").json()["data"] is True
    logged = [(e["fault"], e["deleted"], e["pipeline_status"]) for e in simulator.requests[-2:]]
    assert logged == [("data-false", False, "PAUSED"), (None, True, "PAUSED")]


def test_error_code_faults(simulator: Simulator, api: Api) -> None:
    simulator.error_code(61199, op="delete", count=1, msg="boom")
    reply = api.state("delete", "a", "p").json()
    assert reply["code"] == 61199 and reply["msg"] == "boom"
    simulator.start_in_progress(count=1)
    reply = api.operate(SIM_PAUSED_PIPELINE, "start", {"executionMode": 1, "kafkaRate": 1}).json()
    assert reply["code"] == 61121
    assert simulator.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"
    simulator.error_code(1005, op="token", count=1)
    assert api.post_token(api.token_body()).json()["status"] == 1005


def test_a_business_code_fault_without_op_spares_the_token_service(simulator: Simulator, api: Api) -> None:
    simulator.add_fault("61199,count=1")
    assert api.post_token(api.token_body()).json()["status"] == 0
    assert api.state("delete", "a", "p").json()["code"] == 61199


def test_service_faults_do_not_fire_for_unauthenticated_requests(simulator: Simulator, api: Api) -> None:
    simulator.error_code(61199, op="delete", count=1)
    bad = api.call("POST", STATE_PATH, [("action", "delete"), ("orgId", SIM_ORG_ID)], {}, secret="nope")
    assert bad.status_code == 401
    assert api.state("delete", "a", "p").json()["code"] == 61199


def test_expire_fault_makes_the_next_call_see_an_expired_token(simulator: Simulator, api: Api) -> None:
    api.token  # noqa: B018
    simulator.add_fault("expire,op=delete,count=1")
    reply = api.state("delete", "a", "p")
    assert reply.status_code == 401 and reply.json()["code"] == 1203
    assert api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)]).json()["code"] == 1203


def test_fault_targets_only_its_operation(simulator: Simulator, api: Api) -> None:
    simulator.fail_with_status(503, op="delete")  # until cleared
    assert api.post_token(api.token_body()).json()["status"] == 0
    assert api.list(1, 10).status_code == 200
    assert api.state("delete", "a", "p").status_code == 503
    assert api.state("delete", "a", "p").status_code == 503
    simulator.clear_faults()
    assert api.state("delete", "a", "p").status_code == 200


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("latency=200", Fault("latency", latency_ms=200)),
        ("latency,ms=5,op=get", Fault("latency", latency_ms=5, op="get")),
        ("status=429,retry-after=2,count=3", Fault("status", status=429, retry_after="2", count=3)),
        ("status", Fault("status", status=503)),
        ("drop,op=delete,count=1", Fault("drop", op="delete", count=1)),
        ("data-false", Fault("data-false", op="delete")),
        ("expire,count=1", Fault("expire", count=1)),
        ("html", Fault("html", status=502)),
        ("html=504,retry-after=0.5", Fault("html", status=504, retry_after="0.5")),
        ("code=61199,msg=boom", Fault("code", code=61199, msg="boom")),
        ("61121,op=operate", Fault("code", code=61121, op="operate")),
    ],
)
def test_parse_fault(spec: str, expected: Fault) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "explode",
        "status=abc",
        "status=700",
        "drop=3",
        "code",
        "latency",
        "drop,op=nope",
        "drop,count=0",
        "drop,x",
        "bogus=1",
        "status=1e400",
        "status=²",
        "latency=inf",
        "latency=nan",
        "drop,count=1e400",
        "drop,count=1.5",
        "status,retry-after=inf",
    ],
)
def test_parse_fault_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(spec)
