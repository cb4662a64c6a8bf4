"""StageStateResetProvider's methods called directly: check, diff, create/update, read/delete, configure,
settings and pickling. HTTP goes to the local simulator or to a strict ``responses`` mock."""

from __future__ import annotations

import base64
import pickletools
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import dill
import pytest
import responses
from pulumi.dynamic import CheckResult, ConfigureRequest
from pulumi.dynamic.config import Config
from pulumi.output import Unknown
from responses import matchers

from enos_pulumi.enos import auth
from enos_pulumi.enos.errors import (
    ConfigurationError,
    DeletionRejectedError,
    PipelineNotListedError,
    PipelineNotPausedError,
    StateRemainsError,
)
from enos_pulumi.enos.ids import ids_hash
from enos_pulumi.inputs import LIST_FORM_MAX_IDS, normalize_trigger
from enos_pulumi.provider import StageStateResetProvider
from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import serialize_provider
from tests.support.fixtures_simulator import (
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_OTHER_PIPELINE,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
)

GATEWAY = "https://apim.enos.example.test"
TOKEN_URL = GATEWAY + "/apim-token-service/v2.0/token/get"
STATE_URL = GATEWAY + "/streaming/v2.0/stage-state"
LIST_URL = GATEWAY + "/streaming/v2.0/streaming/pipelines"
OUTPUT_KEYS = {
    "org_id",
    "pipeline_id",
    "stage_instance_name",
    "trigger",
    "ids_hash",
    "asset_count",
    "point_count",
    "request_count",
    "request_ids",
    "reset_at",
    "paused_by_reset",
}
RESET_AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    # Tokens are cached per (gateway, access key) for the process; mocked gateways reuse one URL.
    auth.TOKENS.clear()
    yield
    auth.TOKENS.clear()


def inputs(**overrides: Any) -> dict[str, Any]:
    """Program inputs as the resource registers them (without ``__provider``); ``None`` drops a key."""
    base: dict[str, Any] = {
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_PAUSED_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "asset_ids": ["a1", "a2"],
        "point_ids": ["p1", "p2"],
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def check(**overrides: Any) -> CheckResult:
    return StageStateResetProvider().check({}, inputs(**overrides))


def checked(**overrides: Any) -> dict[str, Any]:
    result = check(**overrides)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return dict(result.inputs)


def sim_environ(sim: Simulator, **extra: str) -> dict[str, str]:
    return {
        "ENOS_API_GATEWAY": sim.base_url,
        "ENOS_ACCESS_KEY": SIM_ACCESS_KEY,
        "ENOS_SECRET_KEY": SIM_SECRET_KEY,
        **extra,
    }


def sim_provider(sim: Simulator, **extra: str) -> StageStateResetProvider:
    provider = StageStateResetProvider()
    provider._environ = sim_environ(sim, **extra)
    return provider


def mock_provider() -> StageStateResetProvider:
    provider = StageStateResetProvider()
    provider._environ = {
        "ENOS_API_GATEWAY": GATEWAY,
        "ENOS_ACCESS_KEY": "mock-access-key",
        "ENOS_SECRET_KEY": "mock-secret-key",
    }
    return provider


def ops(sim: Simulator) -> list[str]:
    return [entry["operation"] for entry in sim.requests]


def delete_request_ids(sim: Simulator) -> list[str]:
    return [entry["request_id"] for entry in sim.requests if entry["operation"] == "delete"]


def seed(sim: Simulator, pipeline: str = SIM_PAUSED_PIPELINE) -> set[tuple[str, str]]:
    """State for a1..a3 x p1..p3; returns the pairs outside the default a1,a2 x p1,p2 reset."""
    sim.set_pairs(SIM_ORG_ID, pipeline, SIM_STAGE, ["a1", "a2", "a3"], ["p1", "p2", "p3"])
    return {("a3", p) for p in ("p1", "p2", "p3")} | {("a1", "p3"), ("a2", "p3")}


def stored(**overrides: Any) -> dict[str, Any]:
    """Outputs as a create of the default inputs stores them (what diff receives as ``olds``)."""
    outs: dict[str, Any] = {
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_PAUSED_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "trigger": None,
        "ids_hash": ids_hash(["a1", "a2"], ["p1", "p2"]),
        "asset_count": 2,
        "point_count": 2,
        "request_count": 1,
        "request_ids": ["rid-1"],
        "reset_at": "2026-01-01T00:00:00.000000Z",
        "__provider": serialize_provider(StageStateResetProvider()),
    }
    outs.update(overrides)
    return outs


def token_reply(rsps: responses.RequestsMock) -> None:
    rsps.post(
        TOKEN_URL,
        json={"status": 0, "msg": "SUCCESS", "data": {"accessToken": "mock-token", "expire": 7200}},
    )


def state_body(assets: str, points: str) -> dict[str, str]:
    return {
        "pipelineId": SIM_PAUSED_PIPELINE,
        "stageInstanceName": SIM_STAGE,
        "assetIds": assets,
        "pointIds": points,
    }


# -- check: canonical IDs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([" b ", "a", "b", "a"], ["a", "b"]),
        (["x"], ["x"]),
        (("c", "a"), ["a", "c"]),
        ("b, a ,a", "a,b"),  # a string stays a string
        ("single", "single"),
    ],
)
def test_check_canonicalizes_ids_keeping_list_or_string_form(given: Any, expected: Any) -> None:
    result = checked(asset_ids=given, point_ids=given)
    assert result["asset_ids"] == expected
    assert result["point_ids"] == expected


def test_check_keeps_list_form_up_to_the_limit_and_joins_above_it() -> None:
    at_limit = [f"id{i:05d}" for i in range(LIST_FORM_MAX_IDS)]
    above = [f"id{i:05d}" for i in range(LIST_FORM_MAX_IDS + 1)]
    result = checked(asset_ids=list(reversed(at_limit)), point_ids=above)
    assert result["asset_ids"] == at_limit
    assert result["point_ids"] == ",".join(above)
    # The limit counts canonical IDs: a duplicate brings LIST_FORM_MAX_IDS + 1 items back to the limit.
    assert checked(asset_ids=[*at_limit, at_limit[0]])["asset_ids"] == at_limit


def test_check_strips_target_strings_and_fills_bool_defaults() -> None:
    result = checked(org_id=" o-test ", pipeline_id=" pl-1\t", stage_instance_name=" RecordCapturer_1 ")
    assert (result["org_id"], result["pipeline_id"], result["stage_instance_name"]) == (
        "o-test",
        "pl-1",
        "RecordCapturer_1",
    )
    assert result["require_paused"] is True
    assert result["verify"] is False
    assert result["require_known_stage_type"] is True
    assert result["trigger"] is None
    explicit = checked(require_paused=False, verify=True)
    assert (explicit["require_paused"], explicit["verify"]) == (False, True)


# -- check: trigger ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (3, "3"),
        (3.0, "3"),
        ("3", "3"),
        (-2.0, "-2"),
        (2.5, "2.5"),
        (20261130123456791, "20261130123456791"),  # above 2**53: exact as an int
        ("20261130123456791", "20261130123456791"),  # how the resource sends an integer
        ("release-2026-11", "release-2026-11"),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_trigger_normalizes_numbers_and_empty_values(given: Any, expected: str | None) -> None:
    assert normalize_trigger(given) == expected
    assert checked(trigger=given)["trigger"] == expected


@pytest.mark.parametrize("given", [True, False, ["r1"], {"r": 1}, float("nan"), float("inf")])
def test_trigger_rejects_booleans_lists_and_non_finite_numbers(given: Any) -> None:
    with pytest.raises(TypeError):
        normalize_trigger(given)
    result = check(trigger=given)
    assert [f.property for f in result.failures] == ["trigger"]


# -- check: failures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "prop", "fragment"),
    [
        ({"asset_ids": []}, "asset_ids", "empty"),
        ({"point_ids": ""}, "point_ids", "empty"),
        ({"asset_ids": "a,,b"}, "asset_ids", "position 2"),
        ({"asset_ids": ["a", " "]}, "asset_ids", "item 1 is an empty ID"),
        ({"point_ids": ["p1", "p,2"]}, "point_ids", "contains a comma"),
        ({"asset_ids": ["a1", 7.0]}, "asset_ids", "item 1 is number 7; every ID must be a string"),
        (
            {"asset_ids": 5.0},
            "asset_ids",
            "expected a list of ID strings or one comma-separated string, got number 5",
        ),
        ({"point_ids": ["p\x00"]}, "point_ids", "control character"),
        ({"asset_ids": None}, "asset_ids", "required"),
        ({"point_ids": None}, "point_ids", "required"),
        ({"pipeline_id": None}, "pipeline_id", "required"),
        ({"pipeline_id": "  "}, "pipeline_id", "must not be empty"),
        ({"stage_instance_name": None}, "stage_instance_name", "required"),
        ({"org_id": None}, "org_id", "enos:orgId"),
        ({"pipeline_id": 12.0}, "pipeline_id", "must be a string, got number 12"),
        ({"verify": "yes"}, "verify", "true or false, got string 'yes'"),
        ({"require_paused": 1.0}, "require_paused", "true or false, got number 1"),
    ],
)
def test_check_failure_names_the_input(overrides: dict[str, Any], prop: str, fragment: str) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        result = check(**overrides)
        assert len(rsps.calls) == 0  # reported at preview, before any call
    assert [f.property for f in result.failures] == [prop]
    reason = result.failures[0].reason
    assert fragment in reason
    # Pulumi prints the property's name with the reason ("property asset_ids ... has a problem: ..."),
    # so the reason does not start with it again (no "asset_ids: asset_ids: ...").
    assert not reason.startswith(prop)
    assert "float" not in reason  # numbers are described as the user wrote them


def test_check_reports_every_bad_input() -> None:
    result = check(asset_ids=[], point_ids="x,,y", verify="no", pipeline_id=None)
    assert sorted(f.property for f in result.failures) == ["asset_ids", "pipeline_id", "point_ids", "verify"]


def test_check_inputs_quotes_no_input_named_secret() -> None:
    """What the plugin relies on (it knows which inputs are secret; this provider never does)."""
    from enos_pulumi.inputs import check_inputs

    bad = {
        "org_id": "o" * 300,
        "pipeline_id": "pl-hush\x01",
        "stage_instance_name": "Hushwindow_1",
        "asset_ids": ["a,hush"],
        "point_ids": "p1,hush\x02",
        "trigger": [1.0],
        "verify": "hush",
        "resume_execution_mode": "hush",
        "pause_pipeline": True,
    }
    _, plain = check_inputs(bad)
    assert sum("hush" in reason.lower() or "ooo" in reason for _, reason in plain) == 7
    _, hidden = check_inputs(bad, secret_inputs=set(bad))
    assert [name for name, _ in hidden] == [name for name, _ in plain]
    assert not [r for _, r in hidden if "hush" in r.lower() or "ooo" in r or "\\x0" in r], hidden


def test_unknown_values_pass_through_check() -> None:
    unknown_inputs: dict[str, Any] = {
        "org_id": Unknown(),
        "pipeline_id": Unknown(),
        "stage_instance_name": Unknown(),
        "asset_ids": Unknown(),
        "point_ids": ["p1", Unknown()],
        "trigger": Unknown(),
        "require_paused": Unknown(),
        "verify": Unknown(),
    }
    result = StageStateResetProvider().check({}, unknown_inputs)
    assert result.failures == []
    for name in ("org_id", "pipeline_id", "stage_instance_name", "asset_ids", "trigger", "verify"):
        assert isinstance(result.inputs[name], Unknown), name
    assert result.inputs["point_ids"][0] == "p1"
    assert isinstance(result.inputs["point_ids"][1], Unknown)


# -- diff ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("news", "replaces"),
    [
        ({"org_id": "o-other"}, ["org_id"]),
        ({"pipeline_id": "pl-other"}, ["pipeline_id"]),
        ({"stage_instance_name": "LastRecordAppender_1"}, ["stage_instance_name"]),
        (
            {"pipeline_id": "pl-other", "stage_instance_name": "RecordCapturer_9"},
            ["pipeline_id", "stage_instance_name"],
        ),
        ({"pipeline_id": "pl-other", "asset_ids": ["a9"], "trigger": "t"}, ["pipeline_id"]),
    ],
)
def test_diff_replaces_on_a_new_target(news: dict[str, Any], replaces: list[str]) -> None:
    result = StageStateResetProvider().diff("reset-1", stored(), checked(**news))
    assert result.changes is True
    assert result.replaces == replaces
    assert result.delete_before_replace is False


@pytest.mark.parametrize(
    "news",
    [
        {"asset_ids": ["a1", "a2", "a3"]},
        {"asset_ids": ["a1"]},
        {"point_ids": "p1,p2,p3"},
        {"asset_ids": ["a1", "p2"], "point_ids": ["a2", "p1"]},  # same strings, other roles
    ],
)
def test_diff_updates_when_the_id_sets_change(news: dict[str, Any]) -> None:
    result = StageStateResetProvider().diff("reset-1", stored(), checked(**news))
    assert result.changes is True
    assert result.replaces == []


@pytest.mark.parametrize(
    "news",
    [
        {},
        {"asset_ids": ["a2", "a1", "a2"], "point_ids": [" p2", "p1 ", "p1"]},
        {"asset_ids": "a2,a1", "point_ids": "p1, p2"},  # string form of the same sets
        {"require_paused": False},
        {"verify": True},
        {"org_id": " o-test "},
    ],
)
def test_diff_reports_no_change_for_the_same_target_and_sets(news: dict[str, Any]) -> None:
    result = StageStateResetProvider().diff("reset-1", stored(), checked(**news))
    assert result.changes is False
    assert result.replaces == []


def test_diff_no_change_between_list_form_and_string_form_above_the_limit() -> None:
    many = [f"id{i}" for i in range(LIST_FORM_MAX_IDS + 5)]
    olds = stored(ids_hash=ids_hash(sorted(many), ["p1", "p2"]))
    as_list = checked(asset_ids=many)
    as_string = checked(asset_ids=",".join(reversed(many)))
    assert isinstance(as_list["asset_ids"], str)
    assert StageStateResetProvider().diff("r", olds, as_list).changes is False
    assert StageStateResetProvider().diff("r", olds, as_string).changes is False


@pytest.mark.parametrize(
    ("old_trigger", "new_trigger", "changes"),
    [
        (None, "r1", True),  # a trigger set for the first time
        ("r1", "r2", True),
        ("r1", "r1", False),
        ("r1", None, False),  # removed: nothing to do
        ("r1", "", False),  # empty means none
        ("3", 3, False),
        ("3", 3.0, False),
        ("3", "3", False),
        ("3", 4, True),
    ],
)
def test_diff_trigger(old_trigger: str | None, new_trigger: Any, changes: bool) -> None:
    result = StageStateResetProvider().diff(
        "reset-1", stored(trigger=old_trigger), checked(trigger=new_trigger)
    )
    assert result.changes is changes
    assert result.replaces == []


@pytest.mark.parametrize(
    ("news", "replaces"),
    [
        ({"asset_ids": Unknown()}, []),
        ({"point_ids": ["p1", Unknown()]}, []),
        ({"trigger": Unknown()}, []),
        ({"pipeline_id": Unknown()}, ["pipeline_id"]),
        ({"org_id": Unknown()}, ["org_id"]),
    ],
)
def test_diff_reports_a_change_for_unknown_inputs(news: dict[str, Any], replaces: list[str]) -> None:
    provider = StageStateResetProvider()
    news_checked = provider.check({}, inputs(**news))
    assert news_checked.failures == []
    result = provider.diff("reset-1", stored(), news_checked.inputs)
    assert result.changes is True
    assert result.replaces == replaces


def test_diff_of_real_create_outputs_ignores_reordering(simulator: Simulator) -> None:
    provider = sim_provider(simulator)
    created = provider.create(checked(asset_ids=["a2", "a1"], trigger="r1"))
    reordered = checked(asset_ids=["a1", "a2", "a1"], point_ids="p2,p1", trigger="r1")
    assert provider.diff(created.id, created.outs, reordered).changes is False
    assert provider.diff(created.id, created.outs, checked(asset_ids=["a1"], trigger="r1")).changes is True


# -- create / update -----------------------------------------------------------------------------------


def test_create_resets_exactly_the_named_pairs_and_returns_every_output(simulator: Simulator) -> None:
    others = seed(simulator)
    provider = sim_provider(simulator)
    before = datetime.now(timezone.utc)
    result = provider.create(checked(asset_ids=["a2", "a1", "a1"], point_ids="p2,p1", trigger=7))
    after = datetime.now(timezone.utc)

    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == others
    assert ops(simulator) == ["token", "list", "delete"]  # paused check, then one delete
    delete = simulator.requests[-1]
    assert (delete["asset_count"], delete["point_count"]) == (2, 2)

    outs = result.outs
    assert set(outs) == OUTPUT_KEYS  # never the ID lists themselves
    assert outs["org_id"] == SIM_ORG_ID
    assert outs["pipeline_id"] == SIM_PAUSED_PIPELINE
    assert outs["stage_instance_name"] == SIM_STAGE
    assert outs["trigger"] == "7"
    assert outs["ids_hash"] == ids_hash(["a1", "a2"], ["p1", "p2"])
    assert (outs["asset_count"], outs["point_count"]) == (2, 2)
    assert outs["request_count"] == 1
    assert outs["request_ids"] == delete_request_ids(simulator)
    assert outs["paused_by_reset"] is False
    reset_at = datetime.strptime(outs["reset_at"], RESET_AT_FORMAT).replace(tzinfo=timezone.utc)
    assert before.replace(microsecond=0) <= reset_at <= after
    assert datetime.fromisoformat(outs["reset_at"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    assert result.id.startswith("reset-")
    assert provider.create(checked()).id != result.id


def test_create_with_verify_reads_the_state_back(simulator: Simulator) -> None:
    others = seed(simulator)
    result = sim_provider(simulator).create(checked(verify=True))
    assert ops(simulator) == ["token", "list", "delete", "get"]
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == others
    assert result.outs["request_ids"] == delete_request_ids(simulator)  # the delete calls, not the get


def test_create_splits_large_sets_and_counts_every_request(simulator: Simulator) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1", "a2", "a3"], ["p1", "p2"])
    provider = sim_provider(simulator, ENOS_MAX_PAIRS_PER_REQUEST="2")
    result = provider.create(checked(asset_ids=["a1", "a2", "a3"]))
    deletes = [e for e in simulator.requests if e["operation"] == "delete"]
    assert len(deletes) == 3
    assert all(e["asset_count"] * e["point_count"] <= 2 for e in deletes)
    assert result.outs["request_count"] == 3
    assert sorted(result.outs["request_ids"]) == sorted(delete_request_ids(simulator))
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == set()


def test_update_runs_the_reset_with_the_new_inputs(simulator: Simulator) -> None:
    seed(simulator)
    provider = sim_provider(simulator)
    created = provider.create(checked())
    simulator.clear_log()
    updated = provider.update(created.id, created.outs, checked(asset_ids=["a3"], point_ids=["p3"]))
    assert ops(simulator) == ["list", "delete"]  # the token is cached for the process
    assert ("a3", "p3") not in simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)
    assert updated.outs["ids_hash"] == ids_hash(["a3"], ["p3"])
    assert updated.outs["request_ids"] == delete_request_ids(simulator)
    assert updated.outs["reset_at"] >= created.outs["reset_at"]


def test_require_paused_false_skips_the_status_call() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        token_reply(rsps)
        rsps.post(
            STATE_URL,
            match=[
                matchers.query_param_matcher({"action": "delete", "orgId": SIM_ORG_ID}),
                matchers.json_params_matcher(state_body("a1,a2", "p1,p2")),
            ],
            json={"code": 0, "msg": " OK", "requestId": "rid-del", "data": True},
        )
        result = mock_provider().create(checked(require_paused=False, asset_ids=["a2", "a1"]))
        assert len(rsps.calls) == 2
    assert result.outs["request_ids"] == ["rid-del"]
    assert result.outs["request_count"] == 1


def test_create_sends_status_check_delete_and_verify_in_order() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        token_reply(rsps)
        rsps.get(
            LIST_URL,
            match=[matchers.query_param_matcher({"orgId": SIM_ORG_ID}, strict_match=False)],
            json={
                "code": 0,
                "msg": " OK",
                "requestId": "rid-list",
                "data": {
                    "count": 1,
                    "pipelines": [{"pipelineId": SIM_PAUSED_PIPELINE, "status": "PAUSED"}],
                },
            },
        )
        rsps.post(
            STATE_URL,
            match=[
                matchers.query_param_matcher({"action": "delete", "orgId": SIM_ORG_ID}),
                matchers.json_params_matcher(state_body("a1,a2", "p1,p2")),
            ],
            json={"code": 0, "msg": " OK", "requestId": "rid-del", "data": True},
        )
        rsps.post(
            STATE_URL,
            match=[
                matchers.query_param_matcher({"action": "get", "orgId": SIM_ORG_ID}),
                matchers.json_params_matcher(state_body("a1,a2", "p1,p2")),
            ],
            # State of a pair outside the reset does not count as remaining.
            json={"code": 0, "requestId": "rid-get", "data": [{"assetId": "a9", "pointId": "p1"}]},
        )
        result = mock_provider().create(checked(verify=True))
        called = [(call.request.method, call.request.url.split("?")[0]) for call in rsps.calls]
    assert called == [("POST", TOKEN_URL), ("GET", LIST_URL), ("POST", STATE_URL), ("POST", STATE_URL)]
    assert result.outs["request_ids"] == ["rid-del"]


def test_a_running_pipeline_is_refused_before_any_delete(simulator: Simulator) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, ["a1", "a2"], ["p1", "p2"])
    with pytest.raises(PipelineNotPausedError) as info:
        sim_provider(simulator).create(checked(pipeline_id=SIM_RUNNING_PIPELINE))
    assert "is RUNNING" in str(info.value)
    assert "Nothing was deleted" in str(info.value)
    assert "delete" not in ops(simulator)
    assert len(simulator.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE)) == 4


def test_a_pipeline_the_org_does_not_list_is_refused_as_not_found(simulator: Simulator) -> None:
    with pytest.raises(PipelineNotListedError, match="was not found among org o-test") as info:
        sim_provider(simulator).create(checked(pipeline_id=SIM_OTHER_PIPELINE))
    assert "Check pipeline_id and org_id" in str(info.value)
    assert "Pause it first" not in str(info.value)
    assert "delete" not in ops(simulator)


def test_verify_raises_when_state_remains() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        token_reply(rsps)
        rsps.post(
            STATE_URL,
            match=[matchers.query_param_matcher({"action": "delete", "orgId": SIM_ORG_ID})],
            json={"code": 0, "requestId": "rid-del", "data": True},
        )
        rsps.post(
            STATE_URL,
            match=[matchers.query_param_matcher({"action": "get", "orgId": SIM_ORG_ID})],
            json={
                "code": 0,
                "requestId": "rid-get",
                "data": {"items": [{"assetId": "a2", "pointId": "p1", "value": 1}]},
            },
        )
        with pytest.raises(StateRemainsError) as info:
            mock_provider().create(checked(require_paused=False, verify=True))
    assert info.value.remaining == 1
    assert info.value.sample == [("a2", "p1")]
    assert "a2/p1" in str(info.value)
    assert "rid-get" in str(info.value)


def test_a_rejected_deletion_raises(simulator: Simulator) -> None:
    simulator.answer_data_false(count=1)
    with pytest.raises(DeletionRejectedError, match="data: false"):
        sim_provider(simulator).create(checked())


# -- read / delete -------------------------------------------------------------------------------------


def test_read_returns_the_stored_outputs_without_any_call() -> None:
    provider = StageStateResetProvider()  # no settings at all: refresh must not need them
    props = stored(trigger="r1")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        result = provider.read("reset-1", dict(props))
        assert len(rsps.calls) == 0
    assert result.id == "reset-1"
    assert result.outs == {k: v for k, v in props.items() if k != "__provider"}
    assert (
        getattr(result, "inputs", None) is None
    )  # the engine keeps the stored inputs (no attribute < 3.216)


def test_delete_makes_no_call() -> None:
    provider = StageStateResetProvider()
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        assert provider.delete("reset-1", stored()) is None
        assert len(rsps.calls) == 0


def test_read_and_delete_touch_nothing_on_a_live_gateway(simulator: Simulator) -> None:
    seed(simulator)
    provider = sim_provider(simulator)
    provider.read("reset-1", stored())
    provider.delete("reset-1", stored())
    assert simulator.requests == []
    assert len(simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)) == 9


# -- configuration and settings ------------------------------------------------------------------------


def configure_request(values: dict[str, Any]) -> ConfigureRequest:
    return ConfigureRequest(Config(values, "enos-pulumi-test"))


def test_configure_keeps_only_the_enos_connection_keys() -> None:
    provider = StageStateResetProvider()
    provider.configure(
        configure_request(
            {
                "enos:apiGateway": GATEWAY,
                "enos:accessKey": "ak",
                "enos:secretKey": "sk",
                "enos:maxPairsPerRequest": "50",
                "enos-pulumi-test:release": "r1",
                "aws:region": "eu-west-1",
                "aws:secretKey": "not-ours",
            }
        )
    )
    assert provider._config == {
        "enos:apiGateway": GATEWAY,
        "enos:accessKey": "ak",
        "enos:secretKey": "sk",
        "enos:maxPairsPerRequest": "50",
    }


def test_configured_settings_are_used_and_win_over_the_environment(simulator: Simulator) -> None:
    provider = StageStateResetProvider()
    provider._environ = {"ENOS_ACCESS_KEY": "not-the-configured-key", "ENOS_API_GATEWAY": "https://x.test"}
    provider.configure(
        configure_request(
            {
                "enos:apiGateway": simulator.base_url,
                "enos:accessKey": SIM_ACCESS_KEY,
                "enos:secretKey": SIM_SECRET_KEY,
            }
        )
    )
    result = provider.create(checked())
    assert result.outs["request_count"] == 1
    assert ops(simulator) == ["token", "list", "delete"]


def test_settings_come_from_the_environment_at_call_time(
    simulator_factory: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = simulator_factory(), simulator_factory()
    provider = StageStateResetProvider()  # created before any ENOS_* variable exists
    for name, value in sim_environ(first).items():
        monkeypatch.setenv(name, value)
    provider.create(checked())
    assert ops(first) == ["token", "list", "delete"]
    # Rotated settings: the next call reads them again, no new provider (no `pulumi up`) needed.
    monkeypatch.setenv("ENOS_API_GATEWAY", second.base_url)
    provider.create(checked())
    assert ops(second) == ["token", "list", "delete"]
    assert ops(first) == ["token", "list", "delete"]


def test_missing_settings_fail_naming_config_key_and_variable() -> None:
    provider = StageStateResetProvider()
    provider._environ = {}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        with pytest.raises(ConfigurationError) as info:
            provider.create(checked())
        assert len(rsps.calls) == 0
    assert "enos:apiGateway" in str(info.value)
    assert "ENOS_API_GATEWAY" in str(info.value)


def test_progress_lines_go_to_stderr_one_per_request(
    simulator: Simulator, capsys: pytest.CaptureFixture[str]
) -> None:
    sim_provider(simulator, ENOS_MAX_PAIRS_PER_REQUEST="2").create(checked(verify=True))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == len(simulator.requests) == 1 + 1 + 2 + 2  # token, list, 2 deletes, 2 gets
    assert all(line.startswith("enos: ") for line in lines)
    for entry in simulator.requests:
        if entry["operation"] != "token":
            assert sum(entry["request_id"] in line for line in lines) == 1
    assert sum("Delete Stage State" in line and "1 assets x 2 points" in line for line in lines) == 2
    assert not any(SIM_SECRET_KEY in line for line in lines)


# -- pickling ------------------------------------------------------------------------------------------


def _strings_in_pickle(data: bytes) -> list[str]:
    return [arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)]


def test_pickled_provider_is_tiny_and_by_reference() -> None:
    serialized = serialize_provider(StageStateResetProvider())
    data = base64.b64decode(serialized)
    assert len(serialized) < 200
    # Module path and class name only: no bytecode, no instance data.
    assert _strings_in_pickle(data) == ["enos_pulumi.provider", "StageStateResetProvider"]
    opcodes = [op.name for op, _, _ in pickletools.genops(data) if op.name != "MEMOIZE"]
    assert opcodes[-3:] == ["EMPTY_DICT", "BUILD", "STOP"]  # the instance state is {}
    loaded = dill.loads(data)
    assert type(loaded) is StageStateResetProvider
    assert loaded._config == {} and loaded._environ is None and loaded._client_factory is None


def test_pickled_provider_carries_no_config_after_configure() -> None:
    fresh = serialize_provider(StageStateResetProvider())
    provider = StageStateResetProvider()
    provider.configure(
        configure_request(
            {
                "enos:apiGateway": GATEWAY,
                "enos:accessKey": "pickle-access-key",
                "enos:secretKey": "pickle-secret-canary-5b1f",
            }
        )
    )
    provider._environ = {"ENOS_SECRET_KEY": "env-secret-canary-77aa"}
    provider._client_factory = lambda settings: None  # type: ignore[assignment,return-value]
    assert provider._config["enos:secretKey"] == "pickle-secret-canary-5b1f"
    serialized = serialize_provider(provider)
    assert serialized == fresh
    data = base64.b64decode(serialized)
    for canary in (b"pickle-secret-canary-5b1f", b"env-secret-canary-77aa", b"pickle-access-key"):
        assert canary not in data
    assert dill.loads(dill.dumps(provider, recurse=True))._config == {}
