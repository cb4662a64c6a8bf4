"""Authenticated calls: the token (checked before use), retries, progress lines, both auth schemes."""

from __future__ import annotations

import json
import math
import threading
import time
import traceback
from typing import Any

import pytest
import requests
import responses

from enos_pulumi.enos import auth
from enos_pulumi.enos.errors import (
    AuthenticationError,
    RequestTooLargeError,
    ServerError,
    TransportError,
    UnexpectedAnswerError,
)
from tests.support.stubs import (
    DELETE_QUERY,
    STAGE_URL,
    TARGET,
    TOKEN,
    TOKEN_URL,
    Harness,
    add_stage,
    add_token,
    calls_to,
    ok,
)


def token_answer(token: Any, expire: Any = 7200) -> dict[str, Any]:
    return {"status": 0, "msg": "SUCCESS", "data": {"accessToken": token, "expire": expire}}


# -- the token is checked when it arrives ------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        " tok-S3CR3T-leading-space",
        "tok-S3CR3T\r\nX-Evil: 1",
        "tok-S3CR3T-ünïcödé-€",
        "tok-S3CR3T\ttab",
        "S3CR3T" * 1500,
    ],
)
def test_a_token_that_is_not_a_header_value_is_refused_without_echoing_it(
    mock: responses.RequestsMock, h: Harness, token: str
) -> None:
    # Before: the HTTP stack refused the header and its error, quoting the token, became our error text
    # and progress line (or a raw UnicodeEncodeError escaped).
    mock.add(responses.POST, TOKEN_URL, json=token_answer(token))
    with pytest.raises(AuthenticationError) as info:
        h.client(deadline=0).delete_stage_state(TARGET, ["a1"], ["pt1"])
    texts = [str(info.value), repr(info.value), "".join(traceback.format_exception(info.value))]
    texts += [e.describe() for e in h.events]
    for text in texts:
        assert token not in text and "S3CR3T" not in text
    assert "not a valid HTTP header value" in str(info.value)
    assert "not shown" in str(info.value)
    assert calls_to(mock, STAGE_URL) == []


@pytest.mark.parametrize("expire", [0, -5, math.inf, math.nan, "7200", None, True])
def test_a_token_lifetime_that_is_not_a_positive_number_is_refused(
    mock: responses.RequestsMock, h: Harness, expire: Any
) -> None:
    mock.add(responses.POST, TOKEN_URL, body=json.dumps(token_answer(TOKEN, expire)))
    with pytest.raises(UnexpectedAnswerError, match="expire") as info:
        h.client(deadline=0).delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert "Get access token failed" in str(info.value)


def test_a_huge_token_lifetime_is_capped_to_a_day(mock: responses.RequestsMock, h: Harness) -> None:
    mock.add(responses.POST, TOKEN_URL, json=token_answer(TOKEN, 10**12))
    add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    token = h.tokens.peek(("https://apim.example.com", "my-app-key"))
    assert token is not None and token.renew_at - h.tokens.now() <= 86400


# -- token answers never split a batch; progress names the token request -----------------------------------


def test_a_413_from_the_token_endpoint_never_splits_the_batch(
    mock: responses.RequestsMock, h: Harness
) -> None:
    # Before: taken for a too-large stage-state request, it split the delete batch again and again
    # (16 token requests before giving up).
    token = mock.add(responses.POST, TOKEN_URL, status=413, json={"msg": "Request Entity Too Large"})
    with pytest.raises(RequestTooLargeError) as info:
        h.client(deadline=0).delete_stage_state(TARGET, [f"a{i}" for i in range(8)], ["pt1", "pt2"])
    assert token.call_count == 1
    assert info.value.operation == "Get access token"
    assert "split" not in h.outcomes()
    lines = [e.describe() for e in h.events]
    assert any(line.startswith("enos: Get access token") and "| failed |" in line for line in lines)
    delete_lines = [line for line in lines if line.startswith("enos: Delete Stage State")]
    assert delete_lines and all("| not sent | no access token" in line for line in delete_lines)
    assert not any("413" in line for line in delete_lines)


def test_waiting_requests_share_a_failed_token_fetch_instead_of_each_trying(
    mock: responses.RequestsMock, h: Harness
) -> None:
    # Four parallel batches wait on one token fetch; when it fails they fail with it, rather than each
    # fetching in turn (four fetch times, behind a slow or hanging token service).
    started = threading.Event()
    release = threading.Event()

    def slow_refusal(_request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        started.set()
        release.wait(5)
        return 503, {}, json.dumps({"msg": "token service down"})

    token = mock.add_callback(responses.POST, TOKEN_URL, callback=slow_refusal)
    client = h.client(parallel=4, limit=1, deadline=0)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client.delete_stage_state(TARGET, ["a1", "a2", "a3", "a4"], ["pt1"])
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(5)
    time.sleep(0.2)  # let the other three batches queue on the token lock
    release.set()
    thread.join(10)
    assert token.call_count == 1
    assert isinstance(errors[0], ServerError) and errors[0].operation == "Get access token"


def test_token_cache_waiters_get_a_copy_of_the_failure() -> None:
    cache = auth.TokenCache()
    key = ("gw", "ak")
    holder_inside = threading.Event()
    go = threading.Event()
    fetches: list[int] = []

    def failing_fetch() -> auth.Token:
        fetches.append(1)
        holder_inside.set()
        go.wait(5)
        raise ServerError(operation="Get access token", message="down", http_status=503)

    results: list[BaseException] = []

    def ask() -> None:
        try:
            cache.get(key, failing_fetch)
        except ServerError as exc:
            results.append(exc)

    first = threading.Thread(target=ask)
    first.start()
    holder_inside.wait(5)
    second = threading.Thread(target=ask)
    second.start()
    time.sleep(0.1)
    go.set()
    first.join(5)
    second.join(5)
    assert len(fetches) == 1
    assert len(results) == 2 and results[0] is not results[1]
    # A later caller (not a waiter) tries again.
    with pytest.raises(ServerError):
        cache.get(key, failing_fetch)
    assert len(fetches) == 2


# -- retries -----------------------------------------------------------------------------------------------


def test_an_http_408_is_retried(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, status=408, json={"msg": "Request Timeout"})
    add_stage(mock, json=ok("rid-after-408"))
    report = h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert report.request_ids == ("rid-after-408",)
    assert h.outcomes().count("retrying") == 1


def test_a_host_that_does_not_resolve_is_retried_at_most_once(h: Harness) -> None:
    # Before: retried 18 times over ~110 s, ending in raw urllib3 text.
    from enos_pulumi.enos.client import EnosClient
    from enos_pulumi.enos.retry import Backoff, RetryPolicy
    from enos_pulumi.enos.settings import Settings

    settings = Settings(api_gateway="https://enos-gw.invalid", access_key="ak", secret_key="sk-dns-secret")
    policy = RetryPolicy(deadline=120, backoff=Backoff(), clock=h.fake.clock, sleep=h.fake.sleep)
    client = EnosClient(
        settings, retry=policy, on_event=h.events.append, tokens=h.tokens, sessions=h.sessions
    )
    with pytest.raises(TransportError) as info:
        client.delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert len(h.fake.sleeps) == 1
    text = str(info.value)
    assert "cannot resolve host enos-gw.invalid — check enos:apiGateway" in text
    assert "Max retries" not in text and "NameResolution" not in text
    shown = "".join(traceback.format_exception(info.value))  # what the Pulumi host prints
    assert "direct cause" not in shown and "During handling" not in shown  # no chain of urllib3 errors
    for event in h.events:
        assert event.detail == "" or not event.detail.endswith(("Resoluti", "Resolut")), event.detail


def test_progress_details_are_cut_at_a_word(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    add_stage(mock, status=503, json={"msg": "Service " + "temporarily unavailable " * 30})
    with pytest.raises(ServerError):
        h.client(deadline=0).delete_stage_state(TARGET, ["a1"], ["pt1"])
    failed = [e for e in h.events if e.outcome == "failed" and e.operation == "Delete Stage State"]
    assert failed[0].detail.endswith(" ...")
    assert failed[0].detail[:-4].split()[-1] in ("temporarily", "unavailable")


# -- auth schemes ------------------------------------------------------------------------------------------


def test_the_bearer_scheme_sends_an_authorization_header_and_no_signature(
    mock: responses.RequestsMock, h: Harness
) -> None:
    import dataclasses

    add_token(mock)
    stage = add_stage(mock, json=ok())
    client = h.client()
    bearer = type(client)(
        dataclasses.replace(client.settings, auth_scheme="bearer"),
        retry=client.retry,
        tokens=h.tokens,
        sessions=h.sessions,
    )
    bearer.delete_stage_state(TARGET, ["a1"], ["pt1"])
    sent = stage.calls[0].request.headers
    assert sent["Authorization"] == f"Bearer {TOKEN}"
    assert not {"apim-accesstoken", "apim-signature", "apim-timestamp"} & {k.lower() for k in sent}


def test_the_default_scheme_signs_and_sends_no_authorization_header(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    stage = add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    sent = stage.calls[0].request.headers
    assert "Authorization" not in sent
    assert sent["apim-accesstoken"] == TOKEN and len(sent["apim-signature"]) == 64


def test_query_of_a_delete_is_as_documented(mock: responses.RequestsMock, h: Harness) -> None:
    add_token(mock)
    stage = add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    assert stage.calls[0].request.url.endswith("?" + "&".join(f"{k}={v}" for k, v in DELETE_QUERY.items()))


def test_the_first_retry_line_says_how_long_retries_may_go_on(
    mock: responses.RequestsMock, h: Harness
) -> None:
    add_token(mock)
    add_stage(mock, status=503, json={"msg": "busy"})
    add_stage(mock, status=503, json={"msg": "busy"})
    add_stage(mock, json=ok())
    h.client(deadline=90).delete_stage_state(TARGET, ["a1"], ["pt1"])
    retrying = [e.detail for e in h.events if e.outcome == "retrying"]
    assert "(for up to 90 s: enos:retryDeadlineSeconds)" in retrying[0]
    assert "for up to" not in retrying[1]


def test_a_retry_while_the_token_service_is_down_says_the_attempt_was_not_sent(
    mock: responses.RequestsMock, h: Harness
) -> None:
    mock.add(responses.POST, TOKEN_URL, status=503, json={"status": 503, "msg": "busy"})
    add_token(mock)
    add_stage(mock, json=ok())
    h.client().delete_stage_state(TARGET, ["a1"], ["pt1"])
    lines = [e.describe() for e in h.events if e.operation == "Delete Stage State"]
    assert "| retrying | attempt 1 not sent (no access token); retrying in " in lines[0]
    assert "| ok | requestId rid-1" in lines[-1]


def test_a_handler_that_cannot_read_the_data_is_an_unexpected_answer_with_its_request_id(
    mock: responses.RequestsMock, h: Harness
) -> None:
    from enos_pulumi.enos.request import Request

    add_token(mock)
    add_stage(mock, json=ok("rid-odd", data={"unexpected": 1}))
    caller = h.client()._caller
    request = Request("POST", "/streaming/v2.0/stage-state", DELETE_QUERY, b"{}", "Op", "the target")
    with pytest.raises(UnexpectedAnswerError) as info:
        caller.call(request, accept=lambda envelope: envelope["data"]["items"])
    error = info.value
    assert "cannot read the answer's data (KeyError)" in str(error)
    assert (error.request_id, error.http_status, error.code) == ("rid-odd", 200, 0)
    assert [e.outcome for e in h.events if e.operation == "Op"] == ["failed"]  # not retried
