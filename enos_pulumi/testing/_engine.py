"""The Pulumi engine's part of ``preview`` and ``up`` for one resource at a time, over a real provider host.

Read in Pulumi's Go engine and reproduced here (file and function of each rule):

- ``pkg/resource/plugin/provider_plugin.go``: secrets are stripped before every call to a host that
  declared ``acceptSecrets=False``, and an answer's key is marked secret iff the input of the same name
  held one (``annotateSecrets``); in a preview, Create and Update of a provider without preview support
  answer with the checked inputs (``Create``/``Update`` with ``req.Preview``); no call has a deadline.
- ``pkg/resource/deploy/step_generator.go``, ``generateSteps``: ``Check(olds=stored inputs, news)`` with
  ``ignoreChanges`` swapped in first (``processIgnoreChanges``, nested paths included); a new resource or
  a ``--replace`` target is checked against no olds with the program's raw inputs.
- ``diff``/``diffResource``: ``--replace`` skips Diff; ``Diff(olds=stored OUTPUTS, news=checked
  inputs)``; DIFF_UNKNOWN makes the engine compare old and new inputs itself.
- ``continueStepsFromDiff``: ``replaceOnChanges`` turns *changed keys* into replace keys
  (``applyReplaceOnChanges``); a replacement of a resource protected before and now is refused; a
  replacement re-runs Check on the raw inputs; ``deleteBeforeReplace`` (the option over the provider's
  answer) deletes first, else the old resource is deleted after every create and update; a resource
  deleted by a delete-before-replace whose Create failed is replaced by the next update, without a
  second Delete (``PendingReplacement``).
- ``step.go``: Create gets the create timeout, Update the update timeout of the new goal, Delete the
  delete timeout stored with the old resource; a failed Create stores nothing and a failed Update keeps
  the old state.
- The ``replacement_trigger`` option (Pulumi SDK 3.214+): a trigger whose value (secrets unwrapped)
  differs from the stored one forces a replacement; an unknown trigger is a replacement in preview and an
  error in an update (``pkg/engine/lifecycletest/replacement_trigger_test.go``). ``replace_with``: the
  resource is replaced when one of the named resources is replaced in the same deployment.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from ._goal import REPLACE_WITH_KEY, TRIGGER_KEY, Goal, Plan, goal_of, rule_covers
from ._paths import parse_path, process_ignore_changes
from ._state import Interruption, StateKeeper
from ._steps import (
    DIFF_NONE,
    DIFF_SOME,
    DIFF_UNKNOWN,
    CheckFailedError,
    DeploymentError,
    ResourceProtectedError,
    ResourceState,
    Step,
    changed_keys,
    make_step,
)
from ._wire import contains_unknowns, reveal

__all__ = ["Engine", "Goal"]


class Engine(StateKeeper):
    """Per-resource state and the engine's calls, over one :class:`ProviderHost`.

    ``state``, ``pending_creates``, ``pending_updates`` and ``pending_deletes`` may be shared with a later
    engine over a new host (the CLI starts a new host for every command). Safe to drive from several
    threads for different resources. The options of :meth:`preview` and :meth:`up` are :class:`Goal`'s.
    """

    # -- check and diff --------------------------------------------------------------------------------

    def _check(self, name: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        checked, failures = self.host.check(self.urn(name), self._send(olds), self._send(news))
        if failures:
            raise CheckFailedError(self.types.get(name, self.type_token), name, failures)
        return self._mark(checked, news)

    def _diff(self, name: str, old: ResourceState, checked: dict[str, Any], goal: Goal) -> Plan:
        reply = self.host.diff(
            self.urn(name),
            old.id,
            self._send(old.outputs),
            self._send(checked),
            self._send(old.inputs),
            list(goal.ignore_changes),
        )
        changes = reply.changes
        detailed = [str((parse_path(path) or [path])[0]) for path in reply.detailed_diff]
        keys = list(dict.fromkeys([*reply.diffs, *detailed]))
        if changes == DIFF_UNKNOWN:
            keys = changed_keys(old.inputs, process_ignore_changes(checked, old.inputs, goal.ignore_changes))
            changes = DIFF_SOME if keys else DIFF_NONE
        plan = Plan("same" if changes == DIFF_NONE else "update", checked)
        plan.delete_before_replace = reply.delete_before_replace
        if changes == DIFF_SOME:
            plan.replaces = list(reply.replaces)
            plan.replaces += [
                key
                for key in keys
                if key not in plan.replaces and any(rule_covers(r, key) for r in goal.replace_on_changes)
            ]
            # Without the provider's own list, what a preview shows is the engine's input diff.
            plan.changed = keys or changed_keys(old.inputs, checked)
        return plan

    def _trigger_fires(self, name: str, old: ResourceState, goal: Goal, preview: bool) -> bool:
        new = goal.replacement_trigger
        if contains_unknowns(new):
            if preview:
                return True
            raise DeploymentError(f"replacement trigger contains unknowns for {self.urn(name)}")
        return bool(reveal(old.replacement_trigger) != reveal(new))

    def _plan(self, name: str, goal: Goal, preview: bool) -> Plan:
        """The step the engine generates for ``goal``: Check, Diff and the replacement rules."""
        old = self.state.get(name)
        if old is None:
            checked = self._check(name, {}, goal.inputs)
            return Plan("create", checked, changed=sorted(checked))
        if goal.replace:
            checked = self._check(name, {}, goal.inputs)
            plan = Plan("replace", checked, ["id"], changed_keys(old.inputs, checked))
        else:
            news = process_ignore_changes(goal.inputs, old.inputs, goal.ignore_changes)
            plan = self._diff(name, old, self._check(name, old.inputs, news), goal)
        forced = [
            key
            for key, fires in (
                (TRIGGER_KEY, self._trigger_fires(name, old, goal, preview)),
                (REPLACE_WITH_KEY, bool(goal.replaced_with)),
            )
            if fires
        ]
        if plan.replaces or forced or old.pending_replacement:
            plan.op, plan.replaces = "replace", plan.replaces + forced
            if goal.protect and old.protect:
                raise ResourceProtectedError(self.urn(name), deleting=False)
            if not goal.replace:  # the engine re-checks the raw inputs of a replacement
                plan.checked = self._check(name, {}, goal.inputs)
        if goal.delete_before_replace is not None:
            plan.delete_before_replace = goal.delete_before_replace
        return plan

    # -- operations ------------------------------------------------------------------------------------

    def preview(self, name: str, inputs: Mapping[str, Any], **options: Any) -> Step:
        """``pulumi preview`` for one resource: Check and Diff only (the host does not preview Create or
        Update; their outputs are the checked inputs); inputs may hold unknowns. Nothing is stored."""
        return self.preview_outputs(name, inputs, **options)[0]

    def preview_outputs(
        self, name: str, inputs: Mapping[str, Any], **options: Any
    ) -> tuple[Step, dict[str, Any]]:
        """:meth:`preview`, and the outputs the program sees (secrets in wire form, unknowns kept)."""
        plan = self._plan(name, goal_of(inputs, options), preview=True)
        old = self.state.get(name)
        shown = old.outputs if plan.op == "same" and old is not None else plan.checked
        return make_step(name, plan.op, shown, replaces=plan.replaces, changed=plan.changed), shown

    def up(
        self,
        name: str,
        inputs: Mapping[str, Any],
        *,
        timeout: float = 0,
        interrupt: threading.Event | None = None,
        interrupt_signal: int | None = None,
        defer_delete: bool = False,
        **options: Any,
    ) -> Step:
        """One resource's part of ``pulumi up`` (``replace=True``: ``pulumi up --replace <urn>``).

        ``timeout`` is what ``customTimeouts`` sends to each call when ``timeouts`` (create, update,
        delete) is not given (seconds; the dynamic host ignores them). If ``interrupt`` is set while
        Create or Update is in flight, the host is killed and :class:`Interrupted` raised, as when the CLI
        dies: SIGKILL to its process group, or ``interrupt_signal`` to the host alone (``signal.SIGTERM``
        is a CI runner or Kubernetes; ``signal.SIGINT`` lets the host finish its calls).
        ``defer_delete`` leaves a replaced resource's Delete to :meth:`delete_pending` (the engine
        deletes replaced resources after all creates and updates); it is also in the step's ``replaced``.
        """
        options.setdefault("timeouts", (timeout, timeout, timeout))
        goal = goal_of(inputs, options)
        interruption = None if interrupt is None else Interruption(interrupt, interrupt_signal)
        if contains_unknowns(goal.inputs):
            raise ValueError(f"resource '{name}': unknown input values occur only in a preview")
        warnings = self.pending_warnings()
        plan = self._plan(name, goal, preview=False)
        old = self.state.get(name)
        if plan.op == "same" and old is not None:
            self._store(name, self._kept(goal, plan.checked, old.id, old.outputs))
            return make_step(name, "same", old.outputs, warnings=warnings)
        if plan.op == "update" and old is not None:
            outs = self._update(name, old, plan.checked, goal, interruption)
            self._store(name, self._kept(goal, plan.checked, old.id, outs))
            return make_step(name, "update", outs, changed=plan.changed, warnings=warnings)
        if old is None:
            id_, outs = self._create(name, plan.checked, goal.timeouts[0], interruption)
            self._store(name, self._kept(goal, plan.checked, id_, outs))
            return make_step(name, "create", outs, changed=plan.changed, warnings=warnings)
        step = self._replace(name, old, plan, goal, interruption, defer_delete)
        step.warnings = warnings
        return step

    # -- helpers ---------------------------------------------------------------------------------------

    @staticmethod
    def _kept(goal: Goal, inputs: dict[str, Any], id_: str, outputs: dict[str, Any]) -> ResourceState:
        """The new state: what the provider answered, with the goal's options (the engine stores them)."""
        return ResourceState(
            id_,
            inputs,
            outputs,
            protect=goal.protect,
            retain_on_delete=goal.retain_on_delete,
            timeouts=goal.timeouts,
            replacement_trigger=goal.replacement_trigger,
        )

    def _replace(
        self,
        name: str,
        old: ResourceState,
        plan: Plan,
        goal: Goal,
        interrupt: Interruption | None,
        defer_delete: bool,
    ) -> Step:
        if plan.delete_before_replace or old.pending_replacement:
            if not old.pending_replacement:
                self.delete_state(name, old)
                self._store(name, dataclasses.replace(old, pending_replacement=True))
            id_, outs = self._create(name, plan.checked, goal.timeouts[0], interrupt)
            self._store(name, self._kept(goal, plan.checked, id_, outs))
            return make_step(name, "replace", outs, replaces=plan.replaces, changed=plan.changed)
        id_, outs = self._create(name, plan.checked, goal.timeouts[0], interrupt)
        self._store(name, self._kept(goal, plan.checked, id_, outs))
        # The replacement exists: the old resource is pending deletion until its Delete succeeds.
        with self._lock:
            self.pending_deletes.append((name, old))
        step = make_step(name, "replace", outs, replaces=plan.replaces, changed=plan.changed)
        step.replaced = old
        if not defer_delete:
            self.delete_state(name, old)
            with self._lock:
                self.pending_deletes.remove((name, old))
        return step

    def _update(
        self,
        name: str,
        old: ResourceState,
        checked: dict[str, Any],
        goal: Goal,
        interrupt: Interruption | None,
    ) -> dict[str, Any]:
        urn = self.urn(name)

        def update() -> dict[str, Any]:
            sent = (self._send(old.outputs), self._send(checked), self._send(old.inputs))
            return self.host.update(urn, old.id, *sent, goal.timeouts[1])

        outs = self._interruptible(
            update, interrupt, f"updating {urn}", (self.pending_updates, name, checked)
        )
        return self._mark(outs, checked)

    def _create(
        self, name: str, checked: dict[str, Any], timeout: float, interrupt: Interruption | None
    ) -> tuple[str, dict[str, Any]]:
        urn = self.urn(name)

        def create() -> tuple[str, dict[str, Any]]:
            return self.host.create(urn, self._send(checked), timeout)

        pending = (self.pending_creates, name, checked)
        id_, outs = self._interruptible(create, interrupt, f"creating {urn}", pending)
        return id_, self._mark(outs, checked)
