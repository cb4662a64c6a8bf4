"""Plain values the client hands out: what is reset, progress events and a reset's report."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Deadline", "RequestEvent", "ResetReport", "StageTarget"]


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
    #: "ok", "retrying", "split", "failed", "not sent" (no token), a status wait's "waiting"/"reached", or
    #: "warning" (``detail`` is a warning for the user about ``target``)
    outcome: str
    elapsed: float
    request_id: str | None = None
    batch: int | None = None
    batches: int | None = None
    assets: int | None = None
    points: int | None = None
    detail: str = ""

    def describe(self) -> str:
        if self.outcome == "warning":
            return f"enos: WARNING ({self.target}): {self.detail}"
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
    """What a delete did: how many requests succeeded, the requestIds EnOS gave them (a request answered
    without one has none), and the pairs covered."""

    request_ids: tuple[str, ...]
    pairs: int
    requests: int | None = None

    @property
    def request_count(self) -> int:
        return self.requests if self.requests is not None else len(self.request_ids)


@dataclass(frozen=True)
class Deadline:
    """An operation's total bound: no request or retry starts after ``at`` (the retry policy's clock).
    ``seconds`` and ``setting`` say, in errors, which bound it was."""

    at: float
    seconds: float
    setting: str
