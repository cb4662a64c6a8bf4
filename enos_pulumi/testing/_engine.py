"""The Pulumi engine's part of ``preview``/``up``/``refresh``/``destroy`` for one resource at a time.

Read in Pulumi's Go engine (``pkg/resource/deploy/step_generator.go``, ``step.go`` and
``pkg/resource/plugin/provider_plugin.go``) and reproduced here over a real :class:`ProviderHost`:

- secrets are stripped before every call to a host that declared ``acceptSecrets=False``, and an answer's
  key is marked secret iff the input of the same name held one (``annotateSecrets``);
- ``Check(olds=stored inputs, news)`` with ``ignoreChanges`` swapped in first; a new resource or a forced
  ``--replace`` is checked against no olds with the program's raw inputs;
- ``Diff(olds=stored OUTPUTS, news=checked inputs)``; DIFF_UNKNOWN makes the engine compare old and new
  inputs itself; ``replaceOnChanges`` only turns *changed keys* into replace keys (the dynamic host reports
  none); ``--replace`` skips Diff;
- a replacement re-runs Check on the raw inputs (``ignoreChanges`` not applied), creates the new resource,
  then deletes the old one (unless delete-before-replace);
- DIFF_NONE stores the new inputs and keeps the old outputs; a failed Create stores nothing, a failed
  Update keeps the old state;
- refresh reads, keeps the stored inputs when the provider returns none, then diffs the refreshed
  outputs against the stored inputs;
- a Create cut short by a hard kill leaves a pending create: later updates warn about it (and keep it)
  until a refresh clears it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ._host import ProviderHost
from ._wire import annotate_secrets, contains_secrets, contains_unknowns, reveal

__all__ = [
    "DIFF_NONE",
    "DIFF_SOME",
    "DIFF_UNKNOWN",
    "TYPE_TOKEN",
    "CheckFailedError",
    "Engine",
    "Interrupted",
    "ResourceState",
    "Step",
    "process_ignore_changes",
]

DIFF_UNKNOWN, DIFF_NONE, DIFF_SOME = 0, 1, 2
#: The type token ``StageStateReset`` registers under (``pulumi.dynamic.Resource`` module "enos").
TYPE_TOKEN = "pulumi-python:dynamic/enos:StageStateReset"

T = TypeVar("T")


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


@dataclass(frozen=True)
class ResourceState:
    """One resource in the stack's state, secrets kept in wire form (see :func:`secret`)."""

    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class Step:
    """What an operation did (or, in preview, would do) to one resource.

    ``op`` is ``create``, ``update``, ``replace``, ``same``, ``delete`` or, for a refresh, ``same`` or
    ``update`` (the refresh diff). ``outputs`` are plain values; ``secret_outputs`` names the ones Pulumi
    stores encrypted.
    """

    name: str
    op: str
    replaces: list[str] = field(default_factory=list)
    outputs: dict[str, Any] | None = None
    secret_outputs: frozenset[str] = frozenset()
    warnings: list[str] = field(default_factory=list)
    #: The replaced resource, when ``Engine.up(defer_delete=True)`` left its Delete to the caller.
    replaced: ResourceState | None = None


def _step(name: str, op: str, outputs: Mapping[str, Any] | None, **kwargs: Any) -> Step:
    if outputs is None:
        return Step(name, op, **kwargs)
    secrets = frozenset(key for key, value in outputs.items() if contains_secrets(value))
    return Step(name, op, outputs=reveal(outputs), secret_outputs=secrets, **kwargs)


def process_ignore_changes(
    inputs: Mapping[str, Any], old_inputs: Mapping[str, Any], ignore_changes: Iterable[str]
) -> dict[str, Any]:
    """The stored value of each ignored input replaces the program's (or the input goes, if none was)."""
    result = dict(inputs)
    for path in ignore_changes:
        if any(mark in path for mark in ".[*"):
            raise NotImplementedError(
                f"ignore_changes path {path!r}: only top-level input names are modelled"
            )
        if path in old_inputs:
            result[path] = old_inputs[path]
        else:
            result.pop(path, None)
    return result


class Engine:
    """Per-resource state and the engine's calls, over one :class:`ProviderHost`.

    ``state`` and ``pending_creates`` may be shared with a later engine over a new host (the CLI starts a
    new host for every command). Safe to drive from several threads for different resources.
    """

    def __init__(
        self,
        host: ProviderHost,
        *,
        stack: str = "dev",
        project: str = "project",
        type_token: str = TYPE_TOKEN,
        state: dict[str, ResourceState] | None = None,
        pending_creates: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.host = host
        self.stack = stack
        self.project = project
        self.type_token = type_token
        self.state: dict[str, ResourceState] = {} if state is None else state
        #: Resources whose Create never answered: name -> the inputs it was sent.
        self.pending_creates: dict[str, dict[str, Any]] = {} if pending_creates is None else pending_creates
        self.warnings: list[str] = []
        self._lock = threading.Lock()

    def urn(self, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{self.type_token}::{name}"

    def _send(self, props: Mapping[str, Any]) -> Any:
        """What crosses to the host: secrets stripped unless it accepts them."""
        return props if self.host.accept_secrets else reveal(props)

    # -- check and diff --------------------------------------------------------------------------------

    def _check(self, name: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        checked, failures = self.host.check(self.urn(name), self._send(olds), self._send(news))
        if failures:
            raise CheckFailedError(self.type_token, name, failures)
        return annotate_secrets(checked, news) if not self.host.accept_secrets else checked

    def _checked_inputs(
        self,
        name: str,
        inputs: Mapping[str, Any],
        old: ResourceState | None,
        ignore: Iterable[str],
        replace: bool,
    ) -> dict[str, Any]:
        if old is None or replace:
            return self._check(name, {}, inputs)
        return self._check(name, old.inputs, process_ignore_changes(inputs, old.inputs, ignore))

    def _diff(
        self,
        name: str,
        old: ResourceState,
        checked: Mapping[str, Any],
        ignore: Iterable[str],
        replace_on_changes: Iterable[str],
    ) -> tuple[int, list[str], bool]:
        """(changes, replace keys, delete before replace) as the engine settles them."""
        reply = self.host.diff(
            self.urn(name),
            old.id,
            self._send(old.outputs),
            self._send(checked),
            self._send(old.inputs),
            list(ignore),
        )
        changes, changed_keys = reply.changes, list(reply.diffs)
        if changes == DIFF_UNKNOWN:
            # The engine diffs the inputs itself (ignored keys swapped back first).
            news = process_ignore_changes(checked, old.inputs, ignore)
            changed_keys = sorted(
                key for key in set(old.inputs) | set(news) if old.inputs.get(key) != news.get(key)
            )
            changes = DIFF_SOME if changed_keys else DIFF_NONE
        replaces = list(reply.replaces)
        if changes == DIFF_SOME:
            rules = list(replace_on_changes)
            replaces += [
                key for key in changed_keys if key not in replaces and ("*" in rules or key in rules)
            ]
        return changes, replaces, reply.delete_before_replace

    # -- operations ------------------------------------------------------------------------------------

    def preview(
        self,
        name: str,
        inputs: Mapping[str, Any],
        *,
        ignore_changes: Iterable[str] = (),
        replace_on_changes: Iterable[str] = (),
        replace: bool = False,
    ) -> Step:
        """``pulumi preview`` for one resource: Check and Diff only (the host does not preview Create or
        Update); inputs may hold unknowns. Nothing is stored."""
        old = self.state.get(name)
        checked = self._checked_inputs(name, inputs, old, ignore_changes, replace)
        if old is None:
            return _step(name, "create", None)
        if replace:
            return _step(name, "replace", None, replaces=["id"])
        changes, replaces, _ = self._diff(name, old, checked, ignore_changes, replace_on_changes)
        if changes == DIFF_NONE:
            return _step(name, "same", old.outputs)
        if replaces:
            self._check(name, {}, inputs)  # the engine re-checks the raw inputs of a replacement
            return _step(name, "replace", None, replaces=replaces)
        return _step(name, "update", None)

    def up(
        self,
        name: str,
        inputs: Mapping[str, Any],
        *,
        ignore_changes: Iterable[str] = (),
        replace_on_changes: Iterable[str] = (),
        replace: bool = False,
        delete_before_replace: bool | None = None,
        timeout: float = 0,
        interrupt: threading.Event | None = None,
        interrupt_signal: int | None = None,
        defer_delete: bool = False,
    ) -> Step:
        """One resource's part of ``pulumi up`` (``replace=True``: ``pulumi up --replace <urn>``).

        ``timeout`` is what ``customTimeouts`` sends (seconds; the host ignores it). If ``interrupt`` is
        set while Create or Update is in flight, the host is killed and :class:`Interrupted` raised, as
        when the CLI dies: SIGKILL to its process group, or ``interrupt_signal`` to the host alone (e.g.
        ``signal.SIGTERM``, as a CI runner or Kubernetes sends it). ``defer_delete`` leaves a replaced
        resource's Delete to the caller (the engine deletes replaced resources after all creates and
        updates): it is returned in the step's ``replaced`` attribute.
        """
        if contains_unknowns(inputs):
            raise ValueError(f"resource '{name}': unknown input values occur only in a preview")
        warnings = self.pending_warnings()
        urn = self.urn(name)
        old = self.state.get(name)
        checked = self._checked_inputs(name, inputs, old, ignore_changes, replace)
        if old is None:
            id_, outs = self._create(name, checked, timeout, interrupt, interrupt_signal)
            self._store(name, ResourceState(id_, checked, outs))
            return _step(name, "create", outs, warnings=warnings)
        if replace:
            changes, replaces, dbr = DIFF_SOME, ["id"], False
        else:
            changes, replaces, dbr = self._diff(name, old, checked, ignore_changes, replace_on_changes)
        if changes == DIFF_NONE:
            self._store(name, ResourceState(old.id, checked, old.outputs))
            return _step(name, "same", old.outputs, warnings=warnings)
        if replaces:
            if not replace:
                checked = self._check(name, {}, inputs)
            if delete_before_replace if delete_before_replace is not None else dbr:
                self.delete_state(name, old, timeout)
                self._forget(name)
            id_, outs = self._create(name, checked, timeout, interrupt, interrupt_signal)
            self._store(name, ResourceState(id_, checked, outs))
            step = _step(name, "replace", outs, replaces=replaces, warnings=warnings)
            if not (delete_before_replace if delete_before_replace is not None else dbr):
                if defer_delete:
                    step.replaced = old
                else:
                    self.delete_state(name, old, timeout)
            return step
        outs = self._interruptible(
            lambda: self.host.update(
                urn, old.id, self._send(old.outputs), self._send(checked), self._send(old.inputs), timeout
            ),
            interrupt,
            f"updating {urn}",
            signal=interrupt_signal,
        )
        outs = annotate_secrets(outs, checked) if not self.host.accept_secrets else outs
        self._store(name, ResourceState(old.id, checked, outs))
        return _step(name, "update", outs, warnings=warnings)

    def refresh(self, name: str) -> Step:
        """``pulumi refresh`` for one resource: Read, then the refresh diff (olds = refreshed outputs,
        news = stored inputs). An empty id from Read means the resource is gone."""
        old = self.state[name]
        urn = self.urn(name)
        id_, outs, new_inputs = self.host.read(urn, old.id, self._send(old.outputs), self._send(old.inputs))
        if not id_:
            self._forget(name)
            return _step(name, "delete", None)
        if not self.host.accept_secrets:
            outs = annotate_secrets(outs, old.outputs)
            new_inputs = None if new_inputs is None else annotate_secrets(new_inputs, old.inputs)
        inputs = old.inputs if new_inputs is None else new_inputs
        refreshed = ResourceState(id_, inputs, outs)
        reply = self.host.diff(urn, id_, self._send(outs), self._send(old.inputs), self._send(inputs))
        changes = reply.changes
        if changes == DIFF_UNKNOWN:
            changes = DIFF_NONE if inputs == old.inputs else DIFF_SOME
        self._store(name, refreshed)
        return _step(name, "same" if changes == DIFF_NONE else "update", outs, replaces=list(reply.replaces))

    def clear_pending_creates(self) -> list[str]:
        """What ``pulumi refresh --clear-pending-creates`` does to pending creates: forget them."""
        with self._lock:
            cleared = sorted(self.pending_creates)
            self.pending_creates.clear()
        return cleared

    def destroy(self, name: str, timeout: float = 0) -> Step:
        """``pulumi destroy`` for one resource: Delete with the stored outputs, then forget it."""
        old = self.state[name]
        self.delete_state(name, old, timeout)
        self._forget(name)
        return _step(name, "delete", None)

    def delete_state(self, name: str, old: ResourceState, timeout: float = 0) -> None:
        """The Delete call for a stored resource (a replaced one, or on destroy)."""
        self.host.delete(self.urn(name), old.id, self._send(old.outputs), self._send(old.inputs), timeout)

    def pending_warnings(self) -> list[str]:
        """The warning every update prints while pending creates are recorded."""
        with self._lock:
            pending = sorted(self.pending_creates)
        if not pending:
            return []
        lines = "".join(f"\n  * {self.urn(name)}, interrupted while creating" for name in pending)
        warning = (
            f"Attempting to deploy or update resources with {len(pending)} pending operations from previous "
            f"deployment.{lines}\nThese resources are in an unknown state because the Pulumi CLI was "
            "interrupted while waiting for changes to these resources to complete. Run `pulumi refresh "
            "--clear-pending-creates` once you have checked them."
        )
        self.warnings.append(warning)
        return [warning]

    # -- helpers ---------------------------------------------------------------------------------------

    def _create(
        self,
        name: str,
        checked: dict[str, Any],
        timeout: float,
        interrupt: threading.Event | None,
        signal: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        urn = self.urn(name)

        def create() -> tuple[str, dict[str, Any]]:
            return self.host.create(urn, self._send(checked), timeout)

        id_, outs = self._interruptible(
            create, interrupt, f"creating {urn}", pending=(name, checked), signal=signal
        )
        return id_, annotate_secrets(outs, checked) if not self.host.accept_secrets else outs

    def _interruptible(
        self,
        call: Callable[[], T],
        interrupt: threading.Event | None,
        what: str,
        pending: tuple[str, dict[str, Any]] | None = None,
        signal: int | None = None,
    ) -> T:
        if interrupt is None:
            return call()
        result: list[T] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                result.append(call())
            except BaseException as exc:
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, daemon=True).start()
        while not done.wait(0.01):
            if interrupt.is_set():
                if signal is None:
                    self.host.kill()
                else:
                    self.host.kill(signal, group=False)
                done.wait(10)
                if pending is not None:
                    with self._lock:
                        self.pending_creates[pending[0]] = pending[1]
                raise Interrupted(f"the Pulumi CLI was killed while {what}")
        if failure:
            raise failure[0]
        return result[0]

    def _store(self, name: str, state: ResourceState) -> None:
        with self._lock:
            self.state[name] = state

    def _forget(self, name: str) -> None:
        with self._lock:
            self.state.pop(name, None)
