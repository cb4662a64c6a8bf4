"""The local EnOS simulator's API behaviour, exercised over real sockets with ``requests`` and auth.py's
signing: token service, signatures, stage state, List Pipelines, the request log and seeds.

Elsewhere: faults (test_simulator_faults.py), pipelines and transitions (test_simulator_pipelines.py),
bearer auth (test_simulator_auth.py), the HTTP layer under hostile input (test_simulator_http.py), the
admin endpoint (test_simulator_admin.py), the command line (test_simulator_cli.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from enos_pulumi.simulator import SeedError, Simulator, demo_seed
from tests.support.fixtures_simulator import (
    LIST_PATH,
    REFRESH_PATH,
    SIM_ORG_ID,
    SIM_OTHER_ORG_ID,
    SIM_OTHER_PIPELINE,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
    STATE_PATH,
    TOKEN_PATH,
    FakeClock,
    SimApi,
)

Factory = Callable[..., Simulator]
Api = SimApi


@pytest.fixture
def api(sim_api: SimApi) -> SimApi:
    return sim_api


def pairs(assets: Iterable[str], points: Iterable[str]) -> set[tuple[str, str]]:
    points = list(points)
    return {(a, p) for a in assets for p in points}


# -- token service -------------------------------------------------------------------------------------


def test_token_is_issued_with_the_documented_reply(simulator: Simulator, api: Api) -> None:
    reply = api.post_token(api.token_body())
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == 0 and body["msg"] == "SUCCESS" and body["business"] == "apim-token-service"
    assert len(body["data"]["accessToken"]) >= 20 and body["data"]["expire"] == 7200
    assert "code" not in body
    assert simulator.tokens_issued == 1


def test_token_lifetime_is_configurable(simulator_factory: Factory) -> None:
    api = Api(simulator_factory(token_lifetime=60))
    assert api.post_token(api.token_body()).json()["data"]["expire"] == 60


def test_replayed_encryption_is_rejected(simulator: Simulator, api: Api) -> None:
    body = api.token_body()
    assert api.post_token(body).json()["status"] == 0
    replay = api.post_token(body)
    assert replay.status_code == 200 and replay.json()["status"] == 1001
    assert simulator.tokens_issued == 1


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda b: {**b, "encryption": "0" * 64}, 1003),
        (lambda b: {**b, "appKey": "no-such-app"}, 1002),
        (lambda b: {k: v for k, v in b.items() if k != "encryption"}, 1202),
        (lambda b: {**b, "appKey": ""}, 1202),
        (lambda b: {**b, "timestamp": "yesterday"}, 1004),
        (lambda b: {**b, "appKey": 12}, 1004),
        (lambda b: [b], 1004),
    ],
    ids=[
        "wrong-encryption",
        "unknown-app",
        "missing-field",
        "empty-field",
        "bad-timestamp",
        "bad-type",
        "array",
    ],
)
def test_token_refusals(simulator: Simulator, api: Api, mutate: Callable[[Any], Any], status: int) -> None:
    reply = api.post_token(mutate(api.token_body()))
    assert reply.status_code == 200
    assert reply.json()["status"] == status and reply.json()["data"] is None
    assert simulator.tokens_issued == 0


def test_token_request_body_that_is_not_json_is_1004(api: Api) -> None:
    reply = api.session.post(api.base + TOKEN_PATH, data=b"appKey=x", timeout=5)
    assert reply.json()["status"] == 1004


def test_refresh_replaces_the_token(simulator: Simulator, api: Api) -> None:
    old = api.token
    reply = api.post_token({**api.token_body(), "accessToken": old}, REFRESH_PATH).json()
    assert reply["status"] == 0
    new = reply["data"]["accessToken"]
    assert new != old and simulator.tokens_issued == 2
    assert api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)], token=new).json()["code"] == 0
    assert api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)], token=old).json()["code"] == 1203


def test_refresh_of_an_unknown_token_fails_with_1204(api: Api) -> None:
    reply = api.post_token({**api.token_body(), "accessToken": "not-a-token"}, REFRESH_PATH).json()
    assert reply["status"] == 1204


# -- signature checks ----------------------------------------------------------------------------------


def test_signed_delete_removes_exactly_the_named_pairs(simulator: Simulator, api: Api) -> None:
    assets, points = ["inv01", "inv02", "inv03"], ["p1", "p2", "p3"]
    other_stage = "LastRecordAppender_2"
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, points)
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, other_stage, assets, points)
    simulator.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, assets, points)
    simulator.set_pairs(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE, assets, points)

    reply = api.state("delete", "inv01,inv02", "p1,p2")

    assert reply.status_code == 200
    body = reply.json()
    assert body["code"] == 0 and body["data"] is True and body["msg"] == " OK"
    assert len(body["requestId"]) == 32
    expected = pairs(assets, points) - pairs(["inv01", "inv02"], ["p1", "p2"])
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == expected
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, other_stage) == pairs(assets, points)
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == pairs(assets, points)
    assert simulator.stage_pairs(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE) == pairs(assets, points)


def test_deleting_pairs_without_state_still_succeeds(simulator: Simulator, api: Api) -> None:
    reply = api.state("delete", "nothing-here", "p1").json()
    assert reply["code"] == 0 and reply["data"] is True
    assert simulator.pair_count() == 0


def test_query_order_does_not_matter_because_the_server_sorts(simulator: Simulator, api: Api) -> None:
    body = {
        "pipelineId": SIM_PAUSED_PIPELINE,
        "stageInstanceName": SIM_STAGE,
        "assetIds": "a",
        "pointIds": "p",
    }
    reply = api.call("POST", STATE_PATH, [("orgId", SIM_ORG_ID), ("action", "delete")], body)
    assert reply.status_code == 200 and reply.json()["data"] is True


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"secret": "wrong-secret"}, "signature mismatch"),
        ({"sign_query": [("action", "delete"), ("orgId", "o-elsewhere")]}, "signature mismatch"),
        ({"sign_body": b"{}"}, "signature mismatch"),
        ({"ts_offset_ms": -16 * 60 * 1000}, "timestamp out of range"),
        ({"ts_offset_ms": 16 * 60 * 1000}, "timestamp out of range"),
        ({"token": "forged-token"}, "unknown access token"),
    ],
    ids=["wrong-secret", "tampered-query", "tampered-body", "stale", "future", "unknown-token"],
)
def test_bad_credentials_get_401(simulator: Simulator, api: Api, kwargs: dict[str, Any], msg: str) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a"], ["p"])
    body = {
        "pipelineId": SIM_PAUSED_PIPELINE,
        "stageInstanceName": SIM_STAGE,
        "assetIds": "a",
        "pointIds": "p",
    }
    kwargs = dict(kwargs)
    if "ts_offset_ms" in kwargs:
        # Computed now, not when the tests were collected: a long suite would bring it back in the window.
        kwargs["ts"] = int(time.time() * 1000) + kwargs.pop("ts_offset_ms")
    reply = api.call("POST", STATE_PATH, [("action", "delete"), ("orgId", SIM_ORG_ID)], body, **kwargs)
    assert reply.status_code == 401
    assert reply.json()["msg"] == msg and "code" not in reply.json()
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == {("a", "p")}


def test_missing_signature_headers_get_401(api: Api) -> None:
    reply = api.session.get(api.base + LIST_PATH, params={"orgId": SIM_ORG_ID}, timeout=5)
    assert reply.status_code == 401 and "missing" in reply.json()["msg"]


def test_timestamp_just_inside_the_window_is_accepted(api: Api) -> None:
    ts = int(time.time() * 1000) - 14 * 60 * 1000
    assert api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)], ts=ts).json()["code"] == 0


def test_token_expires_after_its_lifetime(simulator_factory: Factory) -> None:
    clock = FakeClock()
    api = Api(simulator_factory(clock=clock, token_lifetime=100), clock=clock)
    assert api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)]).status_code == 200
    clock.now += 101
    reply = api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)])
    assert reply.status_code == 401
    assert reply.json()["code"] == 1203 and reply.json()["msg"] == "access token expired"
    assert len(reply.json()["requestId"]) == 32


def test_expire_tokens_now(simulator: Simulator, api: Api) -> None:
    assert api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)]).status_code == 200
    assert simulator.expire_tokens() == 1
    reply = api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)])
    assert reply.status_code == 401 and reply.json()["code"] == 1203
    api._token = None  # a fresh token works again
    assert api.call("GET", LIST_PATH, [("orgId", SIM_ORG_ID)]).status_code == 200


# -- stage state errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"stageInstanceName": SIM_STAGE, "assetIds": "a", "pointIds": "p"},
        {"pipelineId": SIM_PAUSED_PIPELINE, "stageInstanceName": SIM_STAGE, "assetIds": "a"},
        {
            "pipelineId": SIM_PAUSED_PIPELINE,
            "stageInstanceName": SIM_STAGE,
            "assetIds": ["a"],
            "pointIds": "p",
        },
        {"pipelineId": SIM_PAUSED_PIPELINE, "stageInstanceName": SIM_STAGE, "assetIds": "", "pointIds": "p"},
        {
            "pipelineId": SIM_PAUSED_PIPELINE,
            "stageInstanceName": SIM_STAGE,
            "assetIds": "a,,b",
            "pointIds": "p",
        },
        b"not json",
        [1, 2],
    ],
    ids=["no-pipeline", "no-points", "list-not-string", "empty", "empty-id", "not-json", "array"],
)
def test_invalid_stage_state_body_is_61102(api: Api, body: Any) -> None:
    for action in ("delete", "get"):
        reply = api.call("POST", STATE_PATH, [("action", action), ("orgId", SIM_ORG_ID)], body)
        assert reply.status_code == 200 and reply.json()["code"] == 61102


@pytest.mark.parametrize("query", [[("action", "delete")], [("action", "purge"), ("orgId", SIM_ORG_ID)]])
def test_missing_org_or_bad_action_is_61102(api: Api, query: list[tuple[str, str]]) -> None:
    body = {
        "pipelineId": SIM_PAUSED_PIPELINE,
        "stageInstanceName": SIM_STAGE,
        "assetIds": "a",
        "pointIds": "p",
    }
    assert api.call("POST", STATE_PATH, query, body).json()["code"] == 61102


def test_too_many_pairs_is_61105(simulator_factory: Factory) -> None:
    sim = simulator_factory(pair_limit=6)
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1", "a2", "a3"], ["p1", "p2", "p3"])
    api = Api(sim)
    assert api.state("delete", "a1,a2,a3", "p1,p2,p3").json()["code"] == 61105
    assert api.state("get", "a1,a2,a3", "p1,p2,p3").json()["code"] == 61105
    assert len(sim.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)) == 9
    assert api.state("delete", "a1,a2", "p1,p2,p3").json()["data"] is True  # exactly at the limit


@pytest.mark.parametrize(
    ("pipeline", "org"),
    [("pl-nope", SIM_ORG_ID), (SIM_OTHER_PIPELINE, SIM_ORG_ID), (SIM_OTHER_PIPELINE, SIM_OTHER_ORG_ID)],
    ids=["unknown", "other-orgs-pipeline", "org-without-privilege"],
)
def test_unknown_or_foreign_pipeline_is_61106(
    simulator: Simulator, api: Api, pipeline: str, org: str
) -> None:
    simulator.set_pairs(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE, ["a"], ["p"])
    for action in ("delete", "get"):
        reply = api.state(action, "a", "p", pipeline=pipeline, org=org).json()
        assert reply["code"] == 61106 and reply["msg"] == "Wrong pipelineId or OU has no privilege"
    assert simulator.stage_pairs(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE) == {("a", "p")}


@pytest.mark.parametrize(
    "stage", ["StreamJoiner_1", "Fixedtimewindowaggregator_1", "_FixedTimeWindowAggregator"]
)
def test_unsupported_stage_is_61107(api: Api, stage: str) -> None:
    assert api.state("delete", "a", "p", stage=stage).json()["code"] == 61107


@pytest.mark.parametrize(
    "stage",
    [
        "LastRecordAppender_1",
        "LastChangedRecordAppender_1",
        "LatestRecordMerger_1",
        "RecordCapturer_1",
        "LatePointTagger_1",
        "FixedTimeWindowAggregator_1",
        "SlidingTimeWindowAggregator_1",
    ],
)
def test_every_documented_stage_type_is_supported(api: Api, stage: str) -> None:
    assert api.state("delete", "a", "p", stage=stage).json()["code"] == 0


def test_delete_on_a_running_pipeline_answers_data_false(simulator: Simulator, api: Api) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, ["a"], ["p"])
    reply = api.state("delete", "a", "p", pipeline=SIM_RUNNING_PIPELINE).json()
    assert reply["code"] == 0 and reply["data"] is False
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == {("a", "p")}


def test_paused_requirement_can_be_switched_off(simulator: Simulator, api: Api) -> None:
    simulator.require_paused = False
    simulator.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, ["a"], ["p"])
    assert api.state("delete", "a", "p", pipeline=SIM_RUNNING_PIPELINE).json()["data"] is True
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == set()


# -- get stage state -----------------------------------------------------------------------------------


def test_get_returns_items_for_pairs_with_state(simulator: Simulator, api: Api) -> None:
    simulator.set_state(
        SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, "a1", "p1", value=3.5, time=1_700_000_000_000
    )
    simulator.set_state(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, "a2", "p2", value={"sum": 1}, time=5)
    reply = api.state("get", "a1,a2,a3", "p1,p2", pipeline=SIM_RUNNING_PIPELINE).json()
    assert reply["code"] == 0
    assert reply["data"] == [
        {"assetId": "a1", "pointId": "p1", "time": 1_700_000_000_000, "value": 3.5},
        {"assetId": "a2", "pointId": "p2", "time": 5, "value": {"sum": 1}},
    ]


def test_get_can_answer_in_the_items_shape(simulator: Simulator, api: Api) -> None:
    simulator.get_format = "items"
    simulator.set_state(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, "a1", "p1", value=1, time=7)
    reply = api.state("get", "a1", "p1,p2").json()
    assert reply["data"] == {"items": [{"assetId": "a1", "pointId": "p1", "time": 7, "value": 1}]}


def test_get_after_delete_finds_nothing(simulator: Simulator, api: Api) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1", "a2"], ["p1", "p2"])
    assert api.state("delete", "a1,a2", "p1").json()["data"] is True
    items = api.state("get", "a1,a2", "p1,p2").json()["data"]
    assert {(i["assetId"], i["pointId"]) for i in items} == {("a1", "p2"), ("a2", "p2")}


# -- pipelines -----------------------------------------------------------------------------------------


def test_list_pipelines_pages(simulator: Simulator, api: Api) -> None:
    for n in range(23):
        simulator.add_pipeline(SIM_ORG_ID, f"pl-{n:02d}", status="STOPPED", name=f"Pipeline {n}")
    simulator.add_pipeline(SIM_ORG_ID, "pl-draft", status="PUBLISHED", released=False)
    seen: list[str] = []
    for page in (1, 2, 3):
        data = api.list(page, 10).json()["data"]
        assert data["count"] == 25
        seen += [p["pipelineId"] for p in data["pipelines"]]
    assert len(seen) == 25 and len(set(seen)) == 25 and "pl-draft" not in seen
    assert SIM_OTHER_PIPELINE not in seen
    assert api.list(4, 10).json()["data"] == {"count": 25, "pipelines": []}
    first = api.list(1, 2).json()["data"]["pipelines"]
    assert first == [
        {"pipelineId": SIM_PAUSED_PIPELINE, "pipelineName": SIM_PAUSED_PIPELINE, "status": "PAUSED"},
        {"pipelineId": SIM_RUNNING_PIPELINE, "pipelineName": SIM_RUNNING_PIPELINE, "status": "RUNNING"},
    ]
    assert api.list(1, 100, released="false").json()["data"]["count"] == 26


@pytest.mark.parametrize("page", [("0", "10"), ("1", "x"), ("1", "-3")])
def test_list_with_bad_paging_is_61102(api: Api, page: tuple[str, str]) -> None:
    query = [("orgId", SIM_ORG_ID), ("pageNo", page[0]), ("pageSize", page[1])]
    assert api.call("GET", LIST_PATH, query).json()["code"] == 61102


def test_unknown_path_is_404(simulator: Simulator, api: Api) -> None:
    reply = api.call("GET", "/streaming/v2.0/nothing", [("orgId", SIM_ORG_ID)])
    assert reply.status_code == 404
    assert simulator.requests[-1]["operation"] == "unknown"


# -- log, keep-alive, admin ----------------------------------------------------------------------------


def test_request_log_has_the_facts_and_no_secrets(simulator: Simulator, api: Api) -> None:
    token_body = api.token_body()
    token = api.post_token(token_body).json()["data"]["accessToken"]
    reply = api.call(
        "POST",
        STATE_PATH,
        [("action", "delete"), ("orgId", SIM_ORG_ID)],
        {
            "pipelineId": SIM_PAUSED_PIPELINE,
            "stageInstanceName": SIM_STAGE,
            "assetIds": "a,b",
            "pointIds": "p",
        },
        token=token,
    )
    log = simulator.requests
    assert [e["operation"] for e in log] == ["token", "delete"]
    entry = log[1]
    assert entry["request_id"] == reply.json()["requestId"]
    assert entry["method"] == "POST" and entry["path"] == STATE_PATH and entry["status"] == 200
    assert entry["code"] == 0 and entry["query"] == {"action": "delete", "orgId": SIM_ORG_ID}
    assert (entry["asset_count"], entry["point_count"]) == (2, 1)
    assert entry["pipeline_id"] == SIM_PAUSED_PIPELINE and entry["stage_instance_name"] == SIM_STAGE
    assert entry["connection"] == log[0]["connection"]  # the session kept the connection alive
    assert entry["duration_ms"] >= 0 and log[0]["code"] == 0
    assert (entry["action"], entry["pipeline_status"], entry["deleted"], entry["auth"]) == (
        "delete",
        "PAUSED",
        True,
        "apim-signature",
    )
    assert entry["operate_body"] is None and entry["fault"] is None
    assert entry["sim_time"] <= time.time() and log[0]["action"] is None
    assert set(entry) == {
        "time", "sim_time", "method", "path", "operation", "action", "query", "status", "code", "msg",
        "request_id", "org_id", "pipeline_id", "stage_instance_name", "asset_count", "point_count",
        "pipeline_status", "deleted", "operate_body", "auth", "connection", "duration_ms", "fault",
    }  # fmt: skip
    assert simulator.connections_opened == 1
    text = repr(log)
    for secret in (SIM_SECRET_KEY, token, token_body["encryption"], reply.request.headers["apim-signature"]):
        assert secret not in text
    simulator.clear_log()
    assert simulator.requests == []


def test_on_request_observer_and_copies(simulator: Simulator, api: Api) -> None:
    seen: list[dict[str, Any]] = []
    simulator.on_request = seen.append
    api.post_token(api.token_body())
    assert [e["operation"] for e in seen] == ["token"]
    simulator.requests[0]["operation"] = "changed"
    assert simulator.requests[0]["operation"] == "token"


# -- seeds ---------------------------------------------------------------------------------------------


def test_demo_seed_matches_the_documented_demo() -> None:
    with Simulator(seed=demo_seed()) as sim:
        assert sim.pipeline_status("o-demo", "pl-demo-paused") == "PAUSED"
        assert sim.pipeline_status("o-demo", "pl-demo-running") == "RUNNING"
        stage = sim.stage_pairs("o-demo", "pl-demo-paused", "FixedTimeWindowAggregator_1")
        assert stage == pairs([f"inv0{n}" for n in range(1, 5)], ["INV.GenActivePW", "INV.Temp", "INV.Volt"])
        api = Api(sim, key="demo-access-key", secret="demo-secret-key")
        assert api.state("delete", "inv01", "INV.Temp", pipeline="pl-demo-paused", org="o-demo").json()[
            "data"
        ]


def test_load_seed_from_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "seed.yaml"
    yaml_file.write_text(
        "apps:\n  - {accessKey: k1, secretKey: s1}\n"
        "pipelines:\n  - orgId: o1\n    pipelineId: p1\n    status: RUNNING\n    released: false\n"
        "    state:\n      RecordCapturer_1:\n        - {assets: 'a,b', points: [x], value: 2, time: 9}\n"
        "        - {assets: {prefix: inv, count: 3, width: 2}, points: [y]}\n"
    )
    json_file = tmp_path / "seed.json"
    json_file.write_text(json.dumps({"pipelines": [{"org": "o1", "id": "p2", "state": {}}]}))
    with Simulator() as sim:
        assert sim.load_seed(yaml_file) == {"apps": 1, "pipelines": 1, "pairs": 5}
        assert sim.load_seed(json_file) == {"apps": 0, "pipelines": 1, "pairs": 0}
        assert sim.pipeline_status("o1", "p1") == "RUNNING"
        assert sim.stage_pairs("o1", "p1", "RecordCapturer_1") == {
            ("a", "x"),
            ("b", "x"),
            ("inv01", "y"),
            ("inv02", "y"),
            ("inv03", "y"),
        }
        assert sim.pipeline_status("o1", "p2") == "PAUSED"


@pytest.mark.parametrize(
    "seed",
    [
        {"apps": [{"access_key": "k"}]},
        {"pipelines": [{"id": "p"}]},
        {"pipelines": [{"org": "o", "id": "p", "state": {"S_1": {"assets": "a"}}}]},
        {"pipelines": [{"org": "o", "id": "p", "state": {"S_1": {"assets": "a,,b", "points": "x"}}}]},
        {"pipelines": [{"org": "o", "id": "p", "released": "yes"}]},
        {
            "pipelines": [
                {"org": "o", "id": "p", "state": {"S_1": {"assets": "a", "points": "x", "value": {1}}}}
            ]
        },
        {
            "pipelines": [
                {"org": "o", "id": "p", "state": {"S_1": {"assets": "a", "points": "x", "value": 1e400}}}
            ]
        },
        {
            "pipelines": [
                {
                    "org": "o",
                    "id": "p",
                    "state": {"S_1": {"assets": {"prefix": "a", "count": 10**9}, "points": "x"}},
                }
            ]
        },
        {"pipelines": [{"org": "o-other", "id": SIM_PAUSED_PIPELINE}]},
        {"pipelines": {"id": "p"}},
        {"unknown": []},
    ],
)
def test_bad_seeds_are_refused_without_partial_changes(simulator: Simulator, seed: dict[str, Any]) -> None:
    before = simulator.summary()
    with pytest.raises(SeedError):
        simulator.seed({"apps": [{"access_key": "new", "secret_key": "s"}], **seed})
    assert simulator.summary() == before


def test_missing_or_invalid_seed_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with Simulator() as sim:
        with pytest.raises(SeedError, match="not valid JSON"):
            sim.load_seed(bad)
        with pytest.raises(SeedError, match="cannot read"):
            sim.load_seed(tmp_path / "missing.yaml")


# -- size and concurrency ------------------------------------------------------------------------------


def test_a_million_pair_seed_and_a_100000_pair_delete(simulator: Simulator, api: Api) -> None:
    # Speed is measured in benchmarks/ (as ratios); here only that big ones work.
    counts = simulator.seed(
        {
            "pipelines": [
                {
                    "org": SIM_ORG_ID,
                    "id": SIM_PAUSED_PIPELINE,
                    "state": {
                        SIM_STAGE: {
                            "assets": {"prefix": "a", "count": 1000},
                            "points": {"prefix": "p", "count": 1000},
                        }
                    },
                }
            ]
        }
    )
    assert counts["pairs"] == 1_000_000

    assets = ",".join(f"a{n}" for n in range(1, 201))
    points = ",".join(f"p{n}" for n in range(1, 501))
    assert api.state("delete", assets, points).json()["data"] is True  # 100,000 pairs
    assert simulator.pair_count() == 900_000
    remaining = api.state("get", "a1,a201", "p1,p501").json()["data"]
    assert [(i["assetId"], i["pointId"]) for i in remaining] == [
        ("a1", "p501"),
        ("a201", "p1"),
        ("a201", "p501"),
    ]


def test_concurrent_clients(simulator: Simulator) -> None:
    assets = [f"a{n}" for n in range(16)]
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, ["p1", "p2"])

    token = Api(simulator).token  # one token shared by all threads, as the client's TokenCache does

    def delete(asset: str) -> bool:
        client = Api(simulator)
        client._token = token
        try:
            return bool(client.state("delete", asset, "p1").json()["data"])
        finally:
            client.session.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(delete, assets))
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == pairs(assets, ["p2"])
    assert simulator.tokens_issued == 1 and len(simulator.requests) == 17


def test_the_simulators_own_signature_rule_matches_the_documented_vector() -> None:
    # The simulator does not import the client's signing code: this pins its own copy to docs/design.md.
    from enos_pulumi.simulator.gateway import expected_signature, sha256_hex

    body = (
        b'{"pipelineId":"p1","stageInstanceName":"LastRecordAppender_01",'
        b'"assetIds":"a1,a2","pointIds":"pt1,pt2"}'
    )
    query = [("orgId", "o123"), ("action", "delete")]
    signature = expected_signature("my-access-token", query, body, 1700000000000, "my-app-secret")
    assert signature == "9e7d57563fb3b4bdb2111e2c8521baeaee35ec9d41bb80434e49a5a3a4f13af9"
    encryption = sha256_hex(b"my-app-key1700000000000my-app-secret")
    assert encryption == "e6efa580db557dbce254465b1550c0b0898deb7048a398de289230d7dacbfe97"
