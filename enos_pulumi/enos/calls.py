"""Authenticated calls: the cached token (fetched by :mod:`.tokens`, renewed once when EnOS says it
expired), one request with its retries, and one progress event per outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from . import auth
from .answers import DEFAULT_MAX_VALUES, Redactor, clean, decode, request_id_of
from .errors import (
    ApiError,
    AuthenticationError,
    EnosError,
    OperationTimeoutError,
    RequestTooLargeError,
    TooManyPointsError,
    TransportError,
    TransportKind,
    UnexpectedAnswerError,
)
from .model import Deadline, RequestEvent
from .retry import RetryPolicy
from .settings import Settings
from .tokens import TOKEN_OPERATION, fetch_token
from .transport import Transport

__all__ = ["Caller", "is_split_error", "short"]

_EXPIRED_TOKEN_CODE = 1203


def is_split_error(exc: BaseException, operation: str) -> bool:
    """61105 or HTTP 413 answered to ``operation`` itself (never to the token request it needed)."""
    return isinstance(exc, (TooManyPointsError, RequestTooLargeError)) and exc.operation == operation


def _no_token(exc: BaseException) -> bool:
    return getattr(exc, "operation", None) == TOKEN_OPERATION


def short(exc: BaseException) -> str:
    """A one-line reason for a progress line (the line already names the operation and target)."""
    if isinstance(exc, TransportError):
        text = exc.detail
    elif isinstance(exc, ApiError):
        what = f"EnOS {exc.code}" if exc.code not in (None, 0) else f"HTTP {exc.http_status}"
        text = f"{what} {exc.message}"
    else:
        text = str(exc)
    if _no_token(exc):
        text = f"{TOKEN_OPERATION}: {text}"
    return clean(text, lambda t: t, 200)


class Caller:
    """Signed (or bearer) calls to one gateway with one set of credentials; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        retry: RetryPolicy,
        tokens: auth.TokenCache,
        emit: Callable[[RequestEvent], None],
        now_ms: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.retry = retry
        self._tokens = tokens
        self._emit = emit
        self._now_ms = now_ms

    def redactor(self) -> Redactor:
        """Hides the secret key and the cached token."""
        token = self._tokens.peek(self.settings.cache_key)
        return Redactor((self.settings.secret_key, token.value if token else None))

    # -- the token -------------------------------------------------------------------------------------

    def _fetch_token(self) -> auth.Token:
        # No retry loop here: the call that needed the token retries as a whole, with a fresh timestamp
        # (the token service rejects a replayed encryption, 1001) within that call's budget.
        s = self.settings
        target = f"access key {s.access_key} at {s.api_gateway}"
        started = time.monotonic()
        try:
            token = fetch_token(s, self.transport, self._now_ms(), self._tokens.now(), target)
        except EnosError as exc:
            self._token_event(target, "failed", started, short(exc))
            raise
        self._token_event(target, "ok", started)
        return token

    def _token_event(self, target: str, outcome: str, started: float, detail: str = "") -> None:
        self._emit(RequestEvent(TOKEN_OPERATION, target, outcome, time.monotonic() - started, detail=detail))

    # -- one request -----------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        *,
        operation: str,
        target: str,
        context: Mapping[str, Any] | None = None,
        accept: Callable[[dict[str, Any]], Any] | None = None,
        until: Deadline | None = None,
        event: Mapping[str, Any] | None = None,
        splittable: bool = False,
        split_part: bool = False,
        max_values: int = DEFAULT_MAX_VALUES,
        failed_attempts: list[BaseException] | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """One request with retries: the success envelope and ``accept(envelope)``'s result.

        ``accept`` judges a success envelope (it may raise); ``event`` adds fields (batch, assets...) to
        the progress events: "retrying" before each wait, then one "ok", "failed" or (for a
        ``splittable`` request answered 61105/413) "split".
        """
        ctx = dict(context or {})
        extra = dict(event or {})
        started = time.monotonic()
        dns_failures = 0

        def emit(outcome: str, request_id: str | None = None, detail: str = "") -> None:
            if split_part:
                detail = f"part of a split request; {detail}" if detail else "part of a split request"
            self._emit(
                RequestEvent(
                    operation, target, outcome, time.monotonic() - started, request_id, detail=detail, **extra
                )
            )

        def attempt() -> tuple[dict[str, Any], Any]:
            nonlocal dns_failures
            try:
                envelope = self._authenticated(method, path, query, body, operation, target, ctx, max_values)
            except TransportError as exc:
                if exc.kind is TransportKind.DNS:
                    dns_failures += 1
                    exc.retryable = dns_failures < 2  # one retry covers a resolver's hiccup
                raise
            if accept is None:
                return envelope, None
            try:
                return envelope, accept(envelope)
            except EnosError:
                raise
            except Exception as exc:  # a shape the handler did not foresee is still an answer we refuse
                raise UnexpectedAnswerError(
                    operation=operation,
                    message=f"cannot read the answer's data ({type(exc).__name__})",
                    code=0,
                    request_id=request_id_of(envelope, {}),
                    http_status=200,
                    target=target,
                    context=ctx,
                ) from None

        def retrying(exc: BaseException, wait_s: float, attempt_no: int) -> None:
            if failed_attempts is not None:
                failed_attempts.append(exc)
            if _no_token(exc):
                # The token request has its own line; this one was never sent.
                emit(
                    "retrying",
                    None,
                    f"attempt {attempt_no} not sent (no access token); retrying in {wait_s:.1f} s",
                )
                return
            rid = exc.request_id if isinstance(exc, ApiError) else None
            budget = ""
            if attempt_no == 1:  # once per request: how long this may go on
                budget = f" (for up to {self.retry.deadline:g} s: enos:retryDeadlineSeconds)"
            emit(
                "retrying",
                rid,
                f"attempt {attempt_no} failed ({short(exc)}); retrying in {wait_s:.1f} s{budget}",
            )

        try:
            if until is not None and self.retry.clock() >= until.at:
                # Paging, polling and batches all pass here: nothing new starts past the bound.
                raise OperationTimeoutError(operation, target, until.seconds, until.setting)
            envelope, accepted = self.retry.run(attempt, retrying, until=until.at if until else None)
        except EnosError as exc:
            rid = exc.request_id if isinstance(exc, ApiError) else None
            if splittable and is_split_error(exc, operation):
                why = (
                    "61105 (too many points)"
                    if isinstance(exc, TooManyPointsError)
                    else "HTTP 413 (too large)"
                )
                emit("split", rid, f"EnOS answered {why}; sending it as two requests")
            elif _no_token(exc):
                emit("not sent", None, "no access token (see the Get access token line)")
            else:
                emit("failed", rid, short(exc))
            raise
        rid = envelope.get("requestId")
        emit("ok", rid if isinstance(rid, str) else None)
        return envelope, accepted

    def _authenticated(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        operation: str,
        target: str,
        context: Mapping[str, Any],
        max_values: int,
    ) -> dict[str, Any]:
        """One attempt with the cached token; an expired token is renewed once and the attempt repeated."""
        key = self.settings.cache_key
        for renewal in (False, True):
            token = self._tokens.get(key, self._fetch_token)
            if self.settings.auth_scheme == "bearer":
                headers = {"Authorization": f"Bearer {token.value}"}
                signature = None
            else:
                headers = auth.signed_headers(
                    token.value, query, body or b"", self.settings.secret_key, self._now_ms()
                )
                signature = headers["apim-signature"]
            answer = self.transport.send(method, path, query, body, headers, operation, target)
            try:
                return decode(
                    answer,
                    operation=operation,
                    target=target,
                    context=context,
                    code_key="code",
                    redact=Redactor((self.settings.secret_key, token.value, signature)),
                    max_values=max_values,
                )
            except AuthenticationError as exc:
                # An expired (or revoked) token: renew once, then let a second refusal stand.
                expired = exc.http_status == 401 or exc.code == _EXPIRED_TOKEN_CODE
                if renewal or not expired:
                    raise
                self._tokens.invalidate(key, token)
        raise AssertionError("unreachable")
