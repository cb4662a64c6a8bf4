"""List Pipelines paging and reading, against stubbed HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from responses import matchers

from enos_pulumi.enos.errors import InvalidParameterError, OperationTimeoutError, UnexpectedAnswerError
from tests.support.stubs import PIPELINES_URL, Harness, add_token, calls_to, ok


def page(mock: responses.RequestsMock, number: int, data: Any, size: int = 100) -> Any:
    query = {"orgId": "o123", "pageNo": str(number), "pageSize": str(size), "ifReleased": "true"}
    return mock.add(
        responses.GET,
        PIPELINES_URL,
        match=[matchers.query_param_matcher(query)],
        json=ok(f"p{number}", data=data),
    )


def entries(first: int, last: int, status: str = "RUNNING") -> list[dict[str, Any]]:
    return [{"pipelineId": f"pipe-{n}", "status": status} for n in range(first, last)]


def test_paging_goes_on_past_short_pages_until_the_count(mock: responses.RequestsMock, h: Harness) -> None:
    # A gateway that caps pageSize at 10 (below our 100): before, the first short page ended the
    # listing and the paused check said "not found".
    add_token(mock)
    page(mock, 1, {"count": 25, "pipelines": entries(0, 10)})
    page(mock, 2, {"count": 25, "pipelines": entries(10, 20)})
    page(
        mock, 3, {"count": 25, "pipelines": [*entries(20, 24), {"pipelineId": "pipe-24", "status": "PAUSED"}]}
    )
    assert h.client().pipeline_status("o123", "pipe-24") == "PAUSED"
    assert len(calls_to(mock, PIPELINES_URL)) == 3


def test_paging_without_a_count_ends_at_an_empty_page(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    page(mock, 1, {"pipelines": entries(0, 10)})
    page(mock, 2, {"pipelines": entries(10, 13)})
    page(mock, 3, {"pipelines": []})
    assert len(list(h.client().list_pipelines("o123"))) == 13


@pytest.mark.parametrize(
    ("pipelines", "what"),
    [
        ([{"pipelineId": ["p", "q"], "status": "PAUSED"}], "entry 0 has no string pipelineId"),
        ([{"pipelineId": 7, "status": "PAUSED"}], "entry 0 has no string pipelineId"),
        (["pipe-1"], "entry 0 has no string pipelineId"),
        ([{"pipelineId": "pipe-1", "status": ["PAUSED"]}], "status that is not a string"),
        ({"pipe-1": "PAUSED"}, "pipelines is dict; expected a list"),
    ],
)
def test_an_entry_that_cannot_be_read_is_an_error_naming_list_pipelines(
    mock: responses.RequestsMock, h: Harness, pipelines: Any, what: str
) -> None:
    # Before: a list as pipelineId raised a raw TypeError (unhashable) out of the client.
    add_token(mock)
    page(mock, 1, {"count": 1, "pipelines": pipelines})
    with pytest.raises(UnexpectedAnswerError) as info:
        h.client().pipeline_status("o123", "pipe-1")
    assert what in str(info.value)
    assert str(info.value).startswith("List Pipelines failed for org o123")


@pytest.mark.parametrize("data", [None, [], "x", 5])
def test_data_that_is_not_an_object_is_refused_not_read_as_no_pipelines(
    mock: responses.RequestsMock, h: Harness, data: Any
) -> None:
    # "Not found" would send the user hunting for a typo in pipeline_id.
    add_token(mock)
    page(mock, 1, data)
    with pytest.raises(UnexpectedAnswerError, match="expected an object with count and pipelines"):
        h.client().pipeline_status("o123", "pipe-1")


def test_an_odd_status_is_cleaned_before_it_reaches_a_message(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    page(
        mock,
        1,
        {"count": 1, "pipelines": [{"pipelineId": "pipe-1", "status": "paused\r\n\x1b[31m" + "x" * 99}]},
    )
    status = h.client().pipeline_status("o123", "pipe-1")
    assert status is not None and "\n" not in status and "\x1b" not in status and len(status) <= 44


def test_a_61102_from_operate_pipeline_gets_advice_for_operating_not_for_stage_state(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    mock.add(
        responses.POST,
        "https://apim.example.com/streaming/v2.0/streaming/pipeline/pipe-1",
        json={"code": 61102, "msg": "kafkaRate invalid", "requestId": "r-op"},
    )
    with pytest.raises(InvalidParameterError) as info:
        h.client().operate_pipeline("o123", "pipe-1", "start", {"executionMode": 0, "kafkaRate": -1})
    text = str(info.value)
    assert "resume_kafka_rate" in text
    assert "asset/point IDs" not in text


def test_paging_stops_at_the_operation_bound(mock: responses.RequestsMock, h: Harness) -> None:
    # A gateway that pages forever, each page taking a second: nothing starts past the bound.
    import dataclasses
    import json

    add_token(mock)
    pages = {"n": 0}

    def endless(_request: Any) -> tuple[int, dict[str, str], str]:
        pages["n"] += 1
        h.fake.now += 1.0
        data = {"count": 10**9, "pipelines": entries(pages["n"] * 100, pages["n"] * 100 + 100)}
        return 200, {}, json.dumps(ok(f"p{pages['n']}", data=data))

    mock.add_callback(responses.GET, PIPELINES_URL, callback=endless)
    client = h.client()
    client = type(client)(
        dataclasses.replace(client.settings, reset_timeout=5.0),
        retry=client.retry,
        tokens=h.tokens,
        sessions=h.sessions,
    )
    with pytest.raises(OperationTimeoutError, match=r"5 s \(enos:resetTimeoutSeconds\)"):
        client.pipeline_status("o123", "pipe-missing")
    assert pages["n"] == 5


def test_a_gateway_that_ignores_the_page_size_is_read_all_the_same(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    rich = [
        {**e, "description": "a, b, c, " * 500} for e in entries(0, 300)
    ]  # commas in strings count as one
    page(mock, 1, {"count": 300, "pipelines": rich})
    assert h.client().pipeline_status("o123", "pipe-299") == "RUNNING"
