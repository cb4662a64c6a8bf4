"""The client's time bounds as one value: what each bounds, how they nest, and the bounds derived from
them (a socket's waits, an operation's deadline)."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Deadline

__all__ = ["Timeouts"]


@dataclass(frozen=True)
class Timeouts:
    """Every time bound, in seconds, from the smallest up (``Settings.timeouts``; each is a setting;
    ``Timeouts()`` holds their defaults).

    One socket read waits at most ``read`` and a connection at most ``connect``; one attempt (connect,
    send, the whole answer) takes at most ``attempt``; one request's retries start within
    ``retry_deadline`` of its own first attempt; one operation (a reset's requests, a status check)
    starts nothing after ``reset``; a pause or a start, with its wait for the pipeline's status, starts
    nothing after ``operation``.
    """

    connect: float = 10.0
    read: float = 60.0
    attempt: float = 60.0
    retry_deadline: float = 120.0
    reset: float = 1800.0
    operation: float = 300.0

    @property
    def socket(self) -> tuple[float, float]:
        """(connect, read) for the HTTP stack: no single wait outlasts the attempt it is part of."""
        return min(self.connect, self.attempt), min(self.read, self.attempt)

    def reset_deadline(self, now: float) -> Deadline:
        """An operation's bound, ``reset`` from ``now`` (the retry policy's clock)."""
        return Deadline(now + self.reset, self.reset, "enos:resetTimeoutSeconds")

    def operation_deadline(self, now: float) -> Deadline:
        """A pause's or start's bound, waits included: ``operation`` from ``now``."""
        return Deadline(now + self.operation, self.operation, "enos:operationTimeoutSeconds")
