"""Delete/Get Stage State details: verification fails closed, refusals read plainly, requestIds honest."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from enos_pulumi.enos.errors import (
    DeletionRejectedError,
    OperationTimeoutError,
    ServerError,
    UnexpectedAnswerError,
)
from enos_pulumi.enos.stage_state import remaining_pairs
from tests.support.stubs import GET_QUERY, TARGET, Harness, add_stage, add_token, ok


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (["a1/pt1"], "item 0 is a str, not an object"),
        ([{"asset": "a1", "point": "pt1"}], "item 0 has no string assetId and pointId"),
        ([{"assetId": "a1"}], "item 0 has no string assetId and pointId"),
        ([{"assetId": 1, "pointId": "pt1"}], "item 0 has no string assetId and pointId"),
        ({"items": [{"assetId": "a1", "pointId": "pt1"}, 5]}, "item 1 is a int, not an object"),
        ({"items": "none"}, "data is a str"),
        ({"total": 1}, "data is a dict"),
        ({"items": None}, "items is null"),
    ],
)
def test_verify_fails_closed_on_items_it_cannot_read(
    mock: responses.RequestsMock, h: Harness, data: Any, what: str
) -> None:
    # Before: items that were not objects, or lacked assetId/pointId, counted as "no state left".
    add_token(mock)
    add_stage(mock, query=GET_QUERY, json=ok("rid-get", data=data))
    with pytest.raises(UnexpectedAnswerError) as info:
        h.client().get_stage_state(TARGET, ["a1"], ["pt1"])
    assert what in str(info.value)
    assert info.value.request_id == "rid-get"
    assert str(info.value).startswith("Get Stage State failed")


@pytest.mark.parametrize("data", [None, [], {"items": []}])
def test_an_empty_answer_means_no_state(mock: responses.RequestsMock, h: Harness, data: Any) -> None:
    add_token(mock)
    add_stage(mock, query=GET_QUERY, json=ok("rid-get", data=data))
    items, rids = h.client().get_stage_state(TARGET, ["a1"], ["pt1"])
    assert items == [] and rids == ("rid-get",)


def test_remaining_pairs_are_those_of_the_reset_only() -> None:
    items = [
        {"assetId": "a1", "pointId": "pt1"},
        {"assetId": "a1", "pointId": "other"},
        {"assetId": "a9", "pointId": "pt1"},
        {"assetId": "a1", "pointId": "pt1"},
    ]
    assert remaining_pairs(items, ["a1", "a2"], ["pt1"]) == [("a1", "pt1")]


def test_data_false_reads_as_an_answer_not_an_error_code(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, json=ok("rid-false", data=False))
    with pytest.raises(DeletionRejectedError) as info:
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    text = str(info.value)
    assert 'EnOS answered "data: false (deletion failed)"' in text
    assert "EnOS 0" not in text


def test_a_success_without_request_id_uses_the_gateway_header_or_none(
    mock: responses.RequestsMock, h: Harness
) -> None:
    # Before: '' was stored as the requestId of such a request.
    add_token(mock)
    add_stage(mock, json={"code": 0, "data": True}, headers={"x-request-id": "gw-rid-1"})
    add_stage(mock, json={"code": 0, "data": True})
    report = h.client(limit=1).delete_stage_state(TARGET, ["a1", "a2"], ["pt1"])
    assert report.request_count == 2
    assert report.request_ids == ("gw-rid-1",)


def test_a_413_split_shows_as_split_not_failed(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, status=413, json={"msg": "Request Entity Too Large"})
    add_stage(mock, json=ok("rid-half-1"))
    add_stage(mock, json=ok("rid-half-2"))
    report = h.client().delete_stage_state(TARGET, ["a1", "a2"], ["pt1"])
    assert report.request_ids == ("rid-half-1", "rid-half-2")
    assert h.outcomes() == ["ok", "split", "ok", "ok"]  # token, the refused batch, its two halves
    assert "HTTP 413" in h.events[1].detail


def test_a_reset_past_its_total_bound_starts_nothing_more(mock: responses.RequestsMock, h: Harness) -> None:
    # Each request has its own retry budget; the reset as a whole stops starting requests and retries
    # at enos:resetTimeoutSeconds, saying how far it got.
    import dataclasses

    add_token(mock)
    add_stage(mock, status=503, json={"msg": "busy"})
    client = h.client(limit=1, deadline=100.0)
    client = type(client)(
        dataclasses.replace(client.settings, reset_timeout=5.0),
        retry=client.retry,
        on_event=h.events.append,
        tokens=h.tokens,
        sessions=h.sessions,
    )
    with pytest.raises(ServerError, match="the operation's total time bound was reached"):
        client.delete_stage_state(TARGET, ["a1", "a2"], ["pt1"])
    assert sum(h.fake.sleeps) <= 5.0 + 1e-9


def test_a_batch_not_started_before_the_bound_is_an_operation_timeout(
    mock: responses.RequestsMock, h: Harness
) -> None:
    import dataclasses

    add_token(mock)
    calls = {"n": 0}

    def slow_ok(_request: Any) -> tuple[int, dict[str, str], str]:
        calls["n"] += 1
        h.fake.now += 3.0  # each request takes 3 s
        return 200, {}, '{"code":0,"data":true,"requestId":"r"}'

    mock.add_callback(responses.POST, "https://apim.example.com/streaming/v2.0/stage-state", callback=slow_ok)
    client = h.client(limit=1)
    client = type(client)(
        dataclasses.replace(client.settings, reset_timeout=5.0),
        retry=client.retry,
        tokens=h.tokens,
        sessions=h.sessions,
    )
    with pytest.raises(OperationTimeoutError) as info:
        client.delete_stage_state(TARGET, ["a1", "a2", "a3", "a4"], ["pt1"])
    assert calls["n"] == 2
    text = str(info.value)
    assert "Delete Stage State gave up for pipeline p1/LastRecordAppender_01" in text
    assert "5 s (enos:resetTimeoutSeconds)" in text
    assert "2 of 4 requests had succeeded" in text


def test_a_get_answer_without_data_fails_closed(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, query=GET_QUERY, json={"code": 0, "msg": " OK", "requestId": "rid-nodata"})
    with pytest.raises(UnexpectedAnswerError, match="the answer has no data"):
        h.client().get_stage_state(TARGET, ["a1"], ["pt1"])


def test_a_get_answer_with_more_values_than_the_batch_can_hold_is_refused_unparsed(
    mock: responses.RequestsMock, h: Harness
) -> None:
    # 16 MiB of [{},{},...] parses into hundreds of MB; a batch of 2 pairs cannot need that many values.
    add_token(mock)
    body = '{"code":0,"requestId":"r","data":[' + ",".join(["{}"] * 200_000) + "]}"
    add_stage(mock, query=GET_QUERY, body=body)
    with pytest.raises(UnexpectedAnswerError, match="JSON values, more than the 100,032"):
        h.client().get_stage_state(TARGET, ["a1", "a2"], ["pt1"])


def test_the_client_takes_a_string_as_comma_separated_never_as_characters(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    stage = add_stage(mock, json=ok("rid-str"))
    report = h.client().delete_stage_state(TARGET, "inv02, inv01", "pt")
    body = stage.calls[0].request.body
    assert b'"assetIds":"inv01,inv02"' in body and b'"pointIds":"pt"' in body
    assert report.pairs == 2


@pytest.mark.parametrize(
    ("assets", "what"),
    [
        (["a,b"], "contains a comma"),
        ([], "is empty"),
        (["a", ""], "empty ID"),
        (["a\x00b"], "control character"),
    ],
)
def test_the_client_refuses_ids_the_resource_would_refuse(h: Harness, assets: list[str], what: str) -> None:
    # Before: ["a,b"] went out as two assets, a and b, and their state was deleted.
    from enos_pulumi.enos.errors import InvalidIdsError

    with pytest.raises(InvalidIdsError, match=what) as info:
        h.client().delete_stage_state(TARGET, assets, ["pt"])
    assert info.value.input_name == "assets"
