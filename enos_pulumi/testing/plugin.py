"""pytest fixtures for testing Pulumi programs that declare ``StageStateReset`` (loaded automatically
when enos-pulumi and pytest are installed: entry point ``pytest11``).

``enos_simulator``: a started local EnOS simulator with the default seed (see
:func:`enos_pulumi.testing.start_simulator`), stopped after the test.
``enos_stack``: ``enos_stack(program_dir, config=..., secret_config=..., stack="test")`` returns a
:class:`enos_pulumi.testing.ProgramStack` of that program pointed at ``enos_simulator``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..simulator import Simulator
    from ._stack import ProgramStack


@pytest.fixture
def enos_simulator() -> Iterator[Simulator]:
    """A started local EnOS simulator with the default seed (app demo-access-key, org o-demo, pipelines
    pl-demo-paused and pl-demo-running); stopped after the test."""
    from ._simulator import start_simulator

    simulator = start_simulator()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def enos_stack(enos_simulator: Simulator) -> Callable[..., ProgramStack]:
    """``enos_stack(program_dir, config=..., secret_config=..., stack="test")``: a ProgramStack of that
    Pulumi program whose provider talks to ``enos_simulator``."""
    from ._simulator import simulator_stack

    def make(program_dir: str | Path, **options: Any) -> ProgramStack:
        options.setdefault("stack", "test")
        return simulator_stack(enos_simulator, program_dir, **options)

    return make
