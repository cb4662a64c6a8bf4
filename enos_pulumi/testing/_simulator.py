"""The local EnOS simulator, seeded for testing programs: its app, organization and pipelines.

The seed is ``enos-simulator``'s default (``enos_pulumi/simulator/demo_seed.yaml``): app
``demo-access-key``/``demo-secret-key`` for organization ``o-demo``, a PAUSED pipeline
``pl-demo-paused`` and a RUNNING ``pl-demo-running``, each with state for stage
``FixedTimeWindowAggregator_1``. These keys open nothing but the simulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..simulator import Simulator, demo_seed
from ._stack import ProgramStack

__all__ = [
    "PAUSED_PIPELINE",
    "RUNNING_PIPELINE",
    "SIMULATOR_ACCESS_KEY",
    "SIMULATOR_ORG_ID",
    "SIMULATOR_SECRET_KEY",
    "simulator_config",
    "simulator_stack",
    "start_simulator",
]

SIMULATOR_ACCESS_KEY = "demo-access-key"
SIMULATOR_SECRET_KEY = "demo-secret-key"  # opens only the local simulator
SIMULATOR_ORG_ID = "o-demo"
PAUSED_PIPELINE = "pl-demo-paused"
RUNNING_PIPELINE = "pl-demo-running"


def start_simulator(**options: Any) -> Simulator:
    """A started simulator with the default seed; ``options`` go to :class:`Simulator`. Stop it after."""
    return Simulator(seed=demo_seed(), **options).start()


def simulator_config(simulator: Simulator) -> tuple[dict[str, str], dict[str, str]]:
    """(config, secret config): the ``enos:*`` stack settings that point a stack at ``simulator``."""
    config = {
        "enos:apiGateway": simulator.base_url,
        "enos:accessKey": SIMULATOR_ACCESS_KEY,
        "enos:orgId": SIMULATOR_ORG_ID,
    }
    return config, {"enos:secretKey": SIMULATOR_SECRET_KEY}


def simulator_stack(
    simulator: Simulator,
    program_dir: str | Path,
    *,
    config: Mapping[str, Any] | None = None,
    secret_config: Mapping[str, Any] | None = None,
    **options: Any,
) -> ProgramStack:
    """A :class:`ProgramStack` of ``program_dir`` whose provider talks to ``simulator``; ``config`` and
    ``secret_config`` add to (or override) the connection settings."""
    base, secrets = simulator_config(simulator)
    return ProgramStack(
        program_dir,
        config={**base, **(config or {})},
        secret_config={**secrets, **(secret_config or {})},
        **options,
    )
