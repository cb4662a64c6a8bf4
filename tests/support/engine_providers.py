"""Providers for engine-behaviour tests, importable by the provider host (cwd the repository root)."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import DiffResult

from enos_pulumi.provider import StageStateResetProvider


class DiffUnknownProvider(StageStateResetProvider):
    """Answers every Diff with ``changes=None`` (DIFF_UNKNOWN on the wire), keeping the replace keys: the
    engine must then compare the old and new inputs itself."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        own = super().diff(_id, olds, news)
        return DiffResult(changes=None, replaces=own.replaces, stables=[], delete_before_replace=False)
