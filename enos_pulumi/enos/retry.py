"""Retries from small parts: what is retryable, the backoff schedule, and two deadlines.

Each request has its own retry budget counted from its own first attempt (``deadline``), so a long reset
does not starve its last requests; an operation of many requests also passes an absolute ``until`` (its
total bound) that no retry may pass. The clock and the sleep are injected so tests run retry sequences
without sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import ApiError, EnosError, RateLimitedError, ServerError, TransportError

__all__ = ["Backoff", "RetryPolicy", "is_retryable"]

T = TypeVar("T")

#: Waits shorter than this are not worth a last attempt at the end of a budget.
MIN_LAST_WAIT = 0.05


def is_retryable(exc: BaseException) -> bool:
    """Transient: no answer at all, the gateway's 408/429, or a 5xx / EnOS internal error.

    Deleting stage state twice is harmless, so even a failure after the server may have acted is safe to
    retry. Business errors (61102, 61106, 61107, ...), 401/403 and ``data: false`` are permanent.
    """
    if isinstance(exc, TransportError):
        return exc.retryable
    return isinstance(exc, (RateLimitedError, ServerError))


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: wait n is uniform in [0.1, 1] x min(maximum, initial*multiplier^n)."""

    initial: float = 0.5
    multiplier: float = 2.0
    maximum: float = 20.0

    def delays(self, rng: Callable[[], float]) -> Iterator[float]:
        ceiling = min(self.initial, self.maximum)
        while True:
            # Never below a tenth of the ceiling: a zero wait would hammer a struggling gateway.
            yield ceiling * (0.1 + 0.9 * rng())
            ceiling = min(ceiling * self.multiplier, self.maximum)


@dataclass
class RetryPolicy:
    """Run a call until it succeeds, fails permanently, or its retry budget is spent."""

    deadline: float = 120.0
    backoff: Backoff = field(default_factory=Backoff)
    predicate: Callable[[BaseException], bool] = is_retryable
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random

    def run(
        self,
        call: Callable[[], T],
        on_retry: Callable[[BaseException, float, int], None] | None = None,
        until: float | None = None,
    ) -> T:
        """``call()`` with retries; ``on_retry(error, wait, attempt)`` is told before each wait.

        The budget is ``deadline`` from this call's first attempt, cut short by ``until`` (this policy's
        clock) when the call is part of a bounded operation. A backoff wait that would pass the budget is
        shortened to what is left, so the budget is used, not abandoned early; a server's Retry-After is
        honoured in full, so when it asks for more than is left the error is raised at once, saying so.
        No attempt starts after the budget: a request ends within its budget plus one attempt.
        """
        start = self.clock()
        end = start + self.deadline if until is None else min(start + self.deadline, until)
        delays = self.backoff.delays(self.rng)
        attempt = 1
        while True:
            try:
                return call()
            except EnosError as exc:
                if not self.predicate(exc):
                    raise
                now = self.clock()
                left = end - now
                if left < MIN_LAST_WAIT:
                    exc.append_to_message(
                        f"[gave up after {attempt} attempt(s) in {now - start:.1f} s; "
                        f"{self._budget_text(until, start)}]"
                    )
                    raise
                retry_after = exc.retry_after if isinstance(exc, ApiError) else None
                if retry_after is not None and retry_after > left:
                    exc.append_to_message(
                        f"[not retried: the server asked to wait {retry_after:g} s (Retry-After), more than "
                        f"the {left:.1f} s left of the retry budget; {attempt} attempt(s) in "
                        f"{now - start:.1f} s]"
                    )
                    raise
                # The last attempt comes at the end of the budget rather than not at all.
                wait = min(max(next(delays), retry_after or 0.0), left)
                if on_retry is not None:
                    on_retry(exc, wait, attempt)
                self.sleep(wait)
                attempt += 1

    def _budget_text(self, until: float | None, start: float) -> str:
        if until is not None and until < start + self.deadline:
            return "the operation's total time bound was reached"
        return f"retry budget {self.deadline:g} s per request"
