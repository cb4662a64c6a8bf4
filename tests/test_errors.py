"""The error hierarchy: code/status mapping, the text users see, pickling."""

from __future__ import annotations

import copy
import pickle

import pytest

from enos_pulumi.enos import errors
from enos_pulumi.enos.errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    DeletionRejectedError,
    EnosError,
    InvalidIdsError,
    InvalidParameterError,
    PipelineAccessError,
    PipelineNotFoundError,
    PipelineNotListedError,
    PipelineNotPausedError,
    PipelineStatusError,
    RateLimitedError,
    RequestTooLargeError,
    ServerError,
    StateRemainsError,
    TooManyPointsError,
    TransportError,
    UnsupportedStageError,
    api_error_class,
)
from enos_pulumi.enos.retry import is_retryable

# docs/design.md: stage state / pipeline codes and the token service's codes.
CODE_CLASSES = [
    (61102, InvalidParameterError),
    (61105, TooManyPointsError),
    (61106, PipelineAccessError),
    (61107, UnsupportedStageError),
    (61108, PipelineNotFoundError),
    (61152, PipelineStatusError),
    (61165, PipelineStatusError),
    (61121, PipelineStatusError),
    (61199, ServerError),
    (1001, AuthenticationError),  # duplicated encryption
    (1002, AuthenticationError),  # appKey does not exist
    (1003, AuthenticationError),  # invalid encryption
    (1004, AuthenticationError),  # invalid token-request parameter: a settings problem
    (1005, ServerError),  # internal error
    (1202, AuthenticationError),  # empty token-request parameter
    (1203, AuthenticationError),  # access token expired
    (1204, AuthenticationError),  # refresh failed
]


@pytest.mark.parametrize(("code", "cls"), CODE_CLASSES)
def test_every_documented_code_maps_to_its_class(code: int, cls: type[ApiError]) -> None:
    assert api_error_class(code, None) is cls
    assert api_error_class(code, 200) is cls


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (413, RequestTooLargeError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
        (400, ApiError),
        (404, ApiError),
        (None, ApiError),
    ],
)
def test_http_statuses_map_to_their_class(status: int | None, cls: type[ApiError]) -> None:
    assert api_error_class(None, status) is cls


def test_a_known_code_wins_over_the_http_status() -> None:
    assert api_error_class(61106, 500) is PipelineAccessError
    assert api_error_class(1203, 401) is AuthenticationError


def test_an_unknown_code_falls_back_to_the_http_status() -> None:
    assert api_error_class(99999, 503) is ServerError
    assert api_error_class(99999, 200) is ApiError
    assert api_error_class(99999, None) is ApiError


@pytest.mark.parametrize(
    "cls",
    [
        ConfigurationError,
        InvalidIdsError,
        TransportError,
        ApiError,
        PipelineNotPausedError,
        StateRemainsError,
        *dict.fromkeys(cls for _, cls in CODE_CLASSES),
        RateLimitedError,
        RequestTooLargeError,
        DeletionRejectedError,
    ],
)
def test_every_error_is_an_enos_error(cls: type[Exception]) -> None:
    assert issubclass(cls, EnosError)
    assert cls.__name__ in errors.__all__


def test_configuration_and_id_errors_are_value_errors() -> None:
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(InvalidIdsError, ValueError)


# -- text ----------------------------------------------------------------------------------------------------


def test_61106_reads_like_the_design_example() -> None:
    error = api_error_class(61106, None)(
        operation="Delete Stage State",
        message="Wrong pipelineId or OU has no privilege",
        code=61106,
        request_id="6cb7-req",
        http_status=200,
        target="pipeline b7f3/FixedTimeWindowAggregator_1",
        context={"org_id": "o15", "pipeline_id": "b7f3"},
    )
    assert str(error) == (
        "Delete Stage State failed for pipeline b7f3/FixedTimeWindowAggregator_1: EnOS 61106 "
        '"Wrong pipelineId or OU has no privilege" (requestId 6cb7-req) — check pipeline_id and that '
        "org o15 owns it"
    )


@pytest.mark.parametrize(("code", "cls"), CODE_CLASSES)
def test_text_has_code_message_request_id_and_operation(code: int, cls: type[ApiError]) -> None:
    error = cls(
        operation="Get Stage State",
        message="something specific went wrong",
        code=code,
        request_id="req-42",
        target="pipeline p/s",
        context={"org_id": "o1"},
    )
    text = str(error)
    assert text.startswith("Get Stage State failed for pipeline p/s: ")
    assert f"EnOS {code}" in text
    assert '"something specific went wrong"' in text
    assert "(requestId req-42)" in text
    assert "<org_id>" not in text
    # Every class with a hint shows it after a dash.
    if cls.hint:
        assert " — " in text


def test_fields_are_kept() -> None:
    error = PipelineNotFoundError(
        operation="Operate Pipeline (pause)",
        message="pipeline not found",
        code=61108,
        request_id="rid",
        http_status=200,
        target="pipeline p9",
        context={"org_id": "o7"},
        retry_after=3.0,
    )
    assert (error.operation, error.message, error.code, error.request_id) == (
        "Operate Pipeline (pause)",
        "pipeline not found",
        61108,
        "rid",
    )
    assert (error.http_status, error.target, error.context, error.retry_after) == (
        200,
        "pipeline p9",
        {"org_id": "o7"},
        3.0,
    )
    assert str(error).endswith("— check pipeline_id and org_id o7")


def test_an_http_only_error_shows_the_status_and_says_there_was_no_request_id() -> None:
    error = RateLimitedError(
        operation="Delete Stage State", message="API rate limit exceeded", http_status=429
    )
    text = str(error)
    assert 'HTTP 429 "API rate limit exceeded"' in text
    assert "(no requestId)" in text
    assert "EnOS" not in text.split(" — ")[0]


def test_a_code_with_a_non_200_status_shows_both() -> None:
    error = AuthenticationError(
        operation="Delete Stage State", message="token expired", code=1203, http_status=401, request_id="r"
    )
    text = str(error)
    assert 'EnOS 1203 "token expired" (HTTP 401) (requestId r)' in text
    assert "enos:accessKey" in text
    assert "ENOS_SECRET_KEY" in text


def test_a_missing_hint_field_is_shown_as_a_placeholder_not_a_crash() -> None:
    error = PipelineAccessError(operation="op", message="m", code=61106)
    assert str(error).endswith("check pipeline_id and that org <org_id> owns it")


def test_a_plain_api_error_has_no_hint() -> None:
    error = ApiError(operation="List Pipelines", message="odd", code=12345, request_id="r")
    assert str(error) == 'List Pipelines failed: EnOS 12345 "odd" (requestId r)'


def test_context_is_copied() -> None:
    context = {"org_id": "o1"}
    error = PipelineAccessError(operation="op", message="m", code=61106, context=context)
    context["org_id"] = "changed"
    assert error.context == {"org_id": "o1"}


def test_transport_error_text_and_retryability() -> None:
    error = TransportError("Delete Stage State", "timed out (ReadTimeout)", "pipeline p/s")
    assert str(error) == "Delete Stage State failed for pipeline p/s: timed out (ReadTimeout)"
    assert error.retryable is True
    assert TransportError("op", "TLS error", retryable=False).retryable is False
    assert str(TransportError("op", "boom")) == "op failed: boom"


def test_a_transport_failure_kind_is_an_enum_that_reads_as_its_text() -> None:
    from enos_pulumi.enos.errors import TransportKind

    error = TransportError("op", "boom", kind=TransportKind.CONNECT_TIMEOUT)
    assert error.kind == "connect-timeout" and f"{error.kind}" == str(error.kind) == "connect-timeout"
    assert TransportError("op", "boom", kind="dns").kind is TransportKind.DNS  # type: ignore[arg-type]
    assert TransportError("op", "boom").kind is TransportKind.UNCLASSIFIED
    assert pickle.loads(pickle.dumps(error)).kind is TransportKind.CONNECT_TIMEOUT
    with pytest.raises(ValueError):
        TransportError("op", "boom", kind="no-such-kind")  # type: ignore[arg-type]


def test_invalid_ids_error_names_the_input() -> None:
    error = InvalidIdsError("point_ids", "is empty; give at least one ID")
    assert str(error) == "point_ids: is empty; give at least one ID"
    assert (error.input_name, error.reason) == ("point_ids", "is empty; give at least one ID")


def test_pipeline_not_paused_error_text() -> None:
    error = PipelineNotPausedError("pipe-1", "org-1", "RUNNING")
    text = str(error)
    assert "pipeline pipe-1 is RUNNING" in text
    assert "PAUSED" in text
    assert "require_paused=False" in text
    assert "Nothing was deleted" in text
    assert "pause_pipeline=True" in text


def test_a_pipeline_not_listed_gets_not_found_advice_not_pause_advice() -> None:
    text = str(PipelineNotListedError("pipe-1", "org-1"))
    assert "pipeline pipe-1 was not found among org org-1's released pipelines" in text
    assert "Check pipeline_id and org_id" in text
    assert "Nothing was deleted" in text
    # It cannot be paused, so no advice to pause it or to skip the check.
    assert "Pause it" not in text and "require_paused" not in text and "pause_pipeline" not in text


def test_state_remains_error_text() -> None:
    error = StateRemainsError("pipeline p/s", 3, [("a1", "p1"), ("a2", "p1")], ["r1", "r2"])
    text = str(error)
    assert "3 asset/point pair(s)" in text
    assert "a1/p1, a2/p1" in text
    assert "r1, r2" in text
    assert (error.remaining, error.sample, error.request_ids) == (
        3,
        [("a1", "p1"), ("a2", "p1")],
        ["r1", "r2"],
    )


# -- append_to_message ---------------------------------------------------------------------------------------


def test_append_to_message_extends_the_text() -> None:
    error = ServerError(operation="op", message="boom", http_status=503)
    before = str(error)
    error.append_to_message("[gave up after 3 attempt(s)]")
    assert str(error) == before + " [gave up after 3 attempt(s)]"
    error.append_to_message("[1 of 2 requests had succeeded]")
    assert str(error).endswith("[gave up after 3 attempt(s)] [1 of 2 requests had succeeded]")
    assert error.http_status == 503


def test_append_to_message_on_an_error_without_arguments() -> None:
    error = EnosError()
    error.append_to_message("note")
    assert str(error) == "note"


def test_append_to_message_on_a_transport_error() -> None:
    error = TransportError("op", "connection failed")
    error.append_to_message("[gave up]")
    assert str(error) == "op failed: connection failed [gave up]"


# -- pickling and copying ------------------------------------------------------------------------------------


def _sample_api_error() -> PipelineAccessError:
    return PipelineAccessError(
        operation="Delete Stage State",
        message="Wrong pipelineId",
        code=61106,
        request_id="rid-1",
        http_status=200,
        target="pipeline p/s",
        context={"org_id": "o1"},
        retry_after=1.5,
    )


@pytest.mark.parametrize("clone", [lambda e: pickle.loads(pickle.dumps(e)), copy.copy, copy.deepcopy])
def test_api_error_round_trips_with_its_fields(clone: object) -> None:
    error = _sample_api_error()
    restored = clone(error)  # type: ignore[operator]
    assert type(restored) is PipelineAccessError
    assert str(restored) == str(error)
    for name in (
        "operation",
        "message",
        "code",
        "request_id",
        "http_status",
        "target",
        "context",
        "retry_after",
    ):
        assert getattr(restored, name) == getattr(error, name), name


def test_api_error_round_trip_keeps_an_appended_note() -> None:
    error = _sample_api_error()
    error.append_to_message("[2 of 5 requests had succeeded]")
    restored = pickle.loads(pickle.dumps(error))
    assert str(restored) == str(error)
    assert restored.code == 61106


@pytest.mark.parametrize(
    "error",
    [
        TransportError("op", "timed out", "pipeline p/s", retryable=False),
        InvalidIdsError("asset_ids", "item 0 is int 1"),
        PipelineNotPausedError("p", "o", "RUNNING"),
        StateRemainsError("pipeline p/s", 1, [("a", "b")], ["r"]),
        ConfigurationError("enos:apiGateway missing"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_round_trip_through_pickle(error: EnosError) -> None:
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is type(error)
    assert str(restored) == str(error)
    assert vars(restored) == vars(error)


# -- retryability follows the class --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        (None, 429, True),
        (None, 502, True),
        (None, 503, True),
        (None, 504, True),
        (None, 500, True),
        (61199, None, True),
        (61102, None, False),
        (61106, None, False),
        (61107, None, False),
        (None, 401, False),
        (None, 403, False),
        (None, 413, False),
        (None, 400, False),
    ],
)
def test_retryable_classes(code: int | None, status: int | None, retryable: bool) -> None:
    error = api_error_class(code, status)(operation="op", message="m", code=code, http_status=status)
    assert is_retryable(error) is retryable


def test_an_error_no_answer_carried_shows_no_http_status_or_request_id() -> None:
    # A status read back (the pipeline became FAILED while waited for) came with no code or HTTP status.
    error = PipelineStatusError(
        operation="Wait for pipeline status",
        message="the pipeline became FAILED while waiting for RUNNING",
        target="pipeline p1",
    )
    text = str(error)
    head = "Wait for pipeline status failed for pipeline p1: the pipeline became FAILED while waiting"
    assert text.startswith(head + " for RUNNING")
    assert "HTTP None" not in text and "requestId" not in text


@pytest.mark.parametrize(
    ("status", "advice", "promise"),
    [
        ("PAUSED", "is left PAUSED", True),
        (None, "may be left PAUSED", True),
        ("FAILED", "its status is FAILED", False),
        ("STOPPED", "its status is STOPPED", False),
    ],
)
def test_a_pipeline_left_not_running_gets_advice_for_the_status_read_back(
    status: str | None, advice: str, promise: bool
) -> None:
    from enos_pulumi import PipelineLeftPausedError

    start_error = PipelineStatusError(operation="Operate Pipeline", message="refused", code=61165)
    text = str(PipelineLeftPausedError("p1", "o1", start_error, "the reset paused it", status=status))
    assert advice in text
    # Only a paused pipeline is one the next pulumi up can start: a FAILED one is refused there too.
    assert ("resume_policy='always'" in text) is promise
    assert ("Repair and start it in the EnOS console" in text) is not promise
