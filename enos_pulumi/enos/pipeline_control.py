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
WAIT = "Wait for pipeline status"
#: Statuses that end a wait at once: the pipeline went somewhere it will not come back from by itself.
_DEAD_ENDS = {"PAUSED": ("STOPPED", "PUBLISHED"), "RUNNING": ("STOPPED", "PUBLISHED")}


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


def _may_have_landed(failed: list[BaseException]) -> bool:
    return any(isinstance(e, TransportError) and e.kind in _MAYBE_SENT for e in failed)


def pause_pipeline(caller: Caller, org_id: str, pipeline_id: str, until: Deadline) -> str | None:
    """Operate Pipeline ``pause``: its requestId, or None when the pause may have taken effect though no
    answer said so (an attempt went out and its answer was lost; a retry was then refused as an illegal
    transition, or failed too). The caller waits for PAUSED either way. Raises only when the pause
    certainly did not take effect: refused on its first answer, or never sent."""
    failed: list[BaseException] = []
    try:
        envelope = operate(caller, org_id, pipeline_id, "pause", None, until, failed)
    except PipelineStatusError as exc:
        if exc.code == ILLEGAL_TRANSITION and _may_have_landed(failed):
            return None
        raise
    except TransportError as exc:
        if _may_have_landed([*failed, exc]):
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
                _may_have_landed(failed) or _runs(caller, org_id, pipeline_id, until)
            ):
                return None
            raise
        except TransportError as exc:
            if _may_have_landed([*failed, exc]):
                return None
            raise


def _runs(caller: Caller, org_id: str, pipeline_id: str, until: Deadline) -> bool:
    try:
        return status_of(caller, org_id, pipeline_id, until) == "RUNNING"
    except EnosError:
        return False


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
    pipeline disappears, or :class:`PipelineStatusError` if it reaches a status it cannot leave by itself
    (STOPPED while waiting for PAUSED, say).
    """
    target = f"pipeline {pipeline_id}"
    started = time.monotonic()
    wait_s = 0.5
    status: str | None = None

    def timed_out() -> OperationTimeoutError:
        return OperationTimeoutError(
            WAIT, target, until.seconds, until.setting, f"it is still {status}, not {wanted}"
        )

    while True:
        # The last look comes at the bound itself (the loop below never sleeps past it), so it may start
        # even though the clock has just reached the bound.
        poll = Deadline(max(until.at, caller.retry.clock() + 1e-3), until.seconds, until.setting)
        try:
            status = status_of(caller, org_id, pipeline_id, poll)
        except OperationTimeoutError:
            if status is None:
                raise
            raise timed_out() from None
        elapsed = time.monotonic() - started
        if status is None:
            raise PipelineNotListedError(pipeline_id, org_id)
        if status == wanted:
            emit(RequestEvent(WAIT, target, "reached", elapsed, detail=f"{wanted}"))
            return
        if status in _DEAD_ENDS.get(wanted, ()):
            raise PipelineStatusError(
                operation=WAIT,
                message=f"the pipeline became {status} while waiting for {wanted}",
                target=target,
                context={"org_id": org_id, "pipeline_id": pipeline_id},
            )
        left = until.at - caller.retry.clock()
        if left <= 0:
            raise timed_out()
        pause_s = min(wait_s, left)
        emit(
            RequestEvent(
                WAIT,
                target,
                "waiting",
                elapsed,
                detail=f"{status}, want {wanted}; next look in {pause_s:.1f} s",
            )
        )
        sleep(pause_s)
        wait_s = min(wait_s * 2, 10.0)
