"""Retries from small parts: what is retryable, the backoff schedule, and a deadline.

The clock and the sleep are injected so tests run retry sequences without sleeping.
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


def is_retryable(exc: BaseException) -> bool:
    """Transient: no answer at all, the gateway's 429, or a 5xx / EnOS internal error.

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
    """Run a call until it succeeds, fails permanently, or the next wait would pass the deadline."""

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
        since: float | None = None,
    ) -> T:
        """``call()`` with retries; ``on_retry(error, wait, attempt)`` is told before each wait.

        A Retry-After given by the server is honoured (waits at least that long). When the wait would
        end past the deadline, the last error is raised with a note saying how long we tried. ``since``
        (this policy's clock) starts the deadline earlier: calls that make up one operation share it, so
        a reset of many requests is bounded as a whole, not per request.
        """
        start = self.clock() if since is None else since
        delays = self.backoff.delays(self.rng)
        attempt = 1
        while True:
            try:
                return call()
            except EnosError as exc:
                if not self.predicate(exc):
                    raise
                wait = next(delays)
                retry_after = exc.retry_after if isinstance(exc, ApiError) else None
                if retry_after is not None:
                    wait = max(wait, retry_after)
                elapsed = self.clock() - start
                if elapsed + wait > self.deadline:
                    exc.append_to_message(
                        f"[gave up after {attempt} attempt(s) in {elapsed:.1f} s; "
                        f"retry deadline {self.deadline:g} s]"
                    )
                    raise
                if on_retry is not None:
                    on_retry(exc, wait, attempt)
                self.sleep(wait)
                attempt += 1
