"""Test doubles shared by several test modules."""

from __future__ import annotations

import threading


class FakeTime:
    """The retry policy's clock and sleep: sleeping records the wait and moves the clock, nothing more."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
