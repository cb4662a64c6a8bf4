"""Pause -> reset -> resume, shared by every reset of one pipeline in this process.

The provider host runs up to four calls at once, so several resets of one pipeline can run together.
Every reset of a pipeline registers while it runs (so the pipeline is never started again from under
one of them), and those with ``pause_pipeline`` share one pause: the first pauses (the leader), the
others wait for it, the last reset of the pipeline to finish starts it again, and a reset arriving while
it is being started waits for that, then pauses anew. So no delete of this process runs after the
pipeline was started again by this process. The steps themselves (pause, undo, start, the guardian that
covers this process being killed) are in :mod:`enos_pulumi.pause_steps`.

A reset that fails after the pause still resumes the pipeline, then raises its own error saying so.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from . import pause_steps
from .enos.client import EnosClient
from .enos.errors import EnosError
from .enos.model import StageTarget
from .guardian import NO_GUARD, Guard, Guardians
from .pause_steps import RESUME_ALWAYS, RESUME_IF_PAUSED_BY_RESET, RESUME_POLICIES, Resume

__all__ = [
    "COORDINATOR",
    "RESUME_ALWAYS",
    "RESUME_IF_PAUSED_BY_RESET",
    "RESUME_POLICIES",
    "PauseCoordinator",
    "Resume",
    "Role",
    "State",
]

T = TypeVar("T")
_Key = tuple[str, str, str]


class State(Enum):
    """Where a pipeline's shared pause stands in this process."""

    OPEN = "no pause of this process"
    PAUSING = "being paused"
    PAUSED_BY_US = "paused by this process"
    PAUSED_ALREADY = "found paused"
    RESUMING = "being started again"


class Role(Enum):
    """What one reset does about the pause."""

    LEADER = "pauses the pipeline"
    FOLLOWER = "waits for the leader's pause"
    UNMANAGED = "may not pause (pause_pipeline=False): checks, and holds off any start"


@dataclass(eq=False)
class _Pipeline:
    """The resets of one pipeline under way in this process."""

    key: _Key
    state: State = State.OPEN
    holders: int = 0
    resume: Resume | None = None
    attempt: int = 0
    #: Why each failed pause attempt failed, for the resets that waited on it.
    failures: dict[int, Exception] = field(default_factory=dict)
    guard: Guard = NO_GUARD

    @property
    def starts_at_end(self) -> bool:
        """Whether the last reset to leave starts the pipeline: this process paused it, or it was found
        PAUSED and the leader's ``resume_policy`` is 'always'."""
        always = self.resume is not None and self.resume.always
        return self.state is State.PAUSED_BY_US or (self.state is State.PAUSED_ALREADY and always)


class PauseCoordinator:
    """Resets keyed by (gateway, org, pipeline); thread-safe. ``guardians`` (None: none) covers this
    process being killed while a pipeline is paused."""

    def __init__(self, guardians: Guardians | None = None) -> None:
        self._cond = threading.Condition()
        self._pipelines: dict[_Key, _Pipeline] = {}
        self._guardians = guardians

    def run(
        self,
        client: EnosClient,
        target: StageTarget,
        resume: Resume | None,
        reset: Callable[[], T],
        check_paused: Callable[[], None],
    ) -> tuple[T, bool]:
        """Run ``reset`` while the pipeline is PAUSED; returns its result and whether this process paused
        the pipeline for it.

        ``resume`` is None for a reset that may not pause (``pause_pipeline=False``): it joins a pause
        under way if there is one, and otherwise runs ``check_paused`` (the ``require_paused`` check) and
        the reset while registered, so that no other reset starts the pipeline from under it.
        """
        key = (client.settings.api_gateway, target.org_id, target.pipeline_id)
        entry, role, attempt = self._join(key, resume)
        try:
            if role is Role.LEADER:
                self._lead(client, target, entry)
            elif role is Role.FOLLOWER:
                self._await_pause(entry, attempt)
            else:
                check_paused()
        except BaseException:
            self._leave(client, target, key, entry, None)
            raise
        paused_by_us = role is not Role.UNMANAGED and entry.state is State.PAUSED_BY_US
        try:
            result = reset()
        except BaseException as exc:
            self._leave(client, target, key, entry, exc)
            raise
        self._leave(client, target, key, entry, None)
        return result, paused_by_us

    # -- joining -----------------------------------------------------------------------------------------

    def _join(self, key: _Key, resume: Resume | None) -> tuple[_Pipeline, Role, int]:
        with self._cond:
            while True:
                entry = self._pipelines.get(key)
                if entry is not None and entry.state is State.RESUMING:
                    self._cond.wait()  # never delete while the pipeline is being started again
                    continue
                if entry is None:
                    entry = self._pipelines[key] = _Pipeline(key)
                entry.holders += 1
                if entry.state is not State.OPEN:
                    return entry, Role.FOLLOWER, entry.attempt
                if resume is None:
                    return entry, Role.UNMANAGED, entry.attempt
                entry.state = State.PAUSING
                entry.resume = resume
                entry.attempt += 1
                return entry, Role.LEADER, entry.attempt

    def _await_pause(self, entry: _Pipeline, attempt: int) -> None:
        with self._cond:
            while entry.state is State.PAUSING and entry.attempt == attempt:
                self._cond.wait()
            if entry.attempt == attempt and entry.state in (State.PAUSED_BY_US, State.PAUSED_ALREADY):
                return
            # The pause this reset waited for failed (whatever came after it): never go on unpaused.
            failure = entry.failures.get(attempt)
            error = copy.copy(failure) if failure is not None else None
        if isinstance(error, EnosError):
            error.append_to_message("[another reset of this pipeline tried to pause it]")
            raise error
        raise EnosError(
            f"Stage state reset of pipeline {entry.key[2]} not attempted: the reset of it that was pausing "
            f"the pipeline was interrupted. Nothing was deleted; run pulumi up again."
        )

    def _lead(self, client: EnosClient, target: StageTarget, entry: _Pipeline) -> None:
        try:
            assert entry.resume is not None
            paused_by_us, guard = pause_steps.pause(client, target, entry.resume, self._guardians)
        except BaseException as exc:
            with self._cond:
                if isinstance(exc, Exception):  # a KeyboardInterrupt belongs to its own thread alone
                    entry.failures[entry.attempt] = copy.copy(exc)
                entry.state = State.OPEN  # resets without pause_pipeline may still be under way
                self._cond.notify_all()
            raise
        with self._cond:
            entry.state = State.PAUSED_BY_US if paused_by_us else State.PAUSED_ALREADY
            entry.guard = guard
            self._cond.notify_all()

    # -- leaving -----------------------------------------------------------------------------------------

    def _leave(
        self,
        client: EnosClient,
        target: StageTarget,
        key: _Key,
        entry: _Pipeline,
        error: BaseException | None,
    ) -> None:
        with self._cond:
            entry.holders -= 1
            last = entry.holders == 0
            resume_now = last and entry.starts_at_end
            found_paused = entry.state is State.PAUSED_ALREADY
            if resume_now:
                entry.state = State.RESUMING
            elif last:
                if self._pipelines.get(key) is entry:
                    del self._pipelines[key]
                self._cond.notify_all()
        if not resume_now:
            if isinstance(error, EnosError) and not last and entry.starts_at_end:
                error.append_to_message(
                    "[the pipeline stays paused while other resets of it finish; "
                    "the last one starts it again]"
                )
            return
        self._resume(client, target, key, entry, error, found_paused)

    def _resume(
        self,
        client: EnosClient,
        target: StageTarget,
        key: _Key,
        entry: _Pipeline,
        error: BaseException | None,
        found_paused: bool,
    ) -> None:
        done = "then failed" if error is not None else "and the reset succeeded"
        why = "the reset paused it"
        if found_paused:
            why = "it was PAUSED before the reset (resume_policy 'always')"
        outcome: BaseException | None = None
        try:
            assert entry.resume is not None
            entry.guard.phase("starting")
            pause_steps.start(client, target, entry.resume, f"{why} {done}", error)
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            entry.guard.finish(outcome)  # an unexpected error hands the pipeline to the guardian
            with self._cond:
                if self._pipelines.get(key) is entry:
                    del self._pipelines[key]
                self._cond.notify_all()
        if isinstance(error, EnosError):
            error.append_to_message("[the pipeline was resumed: it is RUNNING again]")


COORDINATOR = PauseCoordinator(Guardians())
