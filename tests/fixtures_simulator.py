"""Pytest fixtures around the local EnOS simulator (registered from conftest.py via ``pytest_plugins``).

``simulator``: a started :class:`Simulator` with one app, org ``o-test``, a PAUSED and a RUNNING pipeline;
stopped after the test. ``simulator_factory``: build more of them with other options.
``simulator_env``: the ``simulator`` plus ENOS_* variables pointing at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enos_pulumi.simulator import Simulator

__all__ = [
    "SIM_ACCESS_KEY",
    "SIM_ORG_ID",
    "SIM_OTHER_ORG_ID",
    "SIM_OTHER_PIPELINE",
    "SIM_PAUSED_PIPELINE",
    "SIM_RUNNING_PIPELINE",
    "SIM_SECRET_KEY",
    "SIM_STAGE",
    "make_simulator",
    "simulator",
    "simulator_env",
    "simulator_factory",
]

SIM_ACCESS_KEY = "test-access-key"
SIM_SECRET_KEY = "test-secret-key"  # test value for the local simulator only
SIM_ORG_ID = "o-test"
SIM_PAUSED_PIPELINE = "pl-paused"
SIM_RUNNING_PIPELINE = "pl-running"
SIM_STAGE = "FixedTimeWindowAggregator_1"
#: A pipeline of another organization, which the test app may not touch (for 61106 / 61108 checks).
SIM_OTHER_ORG_ID = "o-other"
SIM_OTHER_PIPELINE = "pl-other-org"


def make_simulator(**options: Any) -> Simulator:
    """A started simulator with the standard test app and pipelines; ``options`` go to :class:`Simulator`.

    The app may act on ``SIM_ORG_ID`` only; ``SIM_OTHER_PIPELINE`` (PAUSED) lives in ``SIM_OTHER_ORG_ID``.
    No stage state is seeded: tests add what they need with ``set_state`` / ``set_pairs``.
    """
    sim = Simulator(**options)
    sim.add_app(SIM_ACCESS_KEY, SIM_SECRET_KEY, orgs=[SIM_ORG_ID])
    sim.add_pipeline(SIM_ORG_ID, SIM_PAUSED_PIPELINE, status="PAUSED")
    sim.add_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE, status="RUNNING")
    sim.add_pipeline(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, status="PAUSED")
    return sim.start()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = make_simulator()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    """``simulator_factory(pair_limit=10, clock=...)``: a started standard simulator, stopped afterwards."""
    started: list[Simulator] = []

    def factory(**options: Any) -> Simulator:
        sim = make_simulator(**options)
        started.append(sim)
        return sim

    try:
        yield factory
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture
def simulator_env(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """The ``simulator``, with ENOS_API_GATEWAY / ACCESS_KEY / SECRET_KEY / ORG_ID set to reach it."""
    monkeypatch.setenv("ENOS_API_GATEWAY", simulator.base_url)
    monkeypatch.setenv("ENOS_ACCESS_KEY", SIM_ACCESS_KEY)
    monkeypatch.setenv("ENOS_SECRET_KEY", SIM_SECRET_KEY)
    monkeypatch.setenv("ENOS_ORG_ID", SIM_ORG_ID)
    return simulator
