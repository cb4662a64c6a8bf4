"""The stack's state as the engine keeps it between and during commands: resources, pending operations
(a Create or Update cut short, a replaced resource not deleted yet), and the commands that only read or
delete what is stored: ``pulumi refresh`` and ``pulumi destroy``.

Read in Pulumi's engine: ``pkg/resource/deploy/deployment_executor.go`` (``printPendingOperationsWarning``:
the warning an update prints for pending operations; only pending creates are kept afterwards, as the
engine's lifecycle tests assert), ``step.go`` (``DeleteStep.Apply``: a protected resource is not deleted,
``retainOnDelete`` skips the provider's Delete, the Delete gets the *stored* delete timeout;
``CreateStep.Apply``: a replaced resource is marked for deletion once its replacement exists) and
``step_generator.go`` (``GenerateDeletes``: resources marked for deletion are deleted by the next update).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ._host import ProviderHost
from ._steps import TYPE_TOKEN, Interrupted, ResourceProtectedError, ResourceState, Step, make_step
from ._wire import annotate_secrets, reveal

__all__ = ["Interruption", "StateKeeper"]

T = TypeVar("T")
PendingDelete = tuple[str, ResourceState]


@dataclasses.dataclass(frozen=True)
class Interruption:
    """How the CLI dies while a call is in flight: once ``event`` is set, ``signal`` goes to the host alone
    (None: SIGKILL to its process group, as the CLI ends its plugins)."""

    event: threading.Event
    signal: int | None = None


class StateKeeper:
    """Per-resource state, pending operations and the host calls that need no planning."""

    def __init__(
        self,
        host: ProviderHost,
        *,
        stack: str = "dev",
        project: str = "project",
        type_token: str = TYPE_TOKEN,
        state: dict[str, ResourceState] | None = None,
        pending_creates: dict[str, dict[str, Any]] | None = None,
        pending_updates: dict[str, dict[str, Any]] | None = None,
        pending_deletes: list[PendingDelete] | None = None,
        types: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.stack = stack
        self.project = project
        self.type_token = type_token
        self.state: dict[str, ResourceState] = {} if state is None else state
        #: Resources whose Create never answered: name -> the inputs it was sent (kept until a refresh
        #: with ``--clear-pending-creates``).
        self.pending_creates: dict[str, dict[str, Any]] = {} if pending_creates is None else pending_creates
        #: Resources whose Update never answered: name -> the inputs it was sent (warned about once).
        self.pending_updates: dict[str, dict[str, Any]] = {} if pending_updates is None else pending_updates
        #: Replaced resources whose Delete has not succeeded yet, deleted by the next update or destroy.
        self.pending_deletes: list[PendingDelete] = [] if pending_deletes is None else pending_deletes
        #: The type token of each resource whose type is not ``type_token`` (a program's other dynamic types).
        self.types: dict[str, str] = {} if types is None else types
        self.warnings: list[str] = []
        self._lock = threading.Lock()

    def urn(self, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{self.types.get(name, self.type_token)}::{name}"

    def _send(self, props: Mapping[str, Any]) -> Any:
        """What crosses to the host: secrets stripped unless it accepts them."""
        return props if self.host.accept_secrets else reveal(props)

    def _mark(self, outs: dict[str, Any], ins: Mapping[str, Any]) -> dict[str, Any]:
        return outs if self.host.accept_secrets else annotate_secrets(outs, ins)

    # -- pending operations ----------------------------------------------------------------------------

    def pending_warnings(self) -> list[str]:
        """The warning an update prints while pending operations are recorded; pending updates are then
        forgotten (the engine keeps only pending creates in the next snapshot)."""
        with self._lock:
            pending = [(n, "creating") for n in sorted(self.pending_creates)]
            pending += [(n, "updating") for n in sorted(self.pending_updates)]
            self.pending_updates.clear()
        if not pending:
            return []
        lines = "".join(f"  * {self.urn(name)}, interrupted while {what}\n" for name, what in pending)
        warning = (
            f"Attempting to deploy or update resources with {len(pending)} pending operations from previous "
            f"deployment.\n{lines}These resources are in an unknown state because the Pulumi CLI was "
            "interrupted while waiting for changes to these resources to complete. You should confirm "
            "whether or not the operations listed completed successfully by checking the state of the "
            "appropriate provider. For example, if you are using AWS, you can confirm using the AWS "
            "Console.\n\nOnce you have confirmed the status of the interrupted operations, you can repair "
            "your stack using `pulumi refresh` which will refresh the state from the provider you are using "
            "and clear the pending operations if there are any.\n\nNote that `pulumi refresh` will need to "
            "be run interactively to clear pending CREATE operations."
        )
        self.warnings.append(warning)
        return [warning]

    def clear_pending_creates(self) -> list[str]:
        """What ``pulumi refresh --clear-pending-creates`` does to pending creates: forget them."""
        with self._lock:
            cleared = sorted(self.pending_creates)
            self.pending_creates.clear()
        return cleared

    # -- refresh and delete ----------------------------------------------------------------------------

    def refresh(self, name: str) -> Step:
        """``pulumi refresh`` for one resource: Read, then the refresh diff (olds = refreshed outputs,
        news = stored inputs). An empty id from Read means the resource is gone."""
        old = self.state[name]
        urn = self.urn(name)
        with self._lock:
            self.pending_updates.pop(name, None)  # refreshed: its real state is known again
        id_, outs, new_inputs = self.host.read(urn, old.id, self._send(old.outputs), self._send(old.inputs))
        if not id_:
            self._forget(name)
            return make_step(name, "delete", None)
        outs = self._mark(outs, old.outputs)
        if new_inputs is not None:
            new_inputs = self._mark(new_inputs, old.inputs)
        inputs = old.inputs if new_inputs is None else new_inputs
        reply = self.host.diff(urn, id_, self._send(outs), self._send(old.inputs), self._send(inputs))
        changes = reply.changes
        if changes == 0:  # DIFF_UNKNOWN: the engine compares the inputs itself
            changes = 1 if inputs == old.inputs else 2
        self._store(name, dataclasses.replace(old, id=id_, inputs=inputs, outputs=outs))
        op = "same" if changes == 1 else "update"
        return make_step(name, op, outs, replaces=list(reply.replaces), changed=list(reply.diffs))

    def destroy(self, name: str) -> Step:
        """``pulumi destroy`` (or a resource the program dropped) for one resource: refused if it is
        protected, else Delete with the stored outputs (skipped for ``retainOnDelete``), then forgotten."""
        old = self.state[name]
        if old.protect:
            raise ResourceProtectedError(self.urn(name), deleting=True)
        self.delete_state(name, old)
        self._forget(name)
        return make_step(name, "delete", None)

    def delete_state(self, name: str, old: ResourceState, timeout: float | None = None) -> None:
        """The Delete call for a stored resource, with its stored delete timeout; none for a resource
        marked ``retainOnDelete`` (the engine keeps it in the provider and forgets it)."""
        if old.retain_on_delete:
            return
        seconds = old.timeouts[2] if timeout is None else timeout
        self.host.delete(self.urn(name), old.id, self._send(old.outputs), self._send(old.inputs), seconds)

    def delete_pending(self) -> None:
        """Delete the replaced resources still pending deletion; each leaves the list once deleted."""
        for name, old in list(self.pending_deletes):
            self.delete_state(name, old)
            with self._lock:
                self.pending_deletes.remove((name, old))

    # -- helpers ---------------------------------------------------------------------------------------

    def _interruptible(
        self,
        call: Callable[[], T],
        interrupt: Interruption | None,
        what: str,
        pending: tuple[dict[str, dict[str, Any]], str, dict[str, Any]] | None = None,
    ) -> T:
        """Run ``call``; if ``interrupt`` is set meanwhile, kill the host as a dying CLI does and record
        the operation in flight as pending (``pending``: the record, the name, the inputs sent)."""
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
            if interrupt.event.is_set():
                if interrupt.signal is None:
                    self.host.kill()
                else:
                    self.host.kill(interrupt.signal, group=False)
                done.wait(10)
                if pending is not None:
                    record, name, inputs = pending
                    with self._lock:
                        record[name] = inputs
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
