"""A local EnOS API simulator: token service, APIM signature checks, stage state, pipelines and faults.

Start it from Python (``Simulator(...).start()``, or as a context manager) or from the command line
(``enos-simulator`` / ``python -m enos_pulumi.simulator``).
"""

from __future__ import annotations

from .server import Simulator
from .store import FAULT_KINDS, OPERATIONS, Fault, SeedError, demo_seed, parse_fault

__all__ = ["FAULT_KINDS", "OPERATIONS", "Fault", "SeedError", "Simulator", "demo_seed", "parse_fault"]
