"""Pipelines and their status transitions (pause, start, stop), which may take time as on EnOS.

An accepted operation does not change the status at once when it is configured to take time: the
pipeline keeps its old status (what List Pipelines shows, what Delete Stage State checks) until the
simulator's clock reaches the moment the operation takes effect. Transitions are settled lazily, whenever
someone looks at the pipeline, and stamped with the clock time at which they took effect, so a test that
moves a fake clock sees exactly the same history as one that waits.

Refusals follow enos-api.md: pause needs RUNNING (61152 otherwise); start needs PAUSED, STOPPED or
PUBLISHED (61165 otherwise); stop needs RUNNING or PAUSED (61152). While an operation is in progress the
pipeline accepts no other: a second start answers 61121 (another start in progress), any other operation
its own refusal code (61152 for pause and stop, 61165 for start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RULES", "Pending", "Pipeline", "begin", "refusal", "settle"]

#: action -> (statuses it may start from, status it leads to, EnOS code refusing it)
RULES: dict[str, tuple[tuple[str, ...], str, int]] = {
    "pause": (("RUNNING",), "PAUSED", 61152),
    "start": (("PAUSED", "STOPPED", "PUBLISHED"), "RUNNING", 61165),
    "stop": (("RUNNING", "PAUSED"), "STOPPED", 61152),
}


@dataclass
class Pending:
    action: str
    source: str
    target: str
    requested_at: float
    effective_at: float
    request_id: str | None


@dataclass
class Pipeline:
    org_id: str
    pipeline_id: str
    name: str
    status: str
    released: bool = True
    pending: Pending | None = None


def refusal(pipeline: Pipeline, action: str) -> int | None:
    """The EnOS code refusing ``action`` on the pipeline now, or None if it is allowed."""
    allowed, _, code = RULES[action]
    if pipeline.pending is not None:
        return 61121 if action == "start" and pipeline.pending.action == "start" else code
    return None if pipeline.status in allowed else code


def begin(
    pipeline: Pipeline,
    action: str,
    now: float,
    delay: float,
    request_id: str | None,
    to: str | None = None,
) -> dict[str, Any] | None:
    """Start an allowed operation (leading to ``to`` instead of its usual status, if given); returns the
    transition record if it took effect at once."""
    pipeline.pending = Pending(
        action, pipeline.status, to or RULES[action][1], now, now + max(delay, 0.0), request_id
    )
    return settle(pipeline, now)


def settle(pipeline: Pipeline, now: float) -> dict[str, Any] | None:
    """Apply the pending operation if its time has come; returns its transition record."""
    pending = pipeline.pending
    if pending is None or now < pending.effective_at:
        return None
    pipeline.status, pipeline.pending = pending.target, None
    return {
        "org_id": pipeline.org_id,
        "pipeline_id": pipeline.pipeline_id,
        "action": pending.action,
        "from": pending.source,
        "to": pending.target,
        "requested_at": pending.requested_at,
        "effective_at": pending.effective_at,
        "request_id": pending.request_id,
    }
