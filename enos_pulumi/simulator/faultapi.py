"""Shortcuts for the faults tests inject most (mixed into :class:`.server.Simulator`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .faults import Fault
from .wire import format_seconds

__all__ = ["FaultShortcuts"]


class FaultShortcuts:
    def add_fault(self, fault: Fault | str | Mapping[str, Any]) -> Fault:
        raise NotImplementedError  # provided by Simulator

    def add_latency(self, ms: float, *, op: str | None = None, count: int | None = None) -> Fault:
        """Delay matching requests by ``ms`` (on top of the global ``latency_ms``)."""
        return self.add_fault(Fault("latency", op=op, count=count, latency_ms=ms))

    def fail_with_status(
        self,
        status: int = 503,
        *,
        op: str | None = None,
        count: int | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Answer matching requests with an HTTP error (e.g. 429/503) and optional ``Retry-After``."""
        return self.add_fault(
            Fault("status", op=op, count=count, status=status, retry_after=format_seconds(retry_after))
        )

    def drop_connections(self, *, op: str | None = None, count: int | None = None) -> Fault:
        """Read matching requests, then close the connection without answering."""
        return self.add_fault(Fault("drop", op=op, count=count))

    def answer_data_false(self, *, op: str = "delete", count: int | None = None) -> Fault:
        """Answer ``code 0, data false`` without doing anything."""
        return self.add_fault(Fault("data-false", op=op, count=count))

    def html_error(self, status: int = 502, *, op: str | None = None, count: int | None = None) -> Fault:
        """Answer with a non-JSON HTML error page, as a proxy in front of EnOS would."""
        return self.add_fault(Fault("html", op=op, count=count, status=status))

    def error_code(
        self, code: int, *, op: str | None = None, count: int | None = None, msg: str | None = None
    ) -> Fault:
        """Answer an authenticated request with EnOS ``code`` (HTTP 200 envelope, ``status`` for tokens)."""
        return self.add_fault(Fault("code", op=op, count=count, code=code, msg=msg))

    def start_in_progress(self, *, count: int | None = None) -> Fault:
        """Answer Operate Pipeline start with 61121 (another start in progress)."""
        return self.error_code(61121, op="start", count=count)

    def no_effect(self, op: str = "pause", *, count: int | None = None) -> Fault:
        """Answer matching Operate Pipeline requests (``pause``, ``start``, ``stop`` or ``operate`` for any)
        as usual — ``code 0`` when the transition is legal — but never change the status: a pause that
        never takes effect."""
        return self.add_fault(Fault("no-effect", op=op, count=count))

    def becomes(self, status: str, op: str = "start", *, count: int | None = None) -> Fault:
        """Accept matching Operate Pipeline requests, and when they take effect make the pipeline ``status``
        (``FAILED``, say) instead of the usual one: a start that ends in failure."""
        return self.add_fault(Fault("becomes", op=op, count=count, to=status))

    def answer_lost(
        self, kind: str = "status", *, op: str, count: int | None = 1, status: int = 503, code: int = 61199
    ) -> Fault:
        """Let matching requests take effect, then lose their answer: ``status`` (an HTTP 5xx), ``html``,
        ``drop`` (the connection closes) or ``code`` (an EnOS code such as 61199)."""
        return self.add_fault(
            Fault(
                kind,
                op=op,
                count=count,
                status=status if kind in ("status", "html") else None,
                code=code if kind == "code" else None,
                after=True,
            )
        )
