"""Pause -> reset -> resume, shared by every reset of one pipeline in this process.

The provider host runs up to four calls at once, so several resets of one pipeline can run together.
They share one pause: the first pauses (a "leader"), the others join; the last to finish starts the
pipeline again, and no reset joins a pause that is being undone (it waits, then pauses anew). So no
delete ever runs after the pipeline was started again by this process.

Failure rules (design.md): a pause that fails or does not take effect deletes nothing, and a pipeline
that did reach PAUSED is started again; a reset that fails after the pause still resumes the pipeline,
then raises its own error saying so; a start that fails says plainly that the pipeline is left PAUSED.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .client import EnosClient
from .errors import (
    EnosError,
    PipelineLeftPausedError,
    PipelineNotListedError,
    PipelineNotPausedError,
)
from .model import StageTarget

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
class _Pause:
    resume: Resume | None
    state: str = "pausing"  # -> "paused-by-us" | "paused-already" -> "resuming"; removed when done
    holders: int = 1
    failure: BaseException | None = None


class PauseCoordinator:
    """Shared pauses keyed by (gateway, org, pipeline); thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pauses: dict[_Key, _Pause] = {}

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

        ``resume`` is None for a reset that may not pause (``pause_pipeline=False``): it still joins a
        pause in progress (so it is not resumed from under it), and otherwise runs ``check_paused`` (the
        ``require_paused`` check) and the reset on its own.
        """
        key = (client.settings.api_gateway, target.org_id, target.pipeline_id)
        pause, leader = self._join(key, resume)
        if pause is None:
            check_paused()
            return reset(), False
        if leader:
            self._lead(client, target, key, pause)
        else:
            self._await_pause(pause)
        paused_by_us = pause.state == "paused-by-us"
        try:
            result = reset()
        except BaseException as exc:
            self._leave(client, target, key, pause, exc)
            raise
        self._leave(client, target, key, pause, None)
        return result, paused_by_us

    # -- joining -----------------------------------------------------------------------------------------

    def _join(self, key: _Key, resume: Resume | None) -> tuple[_Pause | None, bool]:
        with self._cond:
            while True:
                pause = self._pauses.get(key)
                if pause is not None and pause.state == "resuming":
                    self._cond.wait()  # never delete while the pipeline is being started again
                    continue
                if pause is not None:
                    pause.holders += 1
                    return pause, False
                if resume is None:
                    return None, False
                pause = _Pause(resume)
                self._pauses[key] = pause
                return pause, True

    def _await_pause(self, pause: _Pause) -> None:
        with self._cond:
            while pause.state == "pausing":
                self._cond.wait()
            if pause.failure is not None:
                error = copy.copy(pause.failure)
                if isinstance(error, EnosError):
                    error.append_to_message("[another reset of this pipeline tried to pause it]")
                raise error

    def _lead(self, client: EnosClient, target: StageTarget, key: _Key, pause: _Pause) -> None:
        try:
            paused_by_us = self._pause(client, target, pause.resume)
        except BaseException as exc:
            with self._cond:
                pause.failure = exc
                pause.state = "failed"
                del self._pauses[key]
                self._cond.notify_all()
            raise
        with self._cond:
            pause.state = "paused-by-us" if paused_by_us else "paused-already"
            self._cond.notify_all()

    # -- the pause -----------------------------------------------------------------------------------------

    def _pause(self, client: EnosClient, target: StageTarget, resume: Resume | None) -> bool:
        org, pid = target.org_id, target.pipeline_id
        status = client.pipeline_status(org, pid)
        if status is None:
            raise PipelineNotListedError(pid, org)
        if status == "PAUSED":
            return False  # paused by someone else: reset, and leave it paused
        if status != "RUNNING":
            raise PipelineNotPausedError(pid, org, status, pausing=True)
        assert resume is not None
        try:
            client.pause_pipeline(org, pid)
        except EnosError as exc:
            exc.append_to_message(f"[Nothing was deleted. {self._undo_pause(client, target, resume)}]")
            raise
        return True

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
            return f"Pipeline {pid} is {status or 'not listed'}; it was not paused by this reset."
        try:
            client.start_pipeline(org, pid, resume.execution_mode, resume.kafka_rate, resume.resource_config)
        except EnosError as exc:
            situation = (
                "the reset's pause did not complete, yet the pipeline reached PAUSED; nothing was deleted"
            )
            raise PipelineLeftPausedError(pid, org, exc, situation) from exc
        return f"Pipeline {pid} had reached PAUSED and was started again."

    # -- leaving -------------------------------------------------------------------------------------------

    def _leave(
        self,
        client: EnosClient,
        target: StageTarget,
        key: _Key,
        pause: _Pause,
        error: BaseException | None,
    ) -> None:
        with self._cond:
            pause.holders -= 1
            last = pause.holders == 0
            if last and pause.state == "paused-by-us":
                pause.state = "resuming"
            elif last:
                del self._pauses[key]
                self._cond.notify_all()
        if not last:
            if isinstance(error, EnosError) and pause.state == "paused-by-us":
                error.append_to_message(
                    "[the pipeline stays paused while other resets of it finish; "
                    "the last one starts it again]"
                )
            if error is not None:
                raise error
            return
        if pause.state != "resuming":
            if error is not None:
                raise error
            return
        try:
            resume = pause.resume
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
                del self._pauses[key]
                self._cond.notify_all()
        if error is not None:
            if isinstance(error, EnosError):
                error.append_to_message("[the pipeline was resumed: it is RUNNING again]")
            raise error


COORDINATOR = PauseCoordinator()
