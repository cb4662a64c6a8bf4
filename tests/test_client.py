"""EnosClient against stubbed HTTP (responses): requests as sent, retries, tokens, batching, paging."""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import time
from collections import Counter
from concurrent.futures import Future
from email.utils import formatdate
from typing import Any

import pytest
import requests
import responses
from hypothesis import given
from hypothesis import strategies as st
from responses import matchers

from enos_pulumi.enos import auth
from enos_pulumi.enos.client import StageTarget
from enos_pulumi.enos.errors import (
    AuthenticationError,
    DeletionRejectedError,
    PipelineAccessError,
    ServerError,
    TooManyPointsError,
    TransportError,
    UnexpectedAnswerError,
)
from enos_pulumi.enos.ids import Batch
from enos_pulumi.enos.stage_state import json_string as _json_string
from enos_pulumi.enos.stage_state import stage_body as build_stage_body
from tests.support.stubs import (
    ACCESS_KEY,
    DELETE_QUERY,
    GATEWAY,
    GET_QUERY,
    HTML_502,
    PIPELINES_URL,
    SECRET,
    STAGE_URL,
    TARGET,
    TOKEN,
    TOKEN_URL,
    VECTOR_BODY,
    VECTOR_ENCRYPTION,
    VECTOR_SIGNATURE,
    VECTOR_TIMESTAMP,
    Harness,
    add_stage,
    add_token,
    body_bytes,
    calls_to,
    envelope_callback,
    independent_signature,
    ok,
    stage_body,
)

# -- the request as sent -------------------------------------------------------------------------------------


def test_delete_sends_the_documented_request(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, json=ok("rid-1"))
    report = h.client().delete_stage_state(TARGET, ["a1", "a2"], ["pt1", "pt2"])

    assert report.request_ids == ("rid-1",)
    assert report.request_count == 1
    assert report.pairs == 4
    token_call, stage_call = mock.calls
    # The token request.
    sent = token_call.request
    assert sent.method == "POST"
    assert sent.url == TOKEN_URL
    assert sent.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert json.loads(body_bytes(sent)) == {
        "appKey": ACCESS_KEY,
        "encryption": VECTOR_ENCRYPTION,
        "timestamp": VECTOR_TIMESTAMP,
    }
    assert not any(name.lower().startswith("apim-") for name in sent.headers)
    # The delete itself.
    sent = stage_call.request
    assert sent.method == "POST"
    assert sent.url == STAGE_URL + "?action=delete&orgId=o123"
    assert sent.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert sent.body == VECTOR_BODY
    assert sent.headers["apim-accesstoken"] == TOKEN
    assert sent.headers["apim-timestamp"] == str(VECTOR_TIMESTAMP)
    assert sent.headers["apim-signature"] == VECTOR_SIGNATURE
    assert sent.headers["apim-signature"] == independent_signature(sent, TOKEN)
    assert "Authorization" not in sent.headers


def test_non_ascii_ids_are_sent_as_raw_utf8_and_signed_as_sent(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["Zähler-01"], ["温度"])
    sent = mock.calls[1].request
    assert "Zähler-01".encode() in body_bytes(sent)
    assert "温度".encode() in body_bytes(sent)
    assert stage_body(sent)["assetIds"] == "Zähler-01"
    assert sent.headers["apim-signature"] == independent_signature(sent, TOKEN)


def test_one_token_serves_many_calls(mock: responses.RequestsMock, h: Harness) -> None:
    token = add_token(mock)
    stage = add_stage(mock, json=ok())
    client = h.client()
    for _ in range(3):
        client.delete_stage_state(TARGET, ["a1"], ["pt1"])
    # Another client (another resource in the same `pulumi up`) with the same process cache.
    h.client().delete_stage_state(TARGET, ["a2"], ["pt2"])
    assert token.call_count == 1
    assert stage.call_count == 4
    assert {c.request.headers["apim-accesstoken"] for c in calls_to(mock, STAGE_URL)} == {TOKEN}


def test_every_attempt_is_signed_afresh(mock: responses.RequestsMock, h: Harness) -> None:
    h.millis.step = 1000
    add_token(mock)
    add_stage(mock, status=503, json={"message": "Service Unavailable"})
    add_stage(mock, status=503, json={"message": "Service Unavailable"})
    add_stage(mock, json=ok("rid-3"))
    report = h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])

    assert report.request_ids == ("rid-3",)
    stage_calls = calls_to(mock, STAGE_URL)
    assert len(stage_calls) == 3
    timestamps = [int(c.request.headers["apim-timestamp"]) for c in stage_calls]
    assert timestamps == sorted(set(timestamps))
    signatures = [c.request.headers["apim-signature"] for c in stage_calls]
    assert len(set(signatures)) == 3
    for call in stage_calls:
        assert call.request.headers["apim-signature"] == independent_signature(call.request, TOKEN)
        assert call.request.body == stage_calls[0].request.body
    # Backoff waits (initial 0.5 s, doubling, rng 0.5 -> 0.55 of the ceiling), told as "retrying" events.
    assert h.fake.sleeps == pytest.approx([0.5 * 0.55, 1.0 * 0.55])
    assert h.outcomes() == ["ok", "retrying", "retrying", "ok"]


def test_503_503_200(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    first = add_stage(mock, status=503, body="")
    add_stage(mock, status=503, body="")
    last = add_stage(mock, json=ok("rid-ok"))
    assert h.client().delete_stage_state(TARGET, ["a"], ["p"]).request_ids == ("rid-ok",)
    assert first.call_count == 1
    assert last.call_count == 1
    assert len(h.fake.sleeps) == 2


def test_61106_is_not_retried_and_says_what_to_check(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    stage = add_stage(
        mock,
        json={
            "code": 61106,
            "msg": "Wrong pipelineId or OU has no privilege",
            "requestId": "6cb7-req",
            "data": None,
        },
    )
    with pytest.raises(PipelineAccessError) as info:
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert stage.call_count == 1
    assert h.fake.sleeps == []
    error = info.value
    assert (error.code, error.request_id, error.http_status) == (61106, "6cb7-req", 200)
    assert str(error) == (
        "Delete Stage State failed for pipeline p1/LastRecordAppender_01: EnOS 61106 "
        '"Wrong pipelineId or OU has no privilege" (requestId 6cb7-req) — check pipeline_id and that '
        "org o123 owns it"
    )


def test_429_waits_at_least_the_retry_after(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, status=429, headers={"Retry-After": "7"}, json={"message": "API rate limit exceeded"})
    add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert len(calls_to(mock, STAGE_URL)) == 2
    assert len(h.fake.sleeps) == 1
    assert h.fake.sleeps[0] >= 7.0
    retrying = [e for e in h.events if e.outcome == "retrying"]
    assert len(retrying) == 1
    assert "HTTP 429 API rate limit exceeded" in retrying[0].detail


def test_retry_after_as_an_http_date(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, status=503, headers={"Retry-After": formatdate(time.time() + 30, usegmt=True)}, body="")
    add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert 25.0 <= h.fake.sleeps[0] <= 31.0


def test_an_html_502_page_then_success(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, status=502, body=HTML_502, content_type="text/html")
    add_stage(mock, json=ok("rid-2"))
    assert h.client().delete_stage_state(TARGET, ["a1"], ["pt1"]).request_ids == ("rid-2",)
    assert len(calls_to(mock, STAGE_URL)) == 2


def test_a_persistent_html_page_gives_a_readable_server_error(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    stage = add_stage(mock, status=502, body=HTML_502, content_type="text/html")
    with pytest.raises(ServerError) as info:
        h.client(deadline=5.0).delete_stage_state(TARGET, ["a1"], ["pt1"])
    error = info.value
    assert error.http_status == 502
    assert error.code is None
    text = str(error)
    assert "HTTP 502" in text
    assert "non-JSON body" in text
    assert "502 Bad Gateway" in text
    assert "nginx" in text
    assert "<html>" not in text and "<h1>" not in text
    assert "  " not in error.message  # tags and line breaks fold into single spaces
    assert "gave up after" in text
    assert "retry budget 5 s per request" in text
    assert stage.call_count == len(h.fake.sleeps) + 1 > 1
    assert sum(h.fake.sleeps) <= 5.0


def test_a_200_with_a_non_json_body_is_an_unexpected_answer_not_retried(
    mock: responses.RequestsMock, h: Harness
) -> None:
    # A 200 is not a transient status: asking again would get the same page.
    add_token(mock)
    stage = add_stage(mock, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(UnexpectedAnswerError, match=r"not a JSON object.*maintenance"):
        h.client(deadline=5.0).delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert stage.call_count == 1


def test_a_timeout_then_success(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, body=requests.exceptions.ConnectTimeout("connect timed out"))
    add_stage(mock, json=ok("rid-after-timeout"))
    report = h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert report.request_ids == ("rid-after-timeout",)
    assert len(calls_to(mock, STAGE_URL)) == 2
    retrying = [e for e in h.events if e.outcome == "retrying"]
    assert len(retrying) == 1
    assert "cannot connect to apim.example.com:443 within 10 s" in retrying[0].detail
    assert "connect timed out" not in retrying[0].detail  # the stack's own text is never copied


def test_persistent_connection_failures_end_in_a_transport_error(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    add_stage(mock, body=requests.exceptions.ConnectionError("connection refused"))
    with pytest.raises(TransportError) as info:
        h.client(deadline=3.0).delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert info.value.retryable
    assert "the connection to apim.example.com:443 failed before a complete answer" in str(info.value)
    assert "gave up after" in str(info.value)
    assert len(h.fake.sleeps) >= 1


def test_a_certificate_that_does_not_verify_is_not_retried(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    stage = add_stage(mock, body=requests.exceptions.SSLError(cause))
    with pytest.raises(TransportError) as info:
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert info.value.retryable is False
    assert "TLS certificate verify failed for apim.example.com (self-signed certificate)" in str(info.value)
    assert "enos:caBundle" in str(info.value)
    assert stage.call_count == 1
    assert h.fake.sleeps == []


def test_a_tls_handshake_cut_short_is_retried(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    cut = requests.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    first = add_stage(mock, body=cut)
    second = add_stage(mock, json=ok("rid-after-eof"))
    report = h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert report.request_ids == ("rid-after-eof",)
    assert first.call_count + second.call_count == 2
    assert len(h.fake.sleeps) == 1


def test_a_connection_dropped_mid_answer_is_retried(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, body=requests.exceptions.ChunkedEncodingError("IncompleteRead(10 bytes read, 90 more)"))
    add_stage(mock, json=ok("rid-after-cut"))
    report = h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert report.request_ids == ("rid-after-cut",)
    assert len(h.fake.sleeps) == 1


def test_data_false_is_a_rejected_deletion_and_not_retried(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    stage = add_stage(mock, json=ok("rid-false", data=False))
    with pytest.raises(DeletionRejectedError) as info:
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert stage.call_count == 1
    assert h.fake.sleeps == []
    text = str(info.value)
    assert "data: false" in text
    assert "rid-false" in text
    assert "paused" in text


@pytest.mark.parametrize("data", [None, "true", 1])
def test_only_data_true_counts_as_deleted(mock: responses.RequestsMock, h: Harness, data: Any) -> None:
    add_token(mock)
    add_stage(mock, json=ok(data=data))
    with pytest.raises(DeletionRejectedError):
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])


# -- tokens --------------------------------------------------------------------------------------------------


def test_an_expired_token_is_renewed_once_and_the_call_retried(
    mock: responses.RequestsMock, h: Harness
) -> None:
    first_token = add_token(mock, "tok-1")
    second_token = add_token(mock, "tok-2")
    add_stage(mock, status=401, json={"code": 1203, "msg": "access token expired"})
    add_stage(mock, json=ok("rid-renewed"))
    report = h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert report.request_ids == ("rid-renewed",)
    assert first_token.call_count == 1
    assert second_token.call_count == 1
    stage_calls = calls_to(mock, STAGE_URL)
    assert [c.request.headers["apim-accesstoken"] for c in stage_calls] == ["tok-1", "tok-2"]
    assert stage_calls[1].request.headers["apim-signature"] == independent_signature(
        stage_calls[1].request, "tok-2"
    )
    assert h.fake.sleeps == []
    # The renewed token is the one cached for later calls.
    assert h.tokens.get((GATEWAY, ACCESS_KEY), lambda: auth.Token("never", 0.0)).value == "tok-2"


def test_an_expired_token_code_in_a_200_answer_also_renews(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock, "tok-1")
    add_token(mock, "tok-2")
    add_stage(mock, json={"code": 1203, "msg": "access token expired", "requestId": "r"})
    add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert [c.request.headers["apim-accesstoken"] for c in calls_to(mock, STAGE_URL)] == ["tok-1", "tok-2"]


def test_a_second_401_is_an_authentication_error(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock, "tok-1")
    add_token(mock, "tok-2")
    stage = add_stage(mock, status=401, json={"code": 1203, "msg": "access token expired"})
    with pytest.raises(AuthenticationError) as info:
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert stage.call_count == 2
    assert len(calls_to(mock, TOKEN_URL)) == 2
    assert info.value.http_status == 401
    assert h.fake.sleeps == []
    assert SECRET not in str(info.value)
    assert "tok-" not in str(info.value)


def test_a_403_is_not_answered_with_a_new_token(mock: responses.RequestsMock, h: Harness) -> None:
    token = add_token(mock)
    stage = add_stage(mock, status=403, json={"message": "IP not allowed"})
    with pytest.raises(AuthenticationError, match="IP not allowed"):
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert token.call_count == 1
    assert stage.call_count == 1


def test_a_token_service_refusal_is_an_authentication_error(mock: responses.RequestsMock, h: Harness) -> None:
    token = mock.add(
        responses.POST,
        TOKEN_URL,
        json={"status": 1003, "msg": "invalid encryption", "business": "apim-token-service"},
    )
    with pytest.raises(AuthenticationError) as info:
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert token.call_count == 1
    assert info.value.code == 1003
    text = str(info.value)
    assert "Get access token" in text
    assert 'EnOS 1003 "invalid encryption"' in text
    assert "ENOS_SECRET_KEY" in text
    assert SECRET not in text


def test_a_duplicated_encryption_is_retried_with_a_new_timestamp(
    mock: responses.RequestsMock, h: Harness
) -> None:
    h.millis.step = 1
    mock.add(responses.POST, TOKEN_URL, json={"status": 1001, "msg": "duplicated encryption"})
    add_token(mock)
    add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    bodies = [json.loads(body_bytes(c.request)) for c in calls_to(mock, TOKEN_URL)]
    assert len(bodies) == 2
    assert bodies[0]["timestamp"] != bodies[1]["timestamp"]
    assert bodies[0]["encryption"] != bodies[1]["encryption"]
    for body in bodies:
        assert (
            body["encryption"]
            == hashlib.sha256(f"{ACCESS_KEY}{body['timestamp']}{SECRET}".encode()).hexdigest()
        )


def test_a_token_answer_without_a_token_is_an_unexpected_answer(
    mock: responses.RequestsMock, h: Harness
) -> None:
    mock.add(responses.POST, TOKEN_URL, json={"status": 0, "msg": "SUCCESS", "data": {}})
    with pytest.raises(UnexpectedAnswerError, match="no accessToken"):
        h.client(deadline=0.0).delete_stage_state(TARGET, ["a1"], ["pt1"])


# -- batching ------------------------------------------------------------------------------------------------


def test_a_million_points_go_out_in_ten_requests_covering_each_once(
    mock: responses.RequestsMock, h: Harness
) -> None:
    points = [f"p{i:07d}" for i in range(1_000_000)]
    seen: list[tuple[str, list[str]]] = []
    lock = threading.Lock()

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        sent_points = body["pointIds"].split(",")
        with lock:
            seen.append((body["assetIds"], sent_points))
            number = len(seen)
        return ok(f"rid-{number}")

    add_token(mock)
    mock.add_callback(
        responses.POST,
        STAGE_URL,
        callback=envelope_callback(answer),
        match=[matchers.query_param_matcher(DELETE_QUERY)],
    )
    report = h.client(parallel=4, limit=100_000).delete_stage_state(TARGET, ["inverter-1"], points)

    assert len(seen) == 10
    assert report.request_count == 10
    assert report.pairs == 1_000_000
    assert all(assets == "inverter-1" for assets, _ in seen)
    assert all(len(batch) <= 100_000 for _, batch in seen)
    counts = Counter(p for _, batch in seen for p in batch)
    assert len(counts) == 1_000_000
    assert set(counts.values()) == {1}
    assert counts.keys() == set(points)


def test_a_thousand_by_a_thousand_takes_ten_requests_within_the_limit(
    mock: responses.RequestsMock, h: Harness
) -> None:
    assets = [f"a{i:04d}" for i in range(1000)]
    points = [f"p{i:04d}" for i in range(1000)]
    pairs: Counter[tuple[str, str]] = Counter()
    sizes: list[int] = []

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        a, p = body["assetIds"].split(","), body["pointIds"].split(",")
        sizes.append(len(a) * len(p))
        pairs.update((x, y) for x in a for y in p)
        return ok()

    add_token(mock)
    mock.add_callback(responses.POST, STAGE_URL, callback=envelope_callback(answer))
    report = h.client(parallel=1).delete_stage_state(TARGET, assets, points)
    assert report.request_count == 10
    assert max(sizes) <= 100_000
    assert len(pairs) == 1_000_000
    assert set(pairs.values()) == {1}


def test_61105_splits_the_batch_in_two(mock: responses.RequestsMock, h: Harness) -> None:
    assets = ["a1", "a2", "a3", "a4"]
    points = [f"pt{i:02d}" for i in range(10)]
    accepted: Counter[tuple[str, str]] = Counter()
    sent_sizes: list[tuple[int, int]] = []

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        a, p = body["assetIds"].split(","), body["pointIds"].split(",")
        sent_sizes.append((len(a), len(p)))
        if len(a) * len(p) > 20:
            return {"code": 61105, "msg": "too many points", "requestId": "rid-too-many"}
        accepted.update((x, y) for x in a for y in p)
        return ok(f"rid-{len(sent_sizes)}")

    add_token(mock)
    mock.add_callback(responses.POST, STAGE_URL, callback=envelope_callback(answer))
    report = h.client(limit=100).delete_stage_state(TARGET, assets, points)

    assert sent_sizes == [(4, 10), (4, 5), (4, 5)]  # the larger side (points) halved
    assert report.request_ids == ("rid-2", "rid-3")
    assert accepted.keys() == {(a, p) for a in assets for p in points}
    assert set(accepted.values()) == {1}
    splits = [e for e in h.events if e.outcome == "split"]
    assert len(splits) == 1
    assert splits[0].request_id == "rid-too-many"
    assert h.fake.sleeps == []


def test_413_splits_the_batch_like_61105(mock: responses.RequestsMock, h: Harness) -> None:
    # A gateway body limit below 100,000 pairs of long IDs must not need a hand-tuned setting.
    points = [f"pt{i:02d}" for i in range(8)]
    sent: list[int] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(body_bytes(request))
        count = len(body["pointIds"].split(","))
        sent.append(count)
        if count > 2:
            return 413, {}, "<html><h1>413 Request Entity Too Large</h1></html>"
        return 200, {}, json.dumps(ok(f"rid-{len(sent)}"))

    add_token(mock)
    mock.add_callback(responses.POST, STAGE_URL, callback=answer)
    report = h.client().delete_stage_state(TARGET, ["a1"], points)

    assert sent == [8, 4, 2, 2, 4, 2, 2]
    assert report.request_count == 4
    parts = [e for e in h.events if e.outcome == "ok" and e.operation == "Delete Stage State"]
    assert len(parts) == 4
    assert all("part of a split request" in e.detail for e in parts)


def test_each_request_has_its_own_retry_budget(mock: responses.RequestsMock, h: Harness) -> None:
    # The first batch needs three retries, the second never succeeds: the second still gets its whole
    # budget, counted from its own first attempt, however long the first took.
    attempts: Counter[str] = Counter()

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        asset = json.loads(body_bytes(request))["assetIds"]
        attempts[asset] += 1
        if asset == "a1" and attempts[asset] > 3:
            return 200, {}, json.dumps(ok("rid-a1"))
        return 503, {}, json.dumps({"msg": "busy"})

    add_token(mock)
    mock.add_callback(responses.POST, STAGE_URL, callback=answer)
    started = h.fake.now
    with pytest.raises(ServerError, match="gave up after") as info:
        h.client(limit=1, deadline=3.0).delete_stage_state(TARGET, ["a1", "a2"], ["pt1"])
    assert attempts["a1"] == 4
    first_took = 0.55 * (0.5 + 1.0 + 2.0)  # the first batch's three waits (jitter 0.55 at rng 0.5)
    assert h.fake.now - started == pytest.approx(first_took + 3.0)  # a2 used all of its 3 s
    assert "retry budget 3 s per request" in str(info.value)


def test_61105_for_a_single_pair_is_raised(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    stage = add_stage(mock, json={"code": 61105, "msg": "too many points", "requestId": "r"})
    with pytest.raises(TooManyPointsError):
        h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert stage.call_count == 1


def test_parallel_batches_report_request_ids_in_batch_order(mock: responses.RequestsMock, h: Harness) -> None:
    points = [f"pt{i}" for i in range(10)]  # limit 2 -> five batches of 1 x 2
    last_answered = threading.Event()

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        first_point = body["pointIds"].split(",")[0]
        if first_point == "pt0":
            # Hold the first batch until the last one has been answered: completion order != batch order.
            assert last_answered.wait(10), "the batches did not run in parallel"
        if first_point == "pt8":
            last_answered.set()
        return ok(f"rid-{first_point}")

    token = add_token(mock)
    mock.add_callback(responses.POST, STAGE_URL, callback=envelope_callback(answer))
    report = h.client(parallel=4, limit=2).delete_stage_state(TARGET, ["a1"], points)
    assert report.request_ids == ("rid-pt0", "rid-pt2", "rid-pt4", "rid-pt6", "rid-pt8")
    assert token.call_count == 1
    ok_batches = sorted(e.batch for e in h.events if e.outcome == "ok" and e.batch is not None)
    assert ok_batches == [1, 2, 3, 4, 5]
    assert {e.batches for e in h.events if e.batch is not None} == {5}


def test_a_failure_stops_later_batches_and_says_how_many_succeeded(
    mock: responses.RequestsMock, h: Harness
) -> None:
    points = [f"pt{i}" for i in range(10)]  # limit 2 -> five batches

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if body["pointIds"].startswith("pt4"):
            return {"code": 61106, "msg": "no privilege", "requestId": "rid-bad"}
        return ok()

    add_token(mock)
    stage = mock.add_callback(responses.POST, STAGE_URL, callback=envelope_callback(answer))
    with pytest.raises(PipelineAccessError) as info:
        h.client(parallel=1, limit=2).delete_stage_state(TARGET, ["a1"], points)
    assert stage.call_count == 3
    assert "[2 of 5 requests had succeeded" in str(info.value)
    assert "rid-bad" in str(info.value)


def test_a_failure_in_parallel_stops_new_batches(
    mock: responses.RequestsMock, h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 10
    points = [f"pt{i:02d}" for i in range(2 * total)]  # limit 2 -> ten batches
    # Hold every successful batch until the client has cancelled the batches not yet started.
    cancel_calls: list[bool] = []
    all_cancelled = threading.Event()
    original_cancel = Future.cancel

    def counting_cancel(self: Future[Any]) -> bool:
        result = original_cancel(self)
        cancel_calls.append(result)
        if len(cancel_calls) >= total:
            all_cancelled.set()
        return result

    monkeypatch.setattr(Future, "cancel", counting_cancel)
    succeeded: list[str] = []
    lock = threading.Lock()

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if body["pointIds"].startswith("pt00"):
            return {"code": 61106, "msg": "no privilege", "requestId": "rid-bad"}
        all_cancelled.wait(10)
        with lock:
            succeeded.append(body["pointIds"])
        return ok()

    add_token(mock)
    stage = mock.add_callback(responses.POST, STAGE_URL, callback=envelope_callback(answer))
    with pytest.raises(PipelineAccessError) as info:
        h.client(parallel=4, limit=2).delete_stage_state(TARGET, ["a1"], points)
    # At most the four workers' batches plus one picked up right after the failure ever started.
    assert stage.call_count <= 5
    assert len(succeeded) == stage.call_count - 1
    assert f"[{len(succeeded)} of {total} requests had succeeded" in str(info.value)


def test_get_stage_state_accepts_a_list_and_an_items_object(mock: responses.RequestsMock, h: Harness) -> None:
    def answer(body: dict[str, Any]) -> dict[str, Any]:
        point = body["pointIds"]
        item = {"assetId": body["assetIds"], "pointId": point, "time": 1, "value": 2.5}
        if point == "pt1":
            return ok("rid-list", data=[item])
        if point == "pt2":
            return ok("rid-items", data={"items": [item]})
        return ok("rid-none", data=None)

    add_token(mock)
    mock.add_callback(
        responses.POST,
        STAGE_URL,
        callback=envelope_callback(answer),
        match=[matchers.query_param_matcher(GET_QUERY)],
    )
    items, request_ids = h.client(limit=1).get_stage_state(TARGET, ["a1"], ["pt1", "pt2", "pt3"])
    assert request_ids == ("rid-list", "rid-items", "rid-none")
    assert [(i["assetId"], i["pointId"]) for i in items] == [("a1", "pt1"), ("a1", "pt2")]


@pytest.mark.parametrize("data", ["nonsense", {"total": 1, "list": [{"assetId": "a1", "pointId": "pt1"}]}])
def test_get_stage_state_refuses_an_unknown_shape_rather_than_reading_it_as_empty(
    mock: responses.RequestsMock, h: Harness, data: Any
) -> None:
    # verify=True relies on this: an unknown shape read as "no state" would pass verification falsely.
    add_token(mock)
    stage = add_stage(mock, query=GET_QUERY, json=ok("rid-odd", data=data))
    with pytest.raises(UnexpectedAnswerError, match="expected a list of items") as info:
        h.client().get_stage_state(TARGET, ["a1"], ["pt1"])
    assert not isinstance(info.value, ServerError)  # not retried: asking again gives the same shape
    assert info.value.request_id == "rid-odd"
    assert stage.call_count == 1


def test_empty_sets_are_refused_before_any_call(mock: responses.RequestsMock, h: Harness) -> None:
    with pytest.raises(ValueError):
        h.client().delete_stage_state(TARGET, [], ["pt1"])
    assert len(mock.calls) == 0


# -- pipelines -----------------------------------------------------------------------------------------------


def pipelines_page(
    mock: responses.RequestsMock, page: int, size: int, count: int, pipelines: list[dict[str, Any]]
) -> Any:
    query = {"orgId": "o123", "pageNo": str(page), "pageSize": str(size), "ifReleased": "true"}
    return mock.add(
        responses.GET,
        PIPELINES_URL,
        match=[matchers.query_param_matcher(query)],
        json=ok(f"rid-page-{page}", data={"count": count, "pipelines": pipelines}),
    )


def pipeline(n: int, status: str = "RUNNING") -> dict[str, Any]:
    return {"pipelineId": f"pipe-{n}", "pipelineName": f"Pipeline {n}", "status": status}


def test_list_pipelines_stops_when_a_server_ignores_the_page_number(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    repeated = mock.add(
        responses.GET,
        PIPELINES_URL,
        json=ok("rid-same", data={"pipelines": [pipeline(1), pipeline(2)]}),  # no count either
    )
    found = list(h.client().list_pipelines("o123", page_size=2))
    assert [p["pipelineId"] for p in found] == ["pipe-1", "pipe-2"]
    assert repeated.call_count == 2


def test_list_pipelines_pages_until_the_count_is_reached(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    pipelines_page(mock, 1, 2, 5, [pipeline(1), pipeline(2)])
    pipelines_page(mock, 2, 2, 5, [pipeline(3), pipeline(4)])
    pipelines_page(mock, 3, 2, 5, [pipeline(5)])
    listed = list(h.client().list_pipelines("o123", page_size=2))
    assert [p["pipelineId"] for p in listed] == [f"pipe-{n}" for n in range(1, 6)]
    for call in calls_to(mock, PIPELINES_URL):
        sent = call.request
        assert sent.method == "GET"
        assert not sent.body
        assert "Content-Type" not in sent.headers
        assert sent.headers["apim-signature"] == independent_signature(sent, TOKEN)


def test_list_pipelines_stops_when_the_count_is_reached_on_a_full_page(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    pipelines_page(mock, 1, 2, 4, [pipeline(1), pipeline(2)])
    pipelines_page(mock, 2, 2, 4, [pipeline(3), pipeline(4)])
    assert len(list(h.client().list_pipelines("o123", page_size=2))) == 4
    assert len(calls_to(mock, PIPELINES_URL)) == 2


def test_pipeline_status_pages_until_found(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    pipelines_page(mock, 1, 100, 150, [pipeline(n) for n in range(100)])
    pipelines_page(mock, 2, 100, 150, [pipeline(n) for n in range(100, 120)] + [pipeline(120, "paused")])
    assert h.client().pipeline_status("o123", "pipe-120") == "PAUSED"
    assert len(calls_to(mock, PIPELINES_URL)) == 2


def test_pipeline_status_stops_paging_once_found(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    pipelines_page(mock, 1, 100, 500, [pipeline(n, "STOPPED" if n == 7 else "RUNNING") for n in range(100)])
    assert h.client().pipeline_status("o123", "pipe-7") == "STOPPED"
    assert len(calls_to(mock, PIPELINES_URL)) == 1


def test_pipeline_status_is_none_when_not_listed(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    pipelines_page(mock, 1, 100, 3, [pipeline(1), pipeline(2), pipeline(3)])
    assert h.client().pipeline_status("o123", "pipe-404") is None


def test_pipeline_status_with_no_pipelines_is_none(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    pipelines_page(mock, 1, 100, 0, [])
    assert h.client().pipeline_status("o123", "pipe-1") is None


def test_operate_pipeline_posts_the_action(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    rsp = mock.add(
        responses.POST,
        GATEWAY + "/streaming/v2.0/streaming/pipeline/pipe%2F1",
        match=[matchers.query_param_matcher({"action": "start", "orgId": "o123"})],
        json=ok("rid-op", data=None),
    )
    envelope = h.client().operate_pipeline("o123", "pipe/1", "start", {"executionMode": 0, "kafkaRate": 1000})
    assert envelope["requestId"] == "rid-op"
    sent = rsp.calls[0].request
    assert json.loads(body_bytes(sent)) == {"executionMode": 0, "kafkaRate": 1000}
    assert sent.headers["apim-signature"] == independent_signature(sent, TOKEN)


# -- progress events -----------------------------------------------------------------------------------------


def test_events_one_ok_per_request_and_never_a_secret(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, status=503, body="")
    add_stage(mock, json=ok("rid-a"))
    add_stage(mock, json=ok("rid-b"))
    h.client(limit=1).delete_stage_state(TARGET, ["a1"], ["pt1", "pt2"])

    answered = [
        c for c in mock.calls if isinstance(c.response, requests.Response) and c.response.status_code == 200
    ]
    oks = [e for e in h.events if e.outcome == "ok"]
    assert len(oks) == len(answered) == 3  # the token and the two batches
    assert [e.request_id for e in oks if e.batch is not None] == ["rid-a", "rid-b"]
    assert [e.batch for e in oks if e.batch is not None] == [1, 2]
    secrets = {SECRET, TOKEN}
    for call in mock.calls:
        secrets.update(v for k, v in call.request.headers.items() if k.lower() == "apim-signature")
        if call.request.url == TOKEN_URL:
            secrets.add(json.loads(body_bytes(call.request))["encryption"])
    assert len(secrets) >= 4
    for event in h.events:
        for text in (event.describe(), repr(event)):
            assert not any(secret in text for secret in secrets), text
    described = oks[1].describe()
    assert "Delete Stage State" in described
    assert "request 1/2" in described
    assert "1 assets x 1 points" in described
    assert "requestId rid-a" in described


def test_client_repr_hides_the_secret(h: Harness) -> None:
    assert SECRET not in repr(h.client())


# -- body encoding -------------------------------------------------------------------------------------------


@given(st.text(max_size=40))
def test_json_string_is_exactly_what_the_json_encoder_writes(value: str) -> None:
    # The fast path must never change a byte of what is signed and sent.
    try:
        expected = json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _json_string(value)
        return
    assert _json_string(value) == expected


def test_a_body_with_characters_to_escape_is_still_valid_json() -> None:
    target = StageTarget("o1", 'pipe"line\\1', "LastRecordAppender_01\t")
    body = build_stage_body(target, ["a1", "a2"], ["p1"], Batch(0, 2, 0, 1))
    assert json.loads(body) == {
        "pipelineId": 'pipe"line\\1',
        "stageInstanceName": "LastRecordAppender_01\t",
        "assetIds": "a1,a2",
        "pointIds": "p1",
    }
