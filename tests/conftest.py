"""Shared fixtures: a clean ENOS_* environment for every test, plus the simulator fixtures."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.support.fixtures_simulator", "tests.support.stubs", "tests.support.pause_rig"]


@pytest.fixture(autouse=True)
def _clean_enos_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own ENOS_* variables must never leak into a test's settings resolution.
    for name in list(os.environ):
        if name.startswith("ENOS_"):
            monkeypatch.delenv(name)
