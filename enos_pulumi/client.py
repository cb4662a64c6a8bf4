"""The EnOS HTTP client: signed calls, envelopes, retries, batching and the stage state operations.

Thread-safe. Holds no socket itself: HTTP sessions come from a process-wide pool per gateway (reused
across clients, so one ``pulumi up`` keeps its connections), tokens from :data:`enos_pulumi.auth.TOKENS`.
"""

from __future__ import annotations

import json
import queue
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter

from . import auth
from .errors import (
    ApiError,
    AuthenticationError,
    DeletionRejectedError,
    EnosError,
    RequestTooLargeError,
    ServerError,
    TooManyPointsError,
    TransportError,
    api_error_class,
)
from .ids import Batch, join_range, plan_tiling
from .retry import RetryPolicy
from .settings import Settings

__all__ = ["EnosClient", "RequestEvent", "ResetReport", "StageTarget"]

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
STAGE_STATE_PATH = "/streaming/v2.0/stage-state"
PIPELINES_PATH = "/streaming/v2.0/streaming/pipelines"
PIPELINE_PATH = "/streaming/v2.0/streaming/pipeline/"
CONTENT_TYPE = "application/json;charset=UTF-8"
PIPELINE_PAGE_SIZE = 100
_EXPIRED_TOKEN_CODE = 1203
# Answers that mean "this request is too big": the batch is split in two and both halves sent.
_SPLIT_ON = (TooManyPointsError, RequestTooLargeError)
_DUPLICATED_ENCRYPTION = 1001


@dataclass(frozen=True)
class StageTarget:
    """Which operator's state: org, pipeline and stage instance name."""

    org_id: str
    pipeline_id: str
    stage_instance_name: str

    def __str__(self) -> str:
        return f"pipeline {self.pipeline_id}/{self.stage_instance_name}"


@dataclass(frozen=True)
class RequestEvent:
    """One finished (or retried) API call, for progress output. Never carries a secret."""

    operation: str
    target: str
    outcome: str  # "ok", "retrying", "split", "failed"
    elapsed: float
    request_id: str | None = None
    batch: int | None = None
    batches: int | None = None
    assets: int | None = None
    points: int | None = None
    detail: str = ""

    def describe(self) -> str:
        parts = [f"enos: {self.operation} {self.target}"]
        if self.batch is not None:
            parts.append(f"request {self.batch}/{self.batches}")
        if self.assets is not None:
            parts.append(f"{self.assets} assets x {self.points} points")
        parts.append(self.outcome)
        if self.request_id:
            parts.append(f"requestId {self.request_id}")
        if self.detail:
            parts.append(self.detail)
        parts.append(f"{self.elapsed * 1000:.0f} ms")
        return " | ".join(parts)


@dataclass(frozen=True)
class ResetReport:
    """What a delete did: the requestIds of its successful calls (one per request) and the pairs covered."""

    request_ids: tuple[str, ...]
    pairs: int

    @property
    def request_count(self) -> int:
        return len(self.request_ids)


class _SessionPool:
    """Sessions per gateway, each used by one thread at a time and returned for reuse (keep-alive)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, queue.LifoQueue[requests.Session]] = {}

    @contextmanager
    def session(self, gateway: str) -> Iterator[requests.Session]:
        with self._lock:
            idle = self._idle.setdefault(gateway, queue.LifoQueue())
        try:
            session = idle.get_nowait()
        except queue.Empty:
            session = requests.Session()
            # Our own retry policy decides; urllib3 must not retry behind its back.
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            if gateway.startswith("http://"):
                session.trust_env = False  # loopback only: never through an environment proxy
        try:
            yield session
        finally:
            idle.put(session)

    def clear(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            while not idle.empty():
                idle.get_nowait().close()


SESSIONS = _SessionPool()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


def _body_summary(response: requests.Response) -> str:
    """A short, readable trace of a non-JSON body (an HTML error page from a proxy, say)."""
    text = _SPACES.sub(" ", _TAGS.sub(" ", response.text or "")).strip()
    reason = response.reason or "error"
    return f"{reason}; non-JSON body: {text[:120]!r}" if text else f"{reason}; empty body"


class EnosClient:
    """Calls the EnOS APIs this package needs.

    ``retry`` decides retries (inject its clock/sleep in tests), ``on_event`` receives one
    :class:`RequestEvent` per call outcome, ``now_ms`` gives the signing timestamp.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retry: RetryPolicy | None = None,
        on_event: Callable[[RequestEvent], None] | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        tokens: auth.TokenCache = auth.TOKENS,
        sessions: _SessionPool = SESSIONS,
    ) -> None:
        self.settings = settings
        self.retry = retry if retry is not None else RetryPolicy(deadline=settings.retry_deadline)
        self._on_event = on_event
        self._now_ms = now_ms
        self._tokens = tokens
        self._sessions = sessions

    def __repr__(self) -> str:
        return f"EnosClient({self.settings!r})"

    # -- transport ---------------------------------------------------------------------------------

    def _emit(self, event: RequestEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _post_or_get(
        self, method: str, path: str, query: Mapping[str, str], body: bytes | None, headers: dict[str, str]
    ) -> requests.Response:
        url = self.settings.api_gateway + path
        if query:
            url += "?" + urlencode(query)
        headers = {**headers, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = CONTENT_TYPE
        with self._sessions.session(self.settings.api_gateway) as session:
            return session.request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                allow_redirects=False,
            )

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        headers: dict[str, str],
        operation: str,
        target: str,
    ) -> requests.Response:
        try:
            return self._post_or_get(method, path, query, body, headers)
        except requests.exceptions.SSLError as exc:
            # A certificate that does not verify stays that way; a handshake cut short is transient.
            permanent = _caused_by(exc, ssl.SSLCertVerificationError)
            raise TransportError(operation, f"TLS error: {exc}", target, retryable=not permanent) from exc
        except requests.exceptions.Timeout as exc:
            raise TransportError(operation, f"timed out ({type(exc).__name__})", target) from exc
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            # Also a connection dropped in the middle of the answer (IncompleteRead).
            raise TransportError(operation, f"connection failed: {exc}", target) from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(operation, f"request failed: {exc}", target, retryable=False) from exc

    @staticmethod
    def _decode(
        response: requests.Response, operation: str, target: str, context: dict[str, Any], code_key: str
    ) -> dict[str, Any]:
        """HTTP status first, then the envelope; returns the envelope of a success."""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        envelope = payload if isinstance(payload, dict) else None
        status = response.status_code
        code = envelope.get(code_key, envelope.get("code")) if envelope is not None else None
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        request_id = envelope.get("requestId") if envelope is not None else None
        request_id = request_id if isinstance(request_id, str) else response.headers.get("x-request-id")
        message = envelope.get("msg", envelope.get("message")) if envelope is not None else None
        if not 200 <= status < 300:
            cls = api_error_class(code, status)
            raise cls(
                operation=operation,
                message=str(message).strip() if message else _body_summary(response),
                code=code if code is not None and code != status else None,
                request_id=request_id,
                http_status=status,
                target=target,
                context=context,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if envelope is None:
            raise ServerError(
                operation=operation,
                message=f"unexpected answer: {_body_summary(response)}",
                http_status=status,
                target=target,
                context=context,
            )
        if code is None:
            raise ServerError(
                operation=operation,
                message=f"answer has no {code_key!r} field",
                request_id=request_id,
                http_status=status,
                target=target,
                context=context,
            )
        if code != 0:
            cls = api_error_class(code, None)
            raise cls(
                operation=operation,
                message=str(message).strip() if message else "(no message)",
                code=code,
                request_id=request_id,
                http_status=status,
                target=target,
                context=context,
            )
        return envelope

    # -- auth ----------------------------------------------------------------------------------------

    def _fetch_token(self) -> auth.Token:
        s = self.settings
        operation = "Get access token"
        target = f"access key {s.access_key} at {s.api_gateway}"
        # No retry loop here: the signed call that needed the token retries as a whole, with a fresh
        # timestamp (the token service rejects a replayed encryption, 1001) and one shared deadline.
        timestamp = self._now_ms()
        body = json.dumps(
            {
                "appKey": s.access_key,
                "encryption": auth.token_encryption(s.access_key, timestamp, s.secret_key),
                "timestamp": timestamp,
            },
            separators=(",", ":"),
        ).encode()
        started = time.monotonic()
        response = self._send("POST", TOKEN_PATH, {}, body, {}, operation, target)
        try:
            envelope = self._decode(response, operation, target, {}, code_key="status")
        except AuthenticationError as exc:
            if exc.code == _DUPLICATED_ENCRYPTION:
                raise ServerError(**exc._kwargs()) from exc
            raise
        data = envelope.get("data")
        token = data.get("accessToken") if isinstance(data, dict) else None
        expire = data.get("expire") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or not isinstance(expire, (int, float)):
            raise ServerError(
                operation=operation,
                message="token answer has no accessToken/expire",
                http_status=response.status_code,
                target=target,
            )
        self._emit(RequestEvent(operation, target, "ok", time.monotonic() - started))
        return auth.Token(token, auth.renew_time(self._tokens.now(), float(expire)))

    # -- signed calls ----------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any | None,
        *,
        operation: str,
        target: str,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One signed API call with retries; returns the success envelope or raises :class:`EnosError`."""
        envelope, _ = self._call(
            method, path, query, body, operation=operation, target=target, context=context
        )
        return envelope

    def _call(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: Any | None,
        *,
        operation: str,
        target: str,
        context: dict[str, Any] | None = None,
        batch: Batch | None = None,
        batch_no: tuple[int, int] | None = None,
        accept: Callable[[dict[str, Any]], Any] | None = None,
        since: float | None = None,
        split_part: bool = False,
    ) -> tuple[dict[str, Any], Any]:
        """:meth:`call`, plus ``accept(envelope)`` judging a success envelope (it may raise), and one
        progress event for the request's outcome: "ok", "failed" or "split" (61105), after any
        "retrying" events.
        """
        if body is None or isinstance(body, bytes):
            raw = body
        else:
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        ctx = context or {}
        key = self.settings.cache_key
        started = time.monotonic()

        def event(outcome: str, request_id: str | None = None, detail: str = "") -> RequestEvent:
            if split_part:
                detail = f"part of a split request; {detail}" if detail else "part of a split request"
            return RequestEvent(
                operation,
                target,
                outcome,
                time.monotonic() - started,
                request_id=request_id,
                batch=batch_no[0] if batch_no else None,
                batches=batch_no[1] if batch_no else None,
                assets=batch.asset_count if batch else None,
                points=batch.point_count if batch else None,
                detail=detail,
            )

        def attempt() -> tuple[dict[str, Any], Any]:
            for renewal in (False, True):
                token = self._tokens.get(key, self._fetch_token)
                headers = auth.signed_headers(
                    token.value, query, raw or b"", self.settings.secret_key, self._now_ms()
                )
                response = self._send(method, path, query, raw, headers, operation, target)
                try:
                    envelope = self._decode(response, operation, target, ctx, code_key="code")
                except AuthenticationError as exc:
                    # An expired (or revoked) token: renew once, then let a second refusal stand.
                    expired = exc.http_status == 401 or exc.code == _EXPIRED_TOKEN_CODE
                    if renewal or not expired:
                        raise
                    self._tokens.invalidate(key, token)
                    continue
                return envelope, accept(envelope) if accept is not None else None
            raise AssertionError("unreachable")

        def retrying(exc: BaseException, wait_s: float, attempt_no: int) -> None:
            rid = exc.request_id if isinstance(exc, ApiError) else None
            detail = f"attempt {attempt_no} failed ({_short(exc)}); retrying in {wait_s:.1f} s"
            self._emit(event("retrying", rid, detail))

        try:
            envelope, accepted = self.retry.run(attempt, retrying, since=since)
        except EnosError as exc:
            rid = exc.request_id if isinstance(exc, ApiError) else None
            if isinstance(exc, TooManyPointsError) and batch is not None and batch.pairs > 1:
                self._emit(
                    event("split", rid, "EnOS answered 61105 (too many points); sending it as two requests")
                )
            else:
                self._emit(event("failed", rid, _short(exc)))
            raise
        self._emit(event("ok", envelope.get("requestId")))
        return envelope, accepted

    # -- stage state -----------------------------------------------------------------------------------

    @staticmethod
    def _stage_body(target: StageTarget, assets: Sequence[str], points: Sequence[str], b: Batch) -> bytes:
        """The request body, encoded once: the two ID strings can be megabytes, and canonical IDs need no
        JSON escaping, so they are not run through the encoder's escaping scan."""
        return b"".join(
            (
                b'{"pipelineId":',
                _json_string(target.pipeline_id),
                b',"stageInstanceName":',
                _json_string(target.stage_instance_name),
                b',"assetIds":',
                _json_string(join_range(assets, b.a0, b.a1)),
                b',"pointIds":',
                _json_string(join_range(points, b.p0, b.p1)),
                b"}",
            )
        )

    def _run_batches(
        self,
        action: str,
        operation: str,
        target: StageTarget,
        assets: Sequence[str],
        points: Sequence[str],
        handle: Callable[[dict[str, Any], Batch], Any],
    ) -> list[tuple[str, Any]]:
        """Send every batch of the tiling (in parallel, bounded); each result is (requestId, handled data).

        A 61105 (too many points) or HTTP 413 (body too large) answer splits that batch in two and sends
        both halves. Retries of all batches share one deadline, counted from the start. On the first
        failure no new batch starts; the ones in flight finish, and the error says how many had succeeded.
        """
        if not assets or not points:
            raise ValueError("asset and point sets must be non-empty")
        tiling = plan_tiling(len(assets), len(points), self.settings.max_pairs_per_request)
        batches = list(tiling.batches())
        total = len(batches)
        query = {"action": action, "orgId": target.org_id}
        context = {
            "org_id": target.org_id,
            "pipeline_id": target.pipeline_id,
            "stage_instance_name": target.stage_instance_name,
        }

        since = self.retry.clock()

        def send(batch: Batch, number: int) -> list[tuple[str, Any]]:
            # A loop, not recursion: a self-referencing closure would keep the ID lists alive until the
            # garbage collector runs, tens of MB for a big reset.
            done: list[tuple[str, Any]] = []
            pending = [batch]
            while pending:
                part = pending.pop()
                try:
                    envelope, handled = self._call(
                        "POST",
                        STAGE_STATE_PATH,
                        query,
                        self._stage_body(target, assets, points, part),
                        operation=operation,
                        target=str(target),
                        context=context,
                        batch=part,
                        batch_no=(number, total),
                        accept=lambda envelope, part=part: handle(envelope, part),  # type: ignore[misc]
                        since=since,
                        split_part=part is not batch,
                    )
                except _SPLIT_ON:
                    if part.pairs <= 1:
                        raise
                    first, second = part.split()
                    pending += [second, first]  # first half next, keeping request order
                    continue
                done.append((str(envelope.get("requestId") or ""), handled))
            return done

        workers = min(self.settings.parallel_requests, total)
        if workers <= 1:
            results = []
            for i, batch in enumerate(batches):
                try:
                    results.append(send(batch, i + 1))
                except EnosError as exc:
                    _note_progress(exc, i, total)
                    raise
            return [item for chunk in results for item in chunk]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enos-batch") as pool:
            futures = [pool.submit(send, batch, i + 1) for i, batch in enumerate(batches)]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.cancel()  # only those not started yet; leaving the block waits for the rest
        finished = [f for f in futures if not f.cancelled()]
        failed = [f for f in finished if f.exception() is not None]
        if failed:
            error = failed[0].exception()
            assert error is not None
            if isinstance(error, EnosError):
                _note_progress(error, len(finished) - len(failed), total)
            raise error
        return [item for f in futures for item in f.result()]

    def delete_stage_state(
        self, target: StageTarget, assets: Sequence[str], points: Sequence[str]
    ) -> ResetReport:
        """Delete the state of every (asset, point) pair.

        Succeeds only if every answer is ``code 0`` with ``data: true``.
        """
        operation = "Delete Stage State"

        def check(envelope: dict[str, Any], batch: Batch) -> None:
            if envelope.get("data") is not True:
                raise DeletionRejectedError(
                    operation=operation,
                    message=f"data: {json.dumps(envelope.get('data'))} (deletion failed)",
                    code=0,
                    request_id=envelope.get("requestId"),
                    http_status=200,
                    target=str(target),
                    context={"org_id": target.org_id, "pipeline_id": target.pipeline_id},
                )

        results = self._run_batches("delete", operation, target, assets, points, check)
        return ResetReport(tuple(rid for rid, _ in results), len(assets) * len(points))

    def get_stage_state(
        self, target: StageTarget, assets: Sequence[str], points: Sequence[str]
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """Read back state items for the pairs; ``data`` may be a list or ``{"items": [...]}``.

        Returns the items and the requestIds of the calls.
        """
        operation = "Get Stage State"

        def items(envelope: dict[str, Any], batch: Batch) -> list[dict[str, Any]]:
            data = envelope.get("data")
            if isinstance(data, dict) and "items" in data:
                data = data["items"]
            if data is None:
                return []
            if not isinstance(data, list):
                # Reading an unknown shape as "no state" would make verify=True pass falsely; and
                # asking again will not change the shape, so this is not retried.
                raise ApiError(
                    operation=operation,
                    message=f"unexpected data {json.dumps(data)[:200]}; expected a list or items",
                    code=0,
                    request_id=envelope.get("requestId"),
                    http_status=200,
                    target=str(target),
                )
            return [item for item in data if isinstance(item, dict)]

        results = self._run_batches("get", operation, target, assets, points, items)
        return [item for _, chunk in results for item in chunk], tuple(rid for rid, _ in results)

    # -- pipelines ---------------------------------------------------------------------------------------

    def list_pipelines(self, org_id: str, *, page_size: int = PIPELINE_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every released pipeline of the organization, page by page (lazily)."""
        page = 1
        seen = 0
        ids: set[Any] = set()
        since = self.retry.clock()
        while True:
            envelope, _ = self._call(
                "GET",
                PIPELINES_PATH,
                {"orgId": org_id, "pageNo": str(page), "pageSize": str(page_size), "ifReleased": "true"},
                None,
                operation="List Pipelines",
                target=f"org {org_id}",
                context={"org_id": org_id},
                since=since,
            )
            data = envelope.get("data") or {}
            pipelines = data.get("pipelines") if isinstance(data, dict) else None
            if not isinstance(pipelines, list) or not pipelines:
                return
            fresh = [p for p in pipelines if isinstance(p, dict) and p.get("pipelineId") not in ids]
            if not fresh:
                return  # a server that ignores pageNo would otherwise be paged forever
            ids.update(p.get("pipelineId") for p in fresh)
            yield from fresh
            seen += len(pipelines)
            count = data.get("count")
            if (isinstance(count, int) and seen >= count) or len(pipelines) < page_size:
                return
            page += 1

    def pipeline_status(self, org_id: str, pipeline_id: str) -> str | None:
        """The pipeline's status (PUBLISHED, RUNNING, PAUSED, STOPPED...), or None if it is not listed."""
        for pipeline in self.list_pipelines(org_id):
            if pipeline.get("pipelineId") == pipeline_id:
                status = pipeline.get("status")
                return str(status).upper() if status is not None else "UNKNOWN"
        return None

    def operate_pipeline(
        self, org_id: str, pipeline_id: str, action: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Operate Pipeline (pause, start, stop...); ``start`` needs ``executionMode`` and ``kafkaRate``."""
        return self.call(
            "POST",
            PIPELINE_PATH + quote(pipeline_id, safe=""),
            {"action": action, "orgId": org_id},
            dict(body) if body is not None else {},
            operation=f"Operate Pipeline ({action})",
            target=f"pipeline {pipeline_id}",
            context={"org_id": org_id, "pipeline_id": pipeline_id},
        )


# What JSON escapes in a string: control characters, the quote and the backslash.
_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\'


def _json_string(value: str) -> bytes:
    """``json.dumps(value, ensure_ascii=False)`` as UTF-8; skips the encoder when nothing needs escaping.

    The test is a byte deletion (C speed, ~1 ms for a 1.8 MB ID string): a regex or the encoder's own
    escaping scan costs about five times as much, and that is most of a big request's client time.
    """
    encoded = value.encode()
    if len(encoded.translate(None, _ESCAPED_BYTES)) == len(encoded):
        return b'"' + encoded + b'"'
    return json.dumps(value, ensure_ascii=False).encode()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):  # requests/urllib3 wrap the ssl error a few levels deep, in args or as cause
        if seen is None:
            return False
        if isinstance(seen, kind) or any(isinstance(arg, kind) for arg in getattr(seen, "args", ())):
            return True
        nested = next((a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)), None)
        seen = seen.__cause__ or seen.__context__ or nested
    return False


def _short(exc: BaseException) -> str:
    if isinstance(exc, TransportError):
        return exc.detail[:160]  # its text repeats the operation and target the line already shows
    if isinstance(exc, ApiError):
        what = f"EnOS {exc.code}" if exc.code is not None else f"HTTP {exc.http_status}"
        return f"{what} {exc.message}"[:160]
    return str(exc)[:160]


def _note_progress(exc: EnosError, succeeded: int, total: int) -> None:
    if total > 1:
        exc.append_to_message(
            f"[{succeeded} of {total} requests had succeeded; deleting again is harmless, "
            f"so running pulumi up again retries the whole reset]"
        )
