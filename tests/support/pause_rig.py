"""A simulator and clients sharing one movable clock, so pauses and starts that take minutes run in
milliseconds: the client's waits advance the clock the simulator's transitions are timed on."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from enos_pulumi.enos import auth
from enos_pulumi.enos.client import EnosClient, RequestEvent, SessionPool
from enos_pulumi.enos.retry import Backoff, RetryPolicy
from enos_pulumi.enos.settings import resolve_settings
from enos_pulumi.simulator import Simulator
from tests.support.fakes import FakeTime
from tests.support.fixtures_simulator import SIM_ACCESS_KEY, SIM_SECRET_KEY, make_simulator


class ShiftedTime(FakeTime):
    """The client's clock and sleep (sleeping moves time, instantly); ``wall`` for the simulator: real
    wall-clock time plus everything slept, so signing timestamps stay within its 15-minute window."""

    def wall(self) -> float:
        return time.time() + self.now

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        time.sleep(0.001)  # let other threads (parallel resets) run, as a real wait would


class PauseRig:
    def __init__(self, **sim_options: Any) -> None:
        self.time = ShiftedTime()
        self.sim: Simulator = make_simulator(clock=self.time.wall, **sim_options)
        self.tokens = auth.TokenCache()
        self.sessions = SessionPool()
        self.events: list[RequestEvent] = []

    def client(self, **fields: Any) -> EnosClient:
        settings = resolve_settings(
            {"api_gateway": self.sim.base_url, "access_key": SIM_ACCESS_KEY, "secret_key": SIM_SECRET_KEY}
        )
        settings = dataclasses.replace(settings, **fields)
        policy = RetryPolicy(
            deadline=settings.retry_deadline,
            backoff=Backoff(initial=0.5),
            clock=self.time.clock,
            sleep=self.time.sleep,
            rng=lambda: 0.5,
        )
        return EnosClient(
            settings, retry=policy, on_event=self.events.append, tokens=self.tokens, sessions=self.sessions
        )

    def log(self, *operations: str) -> list[dict[str, Any]]:
        return [e for e in self.sim.requests if not operations or e["operation"] in operations]

    def close(self) -> None:
        self.sessions.clear()
        self.sim.stop()


@pytest.fixture
def pause_rig() -> Iterator[PauseRig]:
    rig = PauseRig(pause_seconds=5.0, start_seconds=3.0)
    try:
        yield rig
    finally:
        rig.close()
