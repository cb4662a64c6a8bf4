"""Pausing and starting a pipeline and waiting for its status, each bounded by the operation timeout.

Operate Pipeline only asks for a transition; List Pipelines tells when it took effect, so every
operation here is "ask, then poll the status with backoff" within ``enos:operationTimeoutSeconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from .calls import Caller
from .errors import (
    EnosError,
    OperationTimeoutError,
    PipelineNotListedError,
    PipelineStatusError,
    ServerError,
    TransportError,
    TransportKind,
)
from .model import Deadline, RequestEvent
from .pipelines import operate, status_of

__all__ = [
    "EXECUTION_MODES",
    "pause_pipeline",
    "start_body",
    "start_pipeline",
    "wait_for_status",
]

#: resume_execution_mode -> the API's executionMode.
EXECUTION_MODES = {"standalone": 0, "cluster": 1}
ANOTHER_START_IN_PROGRESS = 61121
ILLEGAL_TRANSITION = 61152
CANNOT_START = 61165
OPERATE = "Operate Pipeline"
WAIT = "Wait for pipeline status"
#: Statuses that end a wait at once: the pipeline went somewhere it will not come back from by itself.
_DEAD_ENDS = ("STOPPED", "PUBLISHED")
#: Words of statuses beyond the documented four that say an operation failed (FAILED, START_FAILED,
#: ERROR...): a wait ends on them too, rather than polling a failure until the bound.
_FAILURE_WORDS = ("FAIL", "ERROR", "EXCEPTION", "ABNORMAL")


def start_body(
    execution_mode: str, kafka_rate: int, resource_config: Mapping[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"executionMode": EXECUTION_MODES[execution_mode], "kafkaRate": kafka_rate}
    if resource_config is not None:
        body["resourceConfig"] = dict(resource_config)
    return body


#: Transport failures after which a request may have reached EnOS: it went out, its answer did not come.
_MAYBE_SENT = frozenset(
    {
        TransportKind.TIMEOUT,
        TransportKind.CLOSED,
        TransportKind.BAD_ANSWER,
        TransportKind.TOO_LARGE,
        TransportKind.UNCLASSIFIED,
    }
)


def _may_have_landed(failed: list[BaseException], operation: str) -> bool:
    """Whether one of ``operation``'s failed attempts may have been carried out by EnOS all the same: it
    went out and its answer was lost, or the answer was a server failure (a 5xx, 61199), which may come
    after the service acted. A failure of the token request it needed means it was never sent."""
    for error in failed:
        if getattr(error, "operation", None) != operation:
            continue
        if isinstance(error, TransportError) and error.kind in _MAYBE_SENT:
            return True
        if isinstance(error, ServerError):
            return True
    return False


def pause_pipeline(caller: Caller, org_id: str, pipeline_id: str, until: Deadline) -> str | None:
    """Operate Pipeline ``pause``: its requestId, or None when the pause may have taken effect though no
    answer said so (an attempt went out and its answer was lost or was a server failure; a retry was then
    refused as an illegal transition, or failed too). The caller waits for PAUSED either way. Raises only
    when the pause certainly did not take effect: refused on its first answer, or never sent."""
    failed: list[BaseException] = []
    operation = f"{OPERATE} (pause)"
    try:
        envelope = operate(caller, org_id, pipeline_id, "pause", None, until, failed)
    except PipelineStatusError as exc:
        if exc.code == ILLEGAL_TRANSITION and _may_have_landed(failed, operation):
            return None
        raise
    except EnosError as exc:
        if _may_have_landed([*failed, exc], operation):
            return None
        raise
    return envelope.get("requestId")


def start_pipeline(
    caller: Caller,
    org_id: str,
    pipeline_id: str,
    body: Mapping[str, Any],
    until: Deadline,
    sleep: Callable[[float], None],
) -> str | None:
    """Operate Pipeline ``start``: its requestId, or None when the start may have taken effect though no
    answer said so, or the pipeline runs already (61165 while RUNNING). 61121 (another start in
    progress) is asked again until ``until``."""
    wait_s = 1.0
    failed: list[BaseException] = []
    operation = f"{OPERATE} (start)"
    while True:
        try:
            envelope = operate(caller, org_id, pipeline_id, "start", body, until, failed)
            return envelope.get("requestId")
        except PipelineStatusError as exc:
            left = until.at - caller.retry.clock()
            if exc.code == ANOTHER_START_IN_PROGRESS and left > 0:
                sleep(min(wait_s, left))
                wait_s = min(wait_s * 2, 10.0)
                continue
            if exc.code == CANNOT_START and (
                _may_have_landed(failed, operation) or _runs(caller, org_id, pipeline_id, until)
            ):
                return None
            raise
        except EnosError as exc:
            if _may_have_landed([*failed, exc], operation):
                return None
            raise


def _runs(caller: Caller, org_id: str, pipeline_id: str, until: Deadline) -> bool:
    try:
        return status_of(caller, org_id, pipeline_id, until) == "RUNNING"
    except EnosError:
        return False


def _dead_end(status: str, wanted: str, first: str | None, left_first: bool) -> str | None:
    """Why a wait for ``wanted`` should end now with ``status`` seen, or None to keep polling."""
    if status in _DEAD_ENDS or any(word in status for word in _FAILURE_WORDS):
        return f"the pipeline became {status} while waiting for {wanted}"
    if left_first and status == first:
        # It left the status it had (STARTING, say) and fell back: the operation failed on EnOS' side.
        return f"the pipeline went back to {status} while waiting for {wanted}"
    return None


def wait_for_status(
    caller: Caller,
    org_id: str,
    pipeline_id: str,
    wanted: str,
    until: Deadline,
    sleep: Callable[[float], None],
    emit: Callable[[RequestEvent], None],
) -> None:
    """Poll List Pipelines with backoff until the pipeline is ``wanted``; a progress line per poll.

    Ends with :class:`OperationTimeoutError` at ``until``, :class:`PipelineNotListedError` if the
    pipeline disappears, or :class:`PipelineStatusError` as soon as it reaches a status it cannot leave by
    itself (STOPPED while waiting for PAUSED, FAILED, or back to the status it left).
    """
    target = f"pipeline {pipeline_id}"
    started = time.monotonic()
    wait_s = 0.5
    status: str | None = None
    first: str | None = None
    left_first = False
    while True:
        # The last look comes at the bound itself (the loop below never sleeps past it), so it may start
        # even though the clock has just reached the bound.
        poll = Deadline(max(until.at, caller.retry.clock() + 1e-3), until.seconds, until.setting)
        try:
            seen = status_of(caller, org_id, pipeline_id, poll)
        except OperationTimeoutError:
            if status is None:
                raise
            raise _timed_out(until, target, status, wanted) from None
        if seen is None:
            raise PipelineNotListedError(pipeline_id, org_id)
        status, first = seen, first or seen
        left_first = left_first or status != first
        elapsed = time.monotonic() - started
        if status == wanted:
            emit(RequestEvent(WAIT, target, "reached", elapsed, detail=f"{wanted}"))
            return
        reason = _dead_end(status, wanted, first, left_first)
        if reason is not None:
            context = {"org_id": org_id, "pipeline_id": pipeline_id, "status": status}
            raise PipelineStatusError(operation=WAIT, message=reason, target=target, context=context)
        left = until.at - caller.retry.clock()
        if left <= 0:
            raise _timed_out(until, target, status, wanted)
        pause_s = min(wait_s, left)
        detail = f"{status}, want {wanted}; next look in {pause_s:.1f} s"
        emit(RequestEvent(WAIT, target, "waiting", elapsed, detail=detail))
        sleep(pause_s)
        wait_s = min(wait_s * 2, 10.0)


def _timed_out(until: Deadline, target: str, status: str, wanted: str) -> OperationTimeoutError:
    return OperationTimeoutError(
        WAIT, target, until.seconds, until.setting, f"it is still {status}, not {wanted}"
    )
