"""What EnOS (or its gateway) answered, as errors: :class:`ApiError`, a class per kind of refusal, and the
table from EnOS codes and HTTP statuses to those classes.

API errors keep what EnOS said (code, message, requestId) plus the HTTP status and the operation, and
their text tells the user what to check.
"""

from __future__ import annotations

from typing import Any

from ..stage_types import STAGE_TYPES
from .base import EnosError

__all__ = [
    "ApiError",
    "AuthenticationError",
    "DeletionRejectedError",
    "InvalidParameterError",
    "InvalidTokenError",
    "PipelineAccessError",
    "PipelineNotFoundError",
    "PipelineStatusError",
    "RateLimitedError",
    "RequestTooLargeError",
    "ServerError",
    "TooManyPointsError",
    "UnexpectedAnswerError",
    "UnsupportedStageError",
    "api_error_class",
]


class ApiError(EnosError):
    """EnOS (or its gateway) answered, and the answer is a failure.

    ``code`` is the EnOS business code (``None`` for a bare HTTP rejection), ``message`` the text it gave,
    ``request_id`` its requestId, ``http_status`` the HTTP status and ``operation`` what we were doing.
    """

    #: What a user should check, formatted with the error's ``context`` (e.g. ``pipeline_id``).
    hint = ""

    def __init__(
        self,
        *,
        operation: str,
        message: str,
        code: int | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        target: str = "",
        context: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.operation = operation
        self.message = message
        self.code = code
        self.request_id = request_id
        self.http_status = http_status
        self.target = target
        self.context = dict(context or {})
        self.retry_after = retry_after
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" for {self.target}" if self.target else ""
        if self.code == 0:
            # A success code with an answer we must refuse (data: false, an unreadable shape).
            what = f'EnOS answered "{self.message}"'
        elif self.code is not None:
            what = f'EnOS {self.code} "{self.message}"'
        elif self.http_status is not None:
            what = f'HTTP {self.http_status} "{self.message}"'
        else:
            what = self.message  # no answer says it (a status read back): no code, status or requestId
        if self.code is not None and self.http_status not in (None, 200):
            what += f" (HTTP {self.http_status})"
        answered = self.code is not None or self.http_status is not None
        rid = f" (requestId {self.request_id})" if self.request_id else " (no requestId)" if answered else ""
        text = f"{self.operation} failed{where}: {what}{rid}"
        hint = self._hint()
        return f"{text} — {hint}" if hint else text

    def _hint(self) -> str:
        if not self.hint:
            return ""
        try:
            return self.hint.format_map(_Defaulting(self.context))
        except (ValueError, IndexError):
            return self.hint

    def _kwargs(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "message": self.message,
            "code": self.code,
            "request_id": self.request_id,
            "http_status": self.http_status,
            "target": self.target,
            "context": self.context,
            "retry_after": self.retry_after,
        }


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return f"<{key}>"


class InvalidParameterError(ApiError):
    """61102: a parameter is missing or invalid."""

    hint = "check pipeline_id, stage_instance_name and the asset/point IDs"

    def _hint(self) -> str:
        if self.operation.startswith("Operate Pipeline"):
            return (
                "check pipeline_id and org_id, and for a start resume_execution_mode, resume_kafka_rate "
                "and resume_resource_config"
            )
        if self.operation.startswith("List Pipelines"):
            return "check org_id"
        return super()._hint()


class TooManyPointsError(ApiError):
    """61105: the request names too many asset/point pairs (the client splits and retries first)."""

    hint = (
        "EnOS refused even a single asset/point pair as too many points: check the pipeline and stage, "
        "and ask EnOS support about the limit"
    )


class PipelineAccessError(ApiError):
    """61106: wrong pipelineId, or the organization has no privilege on it."""

    hint = "check pipeline_id and that org {org_id} owns it"


class UnsupportedStageError(ApiError):
    """61107: the operator named by stage_instance_name does not support this stage state operation."""

    hint = (
        f"check stage_instance_name; stage state exists only for {', '.join(STAGE_TYPES[:-1])} "
        f"and {STAGE_TYPES[-1]} operators"
    )


class PipelineNotFoundError(ApiError):
    """61108: the pipeline does not exist."""

    hint = "check pipeline_id and org_id {org_id}"


class PipelineStatusError(ApiError):
    """61152/61165/61121: the pipeline cannot make that status transition now."""

    hint = "check the pipeline's status in the EnOS console"


class AuthenticationError(ApiError):
    """401/403 or a token-service refusal: credentials, signature, clock or IP allow-list."""

    hint = (
        "check enos:accessKey / ENOS_ACCESS_KEY and enos:secretKey / ENOS_SECRET_KEY, "
        "enos:authScheme (apim-signature or bearer, as the gateway expects), that this machine's clock "
        "is right, and that the application may call this API from here"
    )


class InvalidTokenError(AuthenticationError):
    """The token service answered with an access token that cannot be used (never shown: a credential)."""

    hint = (
        "the token service, or something in front of it, answered with a malformed token; "
        "check enos:apiGateway / ENOS_API_GATEWAY"
    )


class RateLimitedError(ApiError):
    """HTTP 429 from the gateway; retried with backoff within the request's retry budget."""

    hint = (
        "the gateway's API rate limit; lower enos:parallelRequests, raise enos:retryDeadlineSeconds "
        "or run pulumi up again later"
    )


class RequestTooLargeError(ApiError):
    """HTTP 413: the gateway refused the request body's size."""

    hint = "lower the number of asset/point pairs per request"


class ServerError(ApiError):
    """5xx from the gateway or a service, or EnOS 61199/1005 (other/internal); retried until the deadline."""

    hint = "EnOS failed on its side; the reset is safe to run again (pulumi up retries it)"


class UnexpectedAnswerError(ApiError):
    """An answer we cannot read: not JSON where JSON is due, a field of the wrong type, an unknown shape,
    or a body over the size cap. Asking again rarely changes the shape, so it is not retried unless its
    HTTP status was transient (then the status' own class is raised instead)."""

    hint = (
        "something between here and EnOS (a proxy or gateway) may be answering instead of EnOS: "
        "check enos:apiGateway"
    )


class DeletionRejectedError(ApiError):
    """Delete Stage State answered ``code 0`` but ``data: false``: nothing may have been deleted."""

    hint = "EnOS reported the deletion as failed; check that the pipeline is paused, then run pulumi up again"


_BY_CODE: dict[int, type[ApiError]] = {
    61102: InvalidParameterError,
    61105: TooManyPointsError,
    61106: PipelineAccessError,
    61107: UnsupportedStageError,
    61108: PipelineNotFoundError,
    61121: PipelineStatusError,
    61152: PipelineStatusError,
    61165: PipelineStatusError,
    61199: ServerError,
    # Token service codes.
    1001: AuthenticationError,
    1002: AuthenticationError,
    1003: AuthenticationError,
    1004: AuthenticationError,  # the token request's own parameters: a settings problem
    1005: ServerError,
    1202: AuthenticationError,
    1203: AuthenticationError,
    1204: AuthenticationError,
}


def api_error_class(code: int | None, http_status: int | None) -> type[ApiError]:
    """The most specific class for an EnOS code, else for an HTTP status, else :class:`ApiError`."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if http_status in (401, 403):
        return AuthenticationError
    if http_status == 429:
        return RateLimitedError
    if http_status == 413:
        return RequestTooLargeError
    if http_status == 408:
        return ServerError  # the gateway timed out waiting for us: as transient as a 504
    if http_status is not None and http_status >= 500:
        return ServerError
    return ApiError
