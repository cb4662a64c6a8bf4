"""What the program asks of one resource (:class:`Goal`) and the step the engine settles on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._paths import parse_path
from ._steps import Timeouts

__all__ = ["REPLACE_WITH_KEY", "TRIGGER_KEY", "Goal", "Plan", "goal_of", "rule_covers"]

#: The replace key the kit reports for a changed ``replacement_trigger`` / a ``replace_with`` resource.
TRIGGER_KEY, REPLACE_WITH_KEY = "replacementTrigger", "replaceWith"


@dataclass(frozen=True)
class Goal:
    """What the program registered for one resource: its inputs and the options the engine acts on.
    ``replace`` is ``pulumi up --replace`` for it; ``replaced_with`` names the ``replace_with`` resources
    that this deployment replaces; ``replacement_trigger`` None means the option is not set."""

    inputs: Mapping[str, Any]
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    replace: bool = False
    delete_before_replace: bool | None = None
    protect: bool = False
    retain_on_delete: bool = False
    timeouts: Timeouts = (0.0, 0.0, 0.0)
    replacement_trigger: Any = None
    replaced_with: tuple[str, ...] = ()


@dataclass
class Plan:
    op: str
    checked: dict[str, Any]
    replaces: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    delete_before_replace: bool = False


def goal_of(inputs: Mapping[str, Any], options: dict[str, Any]) -> Goal:
    for key in ("ignore_changes", "replace_on_changes", "replaced_with"):
        if key in options:
            options[key] = tuple(options[key])
    return Goal(inputs, **options)


def rule_covers(rule: str, key: str) -> bool:
    """A ``replaceOnChanges`` path covers a changed key: equal, ``*``, or a prefix of its path."""
    rule_path, key_path = parse_path(rule), parse_path(key)
    if rule_path is None or key_path is None:
        return False
    if len(rule_path) > len(key_path):
        return False
    return all(r in ("*", k) for r, k in zip(rule_path, key_path, strict=False))
