"""What the engine keeps per resource (:class:`ResourceState`), what an operation reports per resource
(:class:`Step`) and the errors the engine raises, with the texts Pulumi's engine prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._wire import contains_secrets, reveal

__all__ = [
    "DIFF_NONE",
    "DIFF_SOME",
    "DIFF_UNKNOWN",
    "TYPE_TOKEN",
    "CheckFailedError",
    "DeploymentError",
    "Interrupted",
    "ResourceProtectedError",
    "ResourceState",
    "Step",
    "Timeouts",
    "changed_keys",
    "make_step",
]

DIFF_UNKNOWN, DIFF_NONE, DIFF_SOME = 0, 1, 2
#: The type token ``StageStateReset`` registers under (``pulumi.dynamic.Resource`` module "enos").
TYPE_TOKEN = "pulumi-python:dynamic/enos:StageStateReset"
#: ``customTimeouts`` in seconds: (create, update, delete); 0 means none was set.
Timeouts = tuple[float, float, float]


class CheckFailedError(ValueError):
    """Check returned failures: the engine reports each and stops before any other call."""

    def __init__(self, type_token: str, name: str, failures: list[tuple[str, str]]) -> None:
        problems = "; ".join(
            f"property {prop} has a problem: {reason}" if prop else reason for prop, reason in failures
        )
        super().__init__(f"{type_token} resource '{name}': {problems}")
        self.failures = failures


class Interrupted(Exception):
    """The CLI was killed while a Create or Update was in flight (a second Ctrl-C, a killed CI job)."""


class ResourceProtectedError(Exception):
    """The engine refused to replace or delete a resource marked ``protect`` (nothing was called)."""

    def __init__(self, urn: str, *, deleting: bool) -> None:
        if deleting:  # step.go, deleteProtectedError
            text = (
                f'resource "{urn}" cannot be deleted\nbecause it is protected. To unprotect the resource, '
                "either remove the `protect` flag from the resource in your Pulumi program and run "
                f"`pulumi up`, or use the command:\n`pulumi state unprotect '{urn}'`"
            )
        else:  # step_generator.go, continueStepsFromDiff
            text = (
                f'unable to replace resource "{urn}"\nas it is currently marked for protection. To unprotect '
                "the resource, remove the `protect` flag from the resource in your Pulumi program and run "
                "`pulumi up`"
            )
        super().__init__(text)
        self.urn = urn
        self.deleting = deleting


class DeploymentError(Exception):
    """The engine's own refusal of a registration (not a provider's answer), e.g. a replacement trigger
    that is still unknown outside a preview."""


@dataclass(frozen=True)
class ResourceState:
    """One resource in the stack's state, secrets kept in wire form (see :func:`secret`), with the
    options the engine keeps in state and acts on later (a Delete uses the stored ones)."""

    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    #: ``customTimeouts`` in seconds (create, update, delete).
    timeouts: Timeouts = (0.0, 0.0, 0.0)
    #: The ``replacement_trigger`` option's value (wire form), None when the resource has none.
    replacement_trigger: Any = None
    #: Deleted by a delete-before-replace whose Create has not succeeded yet: the next up replaces it.
    pending_replacement: bool = False


@dataclass
class Step:
    """What an operation did (or, in preview, would do) to one resource.

    ``op`` is ``create``, ``update``, ``replace``, ``same``, ``delete`` or, for a refresh, ``same`` or
    ``update`` (the refresh diff). ``outputs`` are plain values (in a preview of a create, update or
    replace: the checked inputs, as the engine hands a provider without preview support back); and
    ``secret_outputs`` names the ones Pulumi stores encrypted. ``changed`` names the inputs that differ
    from the stored ones (what ``pulumi preview --diff`` shows; every input for a create), ``replaces``
    the keys that force a replacement.
    """

    name: str
    op: str
    replaces: list[str] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    secret_outputs: frozenset[str] = frozenset()
    warnings: list[str] = field(default_factory=list)
    #: The replaced resource, when ``Engine.up(defer_delete=True)`` left its Delete to the caller.
    replaced: ResourceState | None = None
    changed: list[str] = field(default_factory=list)


def make_step(name: str, op: str, outputs: Mapping[str, Any] | None, **kwargs: Any) -> Step:
    if outputs is None:
        return Step(name, op, **kwargs)
    secrets = frozenset(key for key, value in outputs.items() if contains_secrets(value))
    return Step(name, op, outputs=reveal(outputs), secret_outputs=secrets, **kwargs)


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Top-level keys whose values differ, as the engine's own input diff finds them."""
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
