"""Providers for engine-behaviour tests, importable by the provider host (cwd the repository root)."""

from __future__ import annotations

import os
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, DiffResult
from pulumi.output import Unknown

from enos_pulumi.provider import StageStateResetProvider


class DiffUnknownProvider(StageStateResetProvider):
    """Answers every Diff with ``changes=None`` (DIFF_UNKNOWN on the wire), keeping the replace keys: the
    engine must then compare the old and new inputs itself."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        own = super().diff(_id, olds, news)
        return DiffResult(changes=None, replaces=own.replaces, stables=[], delete_before_replace=False)


class UnknownRefusingProvider(StageStateResetProvider):
    """Fails Check for any input that is not known yet, as providers that validate values do: such a
    program fails at preview, before anything is created."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        unknown = [key for key, value in news.items() if isinstance(value, Unknown)]
        if unknown:
            return CheckResult(news, [CheckFailure(key, "must be known at preview") for key in unknown])
        return super().check(_olds, news)


class FailingDeleteProvider(StageStateResetProvider):
    """Delete fails while the host's environment has ``KIT_FAIL_DELETE=1`` (a provider outage)."""

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        if os.environ.get("KIT_FAIL_DELETE") == "1":
            raise RuntimeError("delete refused by the test provider (KIT_FAIL_DELETE=1)")
        super().delete(_id, _props)
