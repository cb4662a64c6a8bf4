"""A local EnOS API simulator: token service, APIM signature or bearer checks, stage state, pipelines
with realistic transitions, and faults.

Start it from Python (``Simulator(...).start()``, or as a context manager) or from the command line
(``enos-simulator`` / ``python -m enos_pulumi.simulator``).
"""

from __future__ import annotations

from .config import AUTH_SCHEMES
from .faults import FAULT_KINDS, OPERATIONS, Fault, parse_fault
from .seeds import SEED_FORMAT, SeedError, demo_seed
from .server import Simulator

__all__ = [
    "AUTH_SCHEMES",
    "FAULT_KINDS",
    "OPERATIONS",
    "SEED_FORMAT",
    "Fault",
    "SeedError",
    "Simulator",
    "demo_seed",
    "parse_fault",
]
