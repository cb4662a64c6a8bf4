"""Deprecated alias: the host driver is now the public :mod:`enos_pulumi.testing`.

Kept so that code written against the former internal module still imports; use
``enos_pulumi.testing`` (``MiniEngine`` is :class:`enos_pulumi.testing.Engine`).
"""

from __future__ import annotations

from .testing import (
    DIFF_NONE,
    DIFF_SOME,
    DIFF_UNKNOWN,
    TYPE_TOKEN,
    UNKNOWN,
    HostError,
    ProviderHost,
    capture_program,
    secret,
    serialize_provider,
)
from .testing import Engine as MiniEngine
from .testing import Step as Plan

__all__ = [
    "DIFF_NONE",
    "DIFF_SOME",
    "DIFF_UNKNOWN",
    "TYPE_TOKEN",
    "UNKNOWN",
    "HostError",
    "MiniEngine",
    "Plan",
    "ProviderHost",
    "capture_program",
    "secret",
    "serialize_provider",
]
