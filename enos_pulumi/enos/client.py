"""The EnOS client: the operations this package needs, over signed calls with retries and bounds.

Thread-safe. Holds no socket itself: HTTP sessions come from a process-wide pool per gateway (reused
across clients, so one ``pulumi up`` keeps its connections), tokens from :data:`enos_pulumi.enos.auth.TOKENS`.
The work is done in small modules: :mod:`.transport` (one bounded attempt), :mod:`.answers` (status then
envelope), :mod:`.calls` (tokens, retries, progress), :mod:`.batches` (parallel batches, splitting),
:mod:`.stage_state` and :mod:`.pipelines` (the operations).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from . import auth, pipeline_control, pipelines, stage_state
from .calls import Caller
from .ids import JoinedIds, canonical_ids
from .model import Deadline, RequestEvent, ResetReport, StageTarget
from .request import DEFAULT_MAX_VALUES, Request
from .retry import RetryPolicy
from .settings import Settings
from .transport import SESSIONS, SessionPool, Transport

__all__ = ["SESSIONS", "EnosClient", "RequestEvent", "ResetReport", "SessionPool", "StageTarget"]


class EnosClient:
    """Calls the EnOS APIs this package needs.

    ``retry`` decides retries (inject its clock/sleep in tests), ``on_event`` receives one
    :class:`RequestEvent` per call outcome, ``now_ms`` gives the signing timestamp.

    Bounds (see :class:`~enos_pulumi.enos.settings.Settings`): every attempt ends within
    ``attempt_timeout``; every request retries within ``retry_deadline`` of its first attempt; an
    operation (a delete or get over all batches, a status check over all pages) starts no request or
    retry after ``reset_timeout``, so it ends within ``reset_timeout`` plus one last try (a token fetch
    and the call, twice if the token had expired: at most four attempts).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        retry: RetryPolicy | None = None,
        on_event: Callable[[RequestEvent], None] | None = None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        tokens: auth.TokenCache = auth.TOKENS,
        sessions: SessionPool = SESSIONS,
    ) -> None:
        self.settings = settings
        self.retry = retry if retry is not None else RetryPolicy(deadline=settings.timeouts.retry_deadline)
        self._on_event = on_event
        self._shared_until: Deadline | None = None
        self._caller = Caller(settings, Transport(settings, sessions), self.retry, tokens, self._emit, now_ms)

    def __repr__(self) -> str:
        return f"EnosClient({self.settings!r})"

    def _emit(self, event: RequestEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _until(self) -> Deadline:
        if self._shared_until is not None:
            return self._shared_until
        return self.settings.timeouts.reset_deadline(self.retry.clock())

    def operation_deadline(self) -> Deadline:
        """A bound ``operation_timeout`` from now, for a pause or start and its wait."""
        return self.settings.timeouts.operation_deadline(self.retry.clock())

    def share_bound(self) -> None:
        """From now on every operation of this client shares one total bound, ``reset_timeout`` from now
        (the provider makes a reset's status check, deletes and verify reads one bounded whole). Once
        shared, the bound stays: a second call changes nothing."""
        self._shared_until = self._until()

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
        max_values: int = DEFAULT_MAX_VALUES,
    ) -> dict[str, Any]:
        """One authenticated API call with retries; the success envelope, or an :class:`EnosError`.

        ``body`` is bytes as sent, or a JSON-serializable value. An answer of more than ``max_values``
        JSON values is refused unparsed (a guard against answers that would parse into gigabytes).
        """
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
        request = Request(
            method,
            path,
            query,
            body,
            operation,
            target,
            context=context or {},
            until=self._until(),
            max_values=max_values,
        )
        envelope, _ = self._caller.call(request)
        return envelope

    def delete_stage_state(
        self, target: StageTarget, assets: Sequence[str] | str, points: Sequence[str] | str
    ) -> ResetReport:
        """Delete the state of every (asset, point) pair; succeeds only if every answer is ``data: true``.

        ``assets`` and ``points`` are lists of IDs or comma-separated strings, checked and canonicalized
        as the resource does (:class:`~enos_pulumi.enos.errors.InvalidIdsError` for an empty set, an empty ID,
        an ID with a comma or a control character).
        """
        a, p = _checked_ids(assets, "assets"), _checked_ids(points, "points")
        return stage_state.delete_stage_state(self._caller, target, a, p, self._until())

    def get_stage_state(
        self, target: StageTarget, assets: Sequence[str] | str, points: Sequence[str] | str
    ) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        """State items for the pairs (objects with string ``assetId``/``pointId``) and the requestIds.

        An answer that cannot be read item by item raises
        :class:`~enos_pulumi.enos.errors.UnexpectedAnswerError`.
        """
        a, p = _checked_ids(assets, "assets"), _checked_ids(points, "points")
        return stage_state.get_stage_state(self._caller, target, a, p, self._until())

    def list_pipelines(
        self, org_id: str, *, page_size: int = pipelines.PIPELINE_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every released pipeline of the organization, page by page (lazily)."""
        return pipelines.list_pipelines(self._caller, org_id, self._until(), page_size)

    def pipeline_status(self, org_id: str, pipeline_id: str, *, until: Deadline | None = None) -> str | None:
        """The pipeline's status (PUBLISHED, RUNNING, PAUSED, STOPPED...), or None if it is not listed.

        Bounded by ``until`` (default: the operation's bound, ``reset_timeout``)."""
        return pipelines.status_of(self._caller, org_id, pipeline_id, until or self._until())

    def operate_pipeline(
        self, org_id: str, pipeline_id: str, action: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Operate Pipeline (pause, start, stop...); ``start`` needs ``executionMode`` and ``kafkaRate``."""
        return pipelines.operate(self._caller, org_id, pipeline_id, action, body, self._until())

    def wait_for_status(
        self, org_id: str, pipeline_id: str, status: str, *, until: Deadline | None = None
    ) -> None:
        """Poll List Pipelines (with backoff, a progress line each) until the pipeline is ``status``.

        Bounded by ``until`` (default: ``operation_timeout`` from now):
        :class:`~enos_pulumi.enos.errors.OperationTimeoutError`.
        """
        pipeline_control.wait_for_status(
            self._caller,
            org_id,
            pipeline_id,
            status,
            until or self.operation_deadline(),
            self.retry.sleep,
            self._emit,
        )

    def pause_pipeline(
        self, org_id: str, pipeline_id: str, *, wait: bool = True, until: Deadline | None = None
    ) -> str | None:
        """Pause a RUNNING pipeline and (``wait``) poll until it is PAUSED; the pause's requestId.

        The request and the wait share one bound (``until``, default ``operation_timeout`` from now). A
        pause whose answer was lost returns None and is waited for like any other; it raises only when
        the pause certainly did not take effect.
        """
        until = until or self.operation_deadline()
        request_id = pipeline_control.pause_pipeline(self._caller, org_id, pipeline_id, until)
        if wait:
            self.wait_for_status(org_id, pipeline_id, "PAUSED", until=until)
        return request_id

    def start_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        execution_mode: str,
        kafka_rate: int,
        resource_config: Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        until: Deadline | None = None,
    ) -> str | None:
        """Start (resume) a pipeline and (``wait``) poll until it is RUNNING; the start's requestId (None
        when its answer was lost, or the pipeline was running already).

        ``execution_mode`` is ``"standalone"`` or ``"cluster"``; 61121 (another start in progress) is
        asked again; the request and the wait share one bound (``until``, default ``operation_timeout``
        from now).
        """
        if execution_mode not in pipeline_control.EXECUTION_MODES:
            raise ValueError(f"execution_mode must be standalone or cluster, got {execution_mode!r}")
        body = pipeline_control.start_body(execution_mode, kafka_rate, resource_config)
        until = until or self.operation_deadline()
        request_id = pipeline_control.start_pipeline(
            self._caller, org_id, pipeline_id, body, until, self.retry.sleep
        )
        if wait:
            self.wait_for_status(org_id, pipeline_id, "RUNNING", until=until)
        return request_id

    def emit(self, event: RequestEvent) -> None:
        """Report ``event`` through this client's progress channel (``on_event``)."""
        self._emit(event)

    def warn(self, target: str, text: str) -> None:
        """A warning for the user, through the same channel as the progress lines (``pulumi up`` shows
        the provider's stderr)."""
        self._emit(RequestEvent("Warning", target, "warning", 0.0, detail=text))


def _checked_ids(value: Sequence[str] | str, name: str) -> Sequence[str]:
    """IDs as the resource takes them: a list or one comma-separated string, canonical, each valid. A
    string is never iterated character by character, and an ID with a comma never becomes two."""
    if isinstance(value, JoinedIds):
        return value  # already canonical (the provider's checked inputs)
    return canonical_ids(value if isinstance(value, (str, list)) else list(value), name)
