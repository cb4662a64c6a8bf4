"""Reading answers: status first, then the envelope; every shape ends as a clear EnosError."""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enos_pulumi.enos.answers import Redactor, clean, decode, request_id_of, retry_after
from enos_pulumi.enos.errors import (
    ApiError,
    AuthenticationError,
    EnosError,
    PipelineAccessError,
    RateLimitedError,
    ServerError,
    UnexpectedAnswerError,
)
from enos_pulumi.enos.request import Request
from enos_pulumi.enos.transport import Answer

SECRET = "sk-answers-secret-value"
TOKEN = "tok-answers-token-value"


def answer(status: int = 200, body: Any = None, raw: bytes | None = None, **headers: str) -> Answer:
    data = raw if raw is not None else json.dumps(body).encode()
    return Answer(status, "Reason", {k.replace("_", "-"): v for k, v in headers.items()}, data)


def run(a: Answer, code_key: str = "code") -> dict[str, Any]:
    request = Request(
        "POST",
        "/streaming/v2.0/stage-state",
        {},
        b"{}",
        "Delete Stage State",
        "pipeline p/s",
        context={"org_id": "o1", "pipeline_id": "p"},
    )
    return decode(a, request, code_key=code_key, redact=Redactor((SECRET, TOKEN)))


def test_a_success_envelope_is_returned() -> None:
    envelope = run(answer(body={"code": 0, "msg": " OK", "requestId": "r1", "data": True}))
    assert envelope["data"] is True


def test_a_business_code_keeps_code_message_request_id_and_status() -> None:
    with pytest.raises(PipelineAccessError) as info:
        run(answer(body={"code": 61106, "msg": "Wrong pipelineId", "requestId": "r-61106"}))
    error = info.value
    assert (error.code, error.message, error.request_id, error.http_status) == (
        61106,
        "Wrong pipelineId",
        "r-61106",
        200,
    )
    assert "requestId r-61106" in str(error)


# -- Retry-After -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5.0), (" 7 ", 7.0), ("²", None), ("٣", None), ("-1", None), ("1.5", None), ("soon", None),
     ("", None), (None, None), ("99999999999", 86400.0), ("Mon, 99 Foo 2026 25:61:00 GMT", None)],
)  # fmt: skip
def test_retry_after_takes_ascii_seconds_or_a_date_and_nothing_else(
    value: str | None, expected: float | None
) -> None:
    # Before: "²".isdigit() is True and float("²") raised a raw ValueError.
    assert retry_after(value) == expected


def test_retry_after_as_an_http_date_in_the_future() -> None:
    import time

    waited = retry_after(formatdate(time.time() + 30, usegmt=True))
    assert waited is not None and 25 <= waited <= 31


@given(st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    result = retry_after(value)
    assert result is None or 0 <= result <= 86400


def test_a_429_with_an_unusable_retry_after_is_still_a_rate_limit() -> None:
    with pytest.raises(RateLimitedError) as info:
        run(answer(429, {"msg": "API rate limit exceeded"}, Retry_After="²"))
    assert info.value.retry_after is None


# -- shapes ------------------------------------------------------------------------------------------------


def test_deeply_nested_json_is_an_unexpected_answer_not_a_recursion_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(UnexpectedAnswerError) as info:
        run(answer(raw=deep))
    assert "not a JSON object" in str(info.value)
    with pytest.raises(ServerError):  # on a transient status: retried like any 503
        run(answer(503, raw=deep))


@pytest.mark.parametrize(
    "body",
    [
        {"code": "0", "data": True},
        {"code": True, "data": True},
        {"code": 0.0, "data": True},
        {"code": None},
        {"msg": "no code"},
    ],
)
def test_a_code_that_is_not_an_integer_is_an_unexpected_answer(body: Any) -> None:
    with pytest.raises(UnexpectedAnswerError, match="not an integer") as info:
        run(answer(body=body))
    assert "Delete Stage State failed" in str(info.value)


@pytest.mark.parametrize("body", [[1, 2], "text", 3, None, True])
def test_a_json_value_that_is_not_an_object_is_an_unexpected_answer(body: Any) -> None:
    with pytest.raises(UnexpectedAnswerError, match="not a JSON object"):
        run(answer(body=body))


def test_nan_and_huge_numbers_do_not_escape() -> None:
    with pytest.raises(UnexpectedAnswerError):
        run(answer(raw=b'{"code": NaN, "data": true}'))
    with pytest.raises(UnexpectedAnswerError):
        run(answer(raw=b'{"code": 1e400}'))
    assert run(answer(raw=b'{"code": 0, "data": 1e400}'))["data"] == float("inf")


def test_a_500_with_a_json_body_is_not_called_non_json() -> None:
    with pytest.raises(ServerError) as info:
        run(answer(500, {"error": "internal", "trace": "x"}))
    assert "JSON body" in info.value.message
    assert "non-JSON" not in info.value.message


def test_a_redirect_is_an_unexpected_answer_saying_so() -> None:
    with pytest.raises(UnexpectedAnswerError, match="redirected"):
        run(answer(302, raw=b"", Location="https://login.example.com/"))


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_map_to_retryable_classes(status: int) -> None:
    from enos_pulumi.enos.retry import is_retryable

    with pytest.raises(ApiError) as info:
        run(answer(status, raw=b"<html>busy</html>"))
    assert is_retryable(info.value)


def test_token_service_answers_use_status_as_their_code() -> None:
    with pytest.raises(AuthenticationError) as info:
        run(answer(body={"status": 1003, "msg": "Invalid encryption"}), code_key="status")
    assert info.value.code == 1003


# -- what reaches the user's screen ------------------------------------------------------------------------


def test_request_id_falls_back_to_the_gateway_header_and_ignores_junk() -> None:
    assert request_id_of({"requestId": "r1"}, {}) == "r1"
    assert request_id_of({}, {"x-request-id": "gw-7"}) == "gw-7"
    assert request_id_of({"requestId": "has spaces in it"}, {}) is None
    assert request_id_of({"requestId": "x" * 500}, {}) is None
    assert request_id_of({"requestId": 12}, {"x-request-id": "gw-8"}) == "gw-8"


def test_an_echoed_secret_in_an_error_page_is_hidden() -> None:
    # A gateway's debug page that echoes request headers must not put the token in our error text.
    page = f"<html><pre>apim-accesstoken: {TOKEN}\nsecret={SECRET}</pre></html>".encode()
    with pytest.raises(ApiError) as info:
        run(answer(400, raw=page))
    text = str(info.value)
    assert TOKEN not in text and SECRET not in text
    assert "(hidden)" in text
    with pytest.raises(ApiError) as info:
        run(answer(body={"code": 61102, "msg": f"bad header {TOKEN}"}))
    assert TOKEN not in str(info.value)


def test_messages_are_one_line_and_cut_at_a_word() -> None:
    with pytest.raises(ApiError) as info:
        run(answer(body={"code": 61102, "msg": "line one\r\nline two\x00\x1b[31m " + "word " * 200}))
    message = info.value.message
    assert "\n" not in message and "\x1b" not in message and "\x00" not in message
    assert len(message) <= 305 and message.endswith(" ...")
    assert "wor ..." not in message


@given(st.binary(max_size=300), st.sampled_from([200, 400, 401, 413, 429, 500, 503]))
def test_any_body_ends_as_an_envelope_or_an_enos_error(body: bytes, status: int) -> None:
    try:
        run(answer(status, raw=body))
    except EnosError as exc:
        assert "Delete Stage State failed" in str(exc)


def test_clean_keeps_short_text_and_redacts() -> None:
    assert clean(f"ok {SECRET}", Redactor((SECRET,))) == "ok (hidden)"
    assert Redactor(("abc",))("abc") == "abc"  # too short to tell from text


def test_a_secret_cut_in_half_by_a_summary_is_still_hidden() -> None:
    # An error page echoing headers, long enough that the summary's cut lands inside the token.
    for pad in range(90, 130):
        page = ("x " * pad + f"apim-accesstoken: {TOKEN}").encode()
        with pytest.raises(ApiError) as info:
            run(answer(400, raw=page))
        text = str(info.value)
        assert TOKEN[:8] not in text.replace("(hidden)", ""), (pad, text)


def test_a_token_in_a_refused_token_answer_is_hidden() -> None:
    body = {"status": 0, "data": {"accessToken": "tok-from-a-502-body-123", "expire": 7200}}
    with pytest.raises(ServerError) as info:
        run(answer(502, body), code_key="status")
    assert "tok-from-a-502-body-123" not in str(info.value)
    assert "not shown: it may hold a token" in str(info.value)


def test_values_inside_strings_do_not_count() -> None:
    from enos_pulumi.enos.answers import value_count

    assert value_count(b'{"a": "x,y,[z]{", "b": [1, 2]}') == 4  # {, the comma between a and b, [, 1's comma
    assert value_count(b'["a\\",", "b"]') == 2


def test_a_request_id_that_is_a_secret_of_the_call_is_dropped() -> None:
    # A gateway echoing the token as requestId would put it into the stack's state (request_ids).
    envelope = run(answer(body={"code": 0, "requestId": TOKEN, "data": True}, x_request_id="gw-rid-9"))
    assert envelope["requestId"] == "gw-rid-9"
    envelope = run(answer(body={"code": 0, "requestId": "r1", "data": True}, x_request_id=TOKEN))
    assert envelope["requestId"] == "r1"


def test_a_secret_at_the_summary_cut_is_hidden() -> None:
    # The token straddles the point where the body is cut for its summary; tags collapse so the shown
    # text stays short and is not cut again.
    page = ("<b></b>" * 9360 + " " + TOKEN).encode()
    for shift in range(0, 12):
        with pytest.raises(ApiError) as info:
            run(answer(400, raw=b"<i></i>" * shift + page))
        assert TOKEN[:10] not in str(info.value)
