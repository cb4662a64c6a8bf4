"""Authenticated calls: the cached token (fetched by :mod:`.tokens`, renewed once when EnOS says it
expired), one request with its retries, and one progress event per outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from . import auth
from .answers import Redactor, clean, decode, request_id_of
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
from .model import RequestEvent
from .request import Request
from .retry import RetryPolicy
from .settings import Settings
from .tokens import TOKEN_OPERATION, fetch_token
from .transport import Transport

__all__ = ["Accept", "Caller", "is_split_error", "short"]

_EXPIRED_TOKEN_CODE = 1203

#: What a caller makes of a success envelope (it may raise: an answer it refuses).
Accept = Callable[[dict[str, Any]], Any]


def is_split_error(exc: BaseException, operation: str) -> bool:
    """61105 or HTTP 413 answered to ``operation`` itself (never to the token request it needed)."""
    return isinstance(exc, (TooManyPointsError, RequestTooLargeError)) and exc.operation == operation


def _no_token(exc: BaseException) -> bool:
    return getattr(exc, "operation", None) == TOKEN_OPERATION


def _request_id(exc: BaseException) -> str | None:
    return exc.request_id if isinstance(exc, ApiError) else None


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
        request: Request,
        *,
        accept: Accept | None = None,
        failed_attempts: list[BaseException] | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """One request with retries: the success envelope and ``accept(envelope)``'s result.

        ``failed_attempts`` collects each failure that was retried. Progress events: "retrying" before
        each wait, then one "ok", "failed", "not sent" (no token) or, for a ``splittable`` request
        answered 61105/413, "split".
        """
        progress = _Progress(request, self._emit, self.retry.deadline)

        def retrying(exc: BaseException, wait_s: float, attempt_no: int) -> None:
            if failed_attempts is not None:
                failed_attempts.append(exc)
            progress.retrying(exc, wait_s, attempt_no)

        until = request.until
        try:
            if until is not None and self.retry.clock() >= until.at:
                # Paging, polling and batches all pass here: nothing new starts past the bound.
                raise OperationTimeoutError(request.operation, request.target, until.seconds, until.setting)
            attempts = _Attempts(self, request, accept)
            envelope, accepted = self.retry.run(attempts, retrying, until=until.at if until else None)
        except EnosError as exc:
            progress.failed(exc)
            raise
        progress.ok(envelope)
        return envelope, accepted

    def authenticated(self, request: Request) -> dict[str, Any]:
        """One attempt with the cached token; an expired token is renewed once and the attempt repeated."""
        key = self.settings.cache_key
        for renewal in (False, True):
            token = self._tokens.get(key, self._fetch_token)
            try:
                return self._send(request, token.value)
            except AuthenticationError as exc:
                # An expired (or revoked) token: renew once, then let a second refusal stand.
                expired = exc.http_status == 401 or exc.code == _EXPIRED_TOKEN_CODE
                if renewal or not expired:
                    raise
                self._tokens.invalidate(key, token)
        raise AssertionError("unreachable")

    def _send(self, request: Request, token: str) -> dict[str, Any]:
        """One attempt, signed (or bearer), its answer decoded with every secret of the call hidden."""
        s = self.settings
        signature = None
        if s.auth_scheme == "bearer":
            headers = {"Authorization": f"Bearer {token}"}
        else:
            body = request.body or b""
            headers = auth.signed_headers(token, request.query, body, s.secret_key, self._now_ms())
            signature = headers["apim-signature"]
        answer = self.transport.send(request, headers)
        return decode(answer, request, code_key="code", redact=Redactor((s.secret_key, token, signature)))


class _Attempts:
    """The attempts of one request, each authenticated and its envelope judged by ``accept``. A host that
    does not resolve gets one retry (a resolver's hiccup), not a retry budget's worth."""

    def __init__(self, caller: Caller, request: Request, accept: Accept | None) -> None:
        self._caller = caller
        self._request = request
        self._accept = accept
        self._dns_failures = 0

    def __call__(self) -> tuple[dict[str, Any], Any]:
        try:
            envelope = self._caller.authenticated(self._request)
        except TransportError as exc:
            if exc.kind is TransportKind.DNS:
                self._dns_failures += 1
                exc.retryable = self._dns_failures < 2
            raise
        if self._accept is None:
            return envelope, None
        try:
            return envelope, self._accept(envelope)
        except EnosError:
            raise
        except Exception as exc:  # a shape the handler did not foresee is still an answer we refuse
            r = self._request
            raise UnexpectedAnswerError(
                operation=r.operation,
                message=f"cannot read the answer's data ({type(exc).__name__})",
                code=0,
                request_id=request_id_of(envelope, {}),
                http_status=200,
                target=r.target,
                context=dict(r.context),
            ) from None


class _Progress:
    """The progress events of one request, timed from its start."""

    def __init__(self, request: Request, emit: Callable[[RequestEvent], None], retry_deadline: float) -> None:
        self._request = request
        self._emit = emit
        self._retry_deadline = retry_deadline
        self._started = time.monotonic()

    def _event(self, outcome: str, request_id: str | None = None, detail: str = "") -> None:
        r = self._request
        if r.split_part:
            detail = f"part of a split request; {detail}" if detail else "part of a split request"
        elapsed = time.monotonic() - self._started
        self._emit(
            RequestEvent(r.operation, r.target, outcome, elapsed, request_id, detail=detail, **r.event)
        )

    def retrying(self, exc: BaseException, wait_s: float, attempt_no: int) -> None:
        if _no_token(exc):
            # The token request has its own line; this one was never sent.
            detail = f"attempt {attempt_no} not sent (no access token); retrying in {wait_s:.1f} s"
            self._event("retrying", None, detail)
            return
        budget = ""
        if attempt_no == 1:  # once per request: how long this may go on
            budget = f" (for up to {self._retry_deadline:g} s: enos:retryDeadlineSeconds)"
        detail = f"attempt {attempt_no} failed ({short(exc)}); retrying in {wait_s:.1f} s{budget}"
        self._event("retrying", _request_id(exc), detail)

    def failed(self, exc: EnosError) -> None:
        if self._request.splittable and is_split_error(exc, self._request.operation):
            why = "61105 (too many points)" if isinstance(exc, TooManyPointsError) else "HTTP 413 (too large)"
            self._event("split", _request_id(exc), f"EnOS answered {why}; sending it as two requests")
        elif _no_token(exc):
            self._event("not sent", None, "no access token (see the Get access token line)")
        else:
            self._event("failed", _request_id(exc), short(exc))

    def ok(self, envelope: dict[str, Any]) -> None:
        rid = envelope.get("requestId")
        self._event("ok", rid if isinstance(rid, str) else None)
