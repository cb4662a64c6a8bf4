"""One ``pulumi preview`` or ``pulumi up`` of a program: each registration the program makes becomes a step.

Read in Pulumi's engine: ``pkg/resource/deploy/step_executor.go`` (``cancelDueToError``: after a failed
step the deployment's context is cancelled, so no new step starts, unless ``--continue-on-error``; a
protected resource's refused Delete never stops the others) and ``deployment_executor.go``
(``handleSingleEvent``: with ``--continue-on-error`` the steps of resources that depend on a failed one
are skipped; ``performPostSteps``: deletes run only once every registration is handled).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ._engine import Engine
from ._program import Registration, StepFailed
from ._steps import Interrupted, ResourceProtectedError, Step
from ._wire import reveal, to_wire

__all__ = ["DYNAMIC_PREFIX", "Deployment", "NotStartedError", "UpdateResult"]

DYNAMIC_PREFIX = "pulumi-python:dynamic/"
OtherResources = Callable[[Registration, bool], tuple[str, Mapping[str, Any]]]


class OtherResourcesState(Protocol):
    """What a deployment keeps of other providers' resources (a :class:`ProgramStack` does)."""

    others: dict[str, tuple[str, dict[str, Any]]]
    other_resources: OtherResources


class NotStartedError(Exception):
    """A registration the engine never turned into a step: an earlier step of the deployment failed."""


@dataclass
class UpdateResult:
    """What one command did: a :class:`Step` per resource, the stack's exports (plain values; the
    secret ones named in ``secret_outputs``), the provider host's output and the engine's warnings.
    For ``up``, ``preview`` is the preview that ran first (None with ``skip_preview``)."""

    command: str
    steps: dict[str, Step] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: frozenset[str] = frozenset()
    host_output: str = ""
    warnings: list[str] = field(default_factory=list)
    preview: UpdateResult | None = None

    @property
    def ops(self) -> dict[str, str]:
        """Resource name -> ``create``/``update``/``replace``/``same``/``delete``."""
        return {name: step.op for name, step in self.steps.items()}


class Deployment:
    """The registrations of one program run, handed to the engine in the order the program makes them."""

    def __init__(
        self,
        stack: OtherResourcesState,
        engine: Engine,
        result: UpdateResult,
        *,
        replace: set[str],
        interrupt: threading.Event | None = None,
        continue_on_error: bool = False,
    ) -> None:
        self.stack = stack
        self.engine = engine
        self.result = result
        self.preview = result.command == "preview"
        self.replace = replace
        self.interrupt = interrupt
        self.continue_on_error = continue_on_error
        self.registered: set[str] = set()
        #: The first failure; later ones are the engine's cancellation of what had not started.
        self.failure: BaseException | None = None
        self._failed_urns: set[str] = set()
        self._replaced_urns: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, registration: Registration) -> tuple[str, Mapping[str, Any]]:
        with self._lock:
            self.registered.add(registration.name)
            if self.failure is not None and not self.continue_on_error:
                raise NotStartedError(f"{registration.urn}: not started, an earlier step failed")
            if registration.dependencies & self._failed_urns:
                self._failed_urns.add(registration.urn)
                skipped = NotStartedError(f"{registration.urn}: skipped, a resource it depends on failed")
                raise StepFailed(skipped, skipped=True)
        try:
            if not registration.type.startswith(DYNAMIC_PREFIX):
                return self._other(registration)
            return self._dynamic(registration)
        except Exception as exc:
            with self._lock:
                self.failure = self.failure or exc
                self._failed_urns.add(registration.urn)
            if self.continue_on_error and not isinstance(exc, Interrupted):
                raise StepFailed(exc, skipped=False) from None
            raise

    def _dynamic(self, registration: Registration) -> tuple[str, Mapping[str, Any]]:
        name, engine = registration.name, self.engine
        with self._lock:
            if registration.type != engine.type_token:
                engine.types[name] = registration.type
            replaced_with = tuple(urn for urn in registration.replace_with if urn in self._replaced_urns)
        options: dict[str, Any] = {
            "ignore_changes": registration.ignore_changes,
            "replace_on_changes": registration.replace_on_changes,
            "replace": name in self.replace or engine.urn(name) in self.replace,
            "delete_before_replace": registration.delete_before_replace,
            "protect": registration.protect,
            "retain_on_delete": registration.retain_on_delete,
            "timeouts": registration.timeouts,
            "replacement_trigger": registration.replacement_trigger,
            "replaced_with": replaced_with,
        }
        if self.preview:
            step, shown = engine.preview_outputs(name, registration.inputs, **options)
            old = engine.state.get(name)
            id_ = old.id if old is not None and step.op in ("same", "update") else ""
            answer: tuple[str, Mapping[str, Any]] = (id_, to_wire(shown))
        else:
            step = engine.up(
                name, registration.inputs, interrupt=self.interrupt, defer_delete=True, **options
            )
            stored = engine.state[name]
            answer = (stored.id, stored.outputs)
        with self._lock:
            self.result.steps[name] = step
            if step.op == "replace":
                self._replaced_urns.add(registration.urn)
        return answer

    def _other(self, registration: Registration) -> tuple[str, Mapping[str, Any]]:
        """Another provider's resource: recorded with what ``other_resources`` answers (no provider runs)."""
        others, name = self.stack.others, registration.name
        old = others.get(name)
        if old is not None and reveal(old[1]) == reveal(registration.inputs):
            self.result.steps[name] = Step(name, "same")
            return old
        id_, outputs = self.stack.other_resources(registration, self.preview)
        self.result.steps[name] = Step(name, "create" if old is None else "update")
        if self.preview:
            return (old[0] if old else id_), to_wire(outputs)
        with self._lock:
            others[name] = (id_, dict(outputs))
        return id_, outputs

    def delete_unregistered(self) -> None:
        """After the program: delete what replacements left behind, then what the program no longer
        registers. A protected resource's refusal stops no other delete; the first is raised after."""
        self.engine.delete_pending()
        refused: list[ResourceProtectedError] = []
        for name in [n for n in self.engine.state if n not in self.registered]:
            try:
                self.result.steps[name] = self.engine.destroy(name)
            except ResourceProtectedError as exc:
                refused.append(exc)
        for name in [n for n in self.stack.others if n not in self.registered]:
            del self.stack.others[name]
            self.result.steps[name] = Step(name, "delete")
        if refused:
            raise refused[0]
