"""Pipelines and their status transitions (pause, start, stop), which may take time as on EnOS.

An accepted operation does not change the status at once when it is configured to take time: the
pipeline keeps its old status (what List Pipelines shows, what Delete Stage State checks) until the
simulator's clock reaches the moment the operation takes effect. Transitions are settled lazily, whenever
someone looks at the pipeline, and stamped with the clock time at which they took effect, so a test that
moves a fake clock sees exactly the same history as one that waits.

Refusals follow the EnOS API (docs/design.md, "Pipelines"): pause needs RUNNING (61152 otherwise);
start needs PAUSED, STOPPED or PUBLISHED (61165 otherwise); stop needs RUNNING or PAUSED (61152).
While an operation is in progress the pipeline accepts no other: a second start answers 61121 (another
start in progress), any other operation its own refusal code (61152 for pause and stop, 61165 for start).

Statuses and what moves between them live here alone: :data:`RULES` (which action leads where, from
which statuses, refused with which code) and :class:`Pipelines` (the registry that applies them).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["RULES", "Pending", "Pipeline", "Pipelines", "begin", "refusal", "settle"]

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

    def to_json(self) -> dict[str, Any]:
        """As List Pipelines shows it."""
        return {"pipelineId": self.pipeline_id, "pipelineName": self.name, "status": self.status}


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


class Pipelines:
    """Every pipeline by ID (IDs are unique across organizations) and the transitions they made, oldest
    first (the newest ``history_limit`` kept). ``lock`` is the store's, so that a caller can look a
    pipeline up and act on it in one step."""

    def __init__(self, clock: Callable[[], float], lock: threading.RLock, history_limit: int) -> None:
        self.clock, self.lock = clock, lock
        self.by_id: dict[str, Pipeline] = {}
        self.transitions: deque[dict[str, Any]] = deque(maxlen=history_limit)

    def add(
        self,
        org_id: str,
        pipeline_id: str,
        status: str = "PAUSED",
        name: str | None = None,
        released: bool = True,
    ) -> None:
        if not org_id or not pipeline_id or not status:
            raise ValueError("a pipeline needs a non-empty org ID, pipeline ID and status")
        with self.lock:
            existing = self.by_id.get(pipeline_id)
            if existing is not None and existing.org_id != org_id:
                raise ValueError(f"pipeline {pipeline_id} already belongs to org {existing.org_id}")
            self.by_id[pipeline_id] = Pipeline(org_id, pipeline_id, name or pipeline_id, status, released)

    def get(self, org_id: str, pipeline_id: str) -> Pipeline | None:
        """The pipeline if it exists in ``org_id`` (another org's pipeline is invisible, as in EnOS), with
        any operation whose time has come applied."""
        with self.lock:
            found = self.by_id.get(pipeline_id)
            if found is None or found.org_id != org_id:
                return None
            self._settle(found)
            return found

    def page(
        self, org_id: str, released_only: bool, page_no: int, page_size: int
    ) -> tuple[int, list[Pipeline]]:
        """List Pipelines: the total count in ``org_id`` and one page of them."""
        with self.lock:
            matching = [
                p for p in self.by_id.values() if p.org_id == org_id and (p.released or not released_only)
            ]
            start = (page_no - 1) * page_size
            page = matching[start : start + page_size]
            for pipeline in page:
                self._settle(pipeline)
            return len(matching), page

    def operate(
        self,
        pipeline: Pipeline,
        action: str,
        delay: float,
        request_id: str | None,
        effect: bool = True,
        to: str | None = None,
    ) -> int:
        """Pause, start or stop ``pipeline`` (already looked up, under the lock): 0 when accepted, else
        the EnOS code refusing it. Without ``effect`` an accepted operation changes nothing; ``to`` is the
        status it leads to instead of the usual one (a start that ends FAILED)."""
        with self.lock:
            self._settle(pipeline)
            code = refusal(pipeline, action)
            if code is not None:
                return code
            if effect:
                record = begin(pipeline, action, self.clock(), delay, request_id, to)
                if record is not None:
                    self.transitions.append(record)
            return 0

    def set_status(self, org_id: str, pipeline_id: str, status: str) -> None:
        """Set a status at once, dropping any operation in progress (a test's fixture, not an API call)."""
        with self.lock:
            pipeline = self.get(org_id, pipeline_id)
            if pipeline is None:
                raise KeyError(f"no pipeline {pipeline_id} in org {org_id}")
            pipeline.status, pipeline.pending = status, None

    def settle_all(self) -> None:
        with self.lock:
            for pipeline in self.by_id.values():
                self._settle(pipeline)

    def _settle(self, pipeline: Pipeline) -> None:
        record = settle(pipeline, self.clock())
        if record is not None:
            self.transitions.append(record)
