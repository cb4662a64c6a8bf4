"""What a request handler works with: the model (and its clock), the settings, and how to wait.

Handlers (:mod:`.dispatch`, :mod:`.gateway`, :mod:`.services`) take a :class:`Context` and nothing
else of the simulator's, so each can be driven on its own: a store on a fake clock and settings built in
a test, a ``sleep`` that only records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import Settings
from .store import Store

__all__ = ["Context"]


@dataclass(frozen=True)
class Context:
    store: Store
    settings: Settings = field(default_factory=Settings)
    #: How the simulated latency (``latency_ms``, latency faults) is waited out.
    sleep: Callable[[float], None] = time.sleep

    @property
    def clock(self) -> Callable[[], float]:
        """The store's clock (seconds, like ``time.time``): token expiry, the signature's timestamp
        window, transitions, default state times."""
        return self.store.clock
