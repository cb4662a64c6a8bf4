"""Pause -> reset -> resume, shared by every reset of one pipeline in this process.

The provider host runs up to four calls at once, so several resets of one pipeline can run together.
Every reset of a pipeline registers while it runs (so the pipeline is never started again from under
one of them), and those with ``pause_pipeline`` share one pause: the first pauses (the "leader"), the
others wait for it, the last reset of the pipeline to finish starts it again, and a reset arriving while
it is being started waits for that, then pauses anew. So no delete of this process runs after the
pipeline was started again by this process.

Failure rules (design.md): a pause that fails or does not take effect deletes nothing, and a pipeline
that did reach PAUSED is started again; a reset that fails after the pause still resumes the pipeline,
then raises its own error saying so; a start that fails says plainly that the pipeline is left PAUSED.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .enos.client import EnosClient
from .enos.errors import (
    EnosError,
    OperationTimeoutError,
    PipelineLeftPausedError,
    PipelineNotListedError,
    PipelineNotPausedError,
)
from .enos.model import StageTarget

__all__ = ["COORDINATOR", "PauseCoordinator", "Resume"]

T = TypeVar("T")
_Key = tuple[str, str, str]


@dataclass(frozen=True)
class Resume:
    """How to start the pipeline again (Operate Pipeline ``start``'s body)."""

    execution_mode: str
    kafka_rate: int
    resource_config: Mapping[str, Any] | None = None


@dataclass(eq=False)
class _Pipeline:
    """The resets of one pipeline under way in this process."""

    key: _Key
    #: "open" (no pause of ours) -> "pausing" -> "paused-by-us" | "paused-already" -> "resuming"
    state: str = "open"
    holders: int = 0
    resume: Resume | None = None
    attempt: int = 0
    #: Why each failed pause attempt failed, for the resets that waited on it.
    failures: dict[int, Exception] = field(default_factory=dict)


class PauseCoordinator:
    """Resets keyed by (gateway, org, pipeline); thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pipelines: dict[_Key, _Pipeline] = {}

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
            if role == "leader":
                self._lead(client, target, entry)
            elif role == "follower":
                self._await_pause(entry, attempt)
            else:
                check_paused()
        except BaseException:
            self._leave(client, target, key, entry, None)
            raise
        paused_by_us = role != "unmanaged" and entry.state == "paused-by-us"
        try:
            result = reset()
        except BaseException as exc:
            self._leave(client, target, key, entry, exc)
            raise
        self._leave(client, target, key, entry, None)
        return result, paused_by_us

    # -- joining -----------------------------------------------------------------------------------------

    def _join(self, key: _Key, resume: Resume | None) -> tuple[_Pipeline, str, int]:
        with self._cond:
            while True:
                entry = self._pipelines.get(key)
                if entry is not None and entry.state == "resuming":
                    self._cond.wait()  # never delete while the pipeline is being started again
                    continue
                if entry is None:
                    entry = self._pipelines[key] = _Pipeline(key)
                entry.holders += 1
                if entry.state != "open":
                    return entry, "follower", entry.attempt
                if resume is None:
                    return entry, "unmanaged", entry.attempt
                entry.state = "pausing"
                entry.resume = resume
                entry.attempt += 1
                return entry, "leader", entry.attempt

    def _await_pause(self, entry: _Pipeline, attempt: int) -> None:
        with self._cond:
            while entry.state == "pausing" and entry.attempt == attempt:
                self._cond.wait()
            if entry.attempt == attempt and entry.state in ("paused-by-us", "paused-already"):
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
            paused_by_us = self._pause(client, target, entry.resume)
        except BaseException as exc:
            with self._cond:
                if isinstance(exc, Exception):  # a KeyboardInterrupt belongs to its own thread alone
                    entry.failures[entry.attempt] = copy.copy(exc)
                entry.state = "open"  # resets without pause_pipeline may still be under way
                self._cond.notify_all()
            raise
        with self._cond:
            entry.state = "paused-by-us" if paused_by_us else "paused-already"
            self._cond.notify_all()

    # -- the pause ---------------------------------------------------------------------------------------

    def _pause(self, client: EnosClient, target: StageTarget, resume: Resume) -> bool:
        org, pid = target.org_id, target.pipeline_id
        status = client.pipeline_status(org, pid)
        if status is None:
            raise PipelineNotListedError(pid, org)
        if status == "PAUSED":
            return False  # paused by someone else: reset, and leave it paused
        if status != "RUNNING":
            raise PipelineNotPausedError(pid, org, status, pausing=True)
        until = client.operation_deadline()
        try:
            client.pause_pipeline(org, pid, wait=False, until=until)
        except EnosError as exc:
            # Refused on its first answer, or never sent: the pause did not take effect.
            exc.append_to_message("[Nothing was deleted, and the pipeline was not paused.]")
            raise
        try:
            client.wait_for_status(org, pid, "PAUSED", until=until)
        except OperationTimeoutError as exc:
            # EnOS accepted the pause (or may have); it did not take effect in time, but it still may.
            exc.append_to_message(f"[Nothing was deleted. {self._settle(client, target, resume)}]")
            raise
        except EnosError as exc:
            exc.append_to_message(f"[Nothing was deleted. {self._undo_pause(client, target, resume)}]")
            raise
        return True

    def _settle(self, client: EnosClient, target: StageTarget, resume: Resume) -> str:
        """A pause accepted but late gets the same time again; if it then takes effect, it is undone."""
        pid = target.pipeline_id
        try:
            client.wait_for_status(target.org_id, pid, "PAUSED")
        except EnosError:
            return (
                f"EnOS accepted the pause, but pipeline {pid} has not reached PAUSED; it may still: check it "
                f"in the EnOS console and start it if it paused."
            )
        return self._start_again(client, target, resume, "the pause took effect late")

    def _undo_pause(self, client: EnosClient, target: StageTarget, resume: Resume) -> str:
        """After a failed pause: a pipeline that did reach PAUSED is started again."""
        org, pid = target.org_id, target.pipeline_id
        try:
            status = client.pipeline_status(org, pid)
        except EnosError:
            return (
                f"Could not check pipeline {pid}'s status afterwards: check in the EnOS console that it runs."
            )
        if status != "PAUSED":
            return f"Pipeline {pid} is {status or 'not listed'}; this reset did not pause it."
        return self._start_again(
            client, target, resume, "the pause did not complete, yet the pipeline paused"
        )

    def _start_again(self, client: EnosClient, target: StageTarget, resume: Resume, situation: str) -> str:
        org, pid = target.org_id, target.pipeline_id
        try:
            client.start_pipeline(org, pid, resume.execution_mode, resume.kafka_rate, resume.resource_config)
        except EnosError as exc:
            raise PipelineLeftPausedError(pid, org, exc, f"{situation}; nothing was deleted") from exc
        return f"Pipeline {pid} had reached PAUSED and was started again."

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
            resume_now = last and entry.state == "paused-by-us"
            if resume_now:
                entry.state = "resuming"
            elif last:
                if self._pipelines.get(key) is entry:
                    del self._pipelines[key]
                self._cond.notify_all()
        if not resume_now:
            if isinstance(error, EnosError) and not last and entry.state == "paused-by-us":
                error.append_to_message(
                    "[the pipeline stays paused while other resets of it finish; "
                    "the last one starts it again]"
                )
            return
        try:
            resume = entry.resume
            assert resume is not None
            org, pid = target.org_id, target.pipeline_id
            try:
                client.start_pipeline(
                    org, pid, resume.execution_mode, resume.kafka_rate, resume.resource_config
                )
            except EnosError as exc:
                done = "then failed" if error is not None else "and the reset succeeded"
                raise PipelineLeftPausedError(pid, org, exc, f"the reset paused it {done}", error) from exc
        finally:
            with self._cond:
                if self._pipelines.get(key) is entry:
                    del self._pipelines[key]
                self._cond.notify_all()
        if isinstance(error, EnosError):
            error.append_to_message("[the pipeline was resumed: it is RUNNING again]")


COORDINATOR = PauseCoordinator()
