"""The steps of a pause for a reset (used by :mod:`enos_pulumi.pausing`): read the status, pause and wait
under a guardian, undo a pause that did not complete, start the pipeline again — and say how it was
left only after reading it back.

Failure rules: a pause that fails or does not take effect deletes nothing, and a pipeline that did reach
PAUSED is started again; a start that fails says how the pipeline is left, from its status read
afterwards (PAUSED, FAILED...), with the start's requestId.

The guardian is told each step before it can matter and never more than is known (the phases are in
:mod:`enos_pulumi.guardian`): ``pausing`` just before our pause goes out, ``done`` as soon as that pause
certainly had no effect (before anything else is asked), and the pipeline handed over to it when an
error that is not an EnOS answer leaves its state unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .enos.client import EnosClient
from .enos.errors import (
    EnosError,
    OperationTimeoutError,
    PipelineLeftPausedError,
    PipelineNotListedError,
    PipelineNotPausedError,
)
from .enos.model import StageTarget
from .guardian import NO_GUARD, Guard, Guardians

__all__ = ["RESUME_ALWAYS", "RESUME_IF_PAUSED_BY_RESET", "RESUME_POLICIES", "Resume", "pause", "start"]

#: ``resume_policy``: start the pipeline after the reset only if this reset paused it (the default), or
#: always, even if it was PAUSED already (an earlier interrupted reset may have left it so).
RESUME_IF_PAUSED_BY_RESET = "if-paused-by-reset"
RESUME_ALWAYS = "always"
RESUME_POLICIES = (RESUME_IF_PAUSED_BY_RESET, RESUME_ALWAYS)


@dataclass(frozen=True)
class Resume:
    """How to start the pipeline again (Operate Pipeline ``start``'s body), and when (``policy``)."""

    execution_mode: str
    kafka_rate: int
    resource_config: Mapping[str, Any] | None = None
    policy: str = RESUME_IF_PAUSED_BY_RESET

    @property
    def always(self) -> bool:
        return self.policy == RESUME_ALWAYS

    def for_guardian(self) -> dict[str, Any]:
        config = dict(self.resource_config) if self.resource_config is not None else None
        return {
            "execution_mode": self.execution_mode,
            "kafka_rate": self.kafka_rate,
            "resource_config": config,
        }


def pause(
    client: EnosClient, target: StageTarget, resume: Resume, guardians: Guardians | None
) -> tuple[bool, Guard]:
    """Bring the pipeline to PAUSED for the reset: whether this process paused it, and the guardian that
    starts it again should this process end first (:data:`NO_GUARD` when nothing needs guarding)."""
    org, pid = target.org_id, target.pipeline_id
    lock = guardians.lock(client, target) if guardians is not None else None
    try:
        status = client.pipeline_status(org, pid, until=client.operation_deadline())
        if status is None:
            raise PipelineNotListedError(pid, org)
        if status not in ("PAUSED", "RUNNING"):
            raise PipelineNotPausedError(pid, org, status, pausing=True)
        if status == "PAUSED":
            _warn_paused_already(client, target, resume)
        guard = NO_GUARD  # with nothing to start afterwards, nothing to guard
        if guardians is not None and lock is not None and (status == "RUNNING" or resume.always):
            # Found PAUSED with resume_policy 'always': ours to start. RUNNING: nothing to undo yet.
            phase = "paused" if status == "PAUSED" else "watching"
            guard = guardians.spawn(client, target, resume.for_guardian(), lock, phase)
    finally:
        if lock is not None:
            lock.release()  # a guardian holds it from here
    if status == "PAUSED":
        return False, guard
    try:
        _pause_and_wait(client, target, resume, guard)
    except BaseException as exc:
        guard.finish(exc)  # an EnOS error says how the pipeline is left; anything else hands it over
        raise
    guard.phase("paused")
    return True, guard


def _warn_paused_already(client: EnosClient, target: StageTarget, resume: Resume) -> None:
    where = f"pipeline {target.pipeline_id}"
    head = f"pipeline {target.pipeline_id} (org {target.org_id}) was already PAUSED when this reset began"
    if resume.always:
        client.warn(where, f"{head}; resume_policy is 'always', so the reset starts it afterwards.")
        return
    client.warn(
        where,
        f"{head}, so the reset leaves it PAUSED. If an earlier pulumi up was interrupted while a reset had "
        f"it paused (the machine or container killed, or a guardian that could not reach EnOS), it is still "
        f"paused from that run: start it in the EnOS console (or Operate Pipeline action=start), or set "
        f"resume_policy='always' on this resource to have the reset start it.",
    )


def _pause_and_wait(client: EnosClient, target: StageTarget, resume: Resume, guard: Guard) -> None:
    org, pid = target.org_id, target.pipeline_id
    until = client.operation_deadline()
    guard.phase("pausing")  # before the request: it may land even if this process dies on sending it
    try:
        client.pause_pipeline(org, pid, wait=False, until=until)
    except EnosError as exc:
        # Refused on its first answer, or never sent: this pause did not take effect, so a PAUSED
        # pipeline from now on is someone else's and never the guardian's to start. Say what the
        # pipeline is now from a fresh read, not from what we meant to do.
        guard.done()
        now = _now(client, target)
        exc.append_to_message(f"[Nothing was deleted; this reset's pause did not take effect. {now}]")
        raise
    try:
        client.wait_for_status(org, pid, "PAUSED", until=until)
    except OperationTimeoutError as exc:
        # EnOS accepted the pause (or may have); it did not take effect in time, but it still may.
        exc.append_to_message(f"[Nothing was deleted. {_settle(client, target, resume, guard)}]")
        raise
    except EnosError as exc:
        exc.append_to_message(f"[Nothing was deleted. {_undo_pause(client, target, resume, guard)}]")
        raise


def _read(client: EnosClient, target: StageTarget) -> str | None:
    """The status, or raises: with a bound of its own (the reset's may be spent)."""
    return client.pipeline_status(target.org_id, target.pipeline_id, until=client.operation_deadline())


def _now(client: EnosClient, target: StageTarget) -> str:
    pid = target.pipeline_id
    try:
        status = _read(client, target)
    except EnosError:
        return f"Pipeline {pid}'s status could not be read afterwards: check it in the EnOS console."
    if status == "PAUSED":
        return f"Pipeline {pid} is PAUSED now, but not by this reset: check it in the EnOS console."
    return f"Pipeline {pid} is {status or 'not listed'} now."


def _settle(client: EnosClient, target: StageTarget, resume: Resume, guard: Guard) -> str:
    """A pause accepted but late gets the same time again; if it then takes effect, it is undone."""
    pid = target.pipeline_id
    try:
        client.wait_for_status(target.org_id, pid, "PAUSED")
    except EnosError:
        return (
            f"EnOS accepted the pause (or may have: its answer was lost), but pipeline {pid} has not "
            f"reached PAUSED; it may still: check it in the EnOS console and start it if it paused."
        )
    return _start_again(client, target, resume, guard, "the pause took effect late")


def _undo_pause(client: EnosClient, target: StageTarget, resume: Resume, guard: Guard) -> str:
    """After a failed pause: a pipeline that did reach PAUSED is started again."""
    pid = target.pipeline_id
    try:
        status = _read(client, target)
    except EnosError:
        return f"Could not check pipeline {pid}'s status afterwards: check in the EnOS console that it runs."
    if status != "PAUSED":
        return f"Pipeline {pid} is {status or 'not listed'}; this reset did not pause it."
    return _start_again(client, target, resume, guard, "the pause did not complete, yet the pipeline paused")


def _start_again(
    client: EnosClient, target: StageTarget, resume: Resume, guard: Guard, situation: str
) -> str:
    guard.phase("starting")
    start(client, target, resume, f"{situation}; nothing was deleted")
    return f"Pipeline {target.pipeline_id} had reached PAUSED and was started again."


def start(
    client: EnosClient,
    target: StageTarget,
    resume: Resume,
    situation: str,
    reset_error: BaseException | None = None,
) -> None:
    """Start the pipeline and wait for RUNNING; on failure :class:`PipelineLeftPausedError` saying the
    status read afterwards (a pipeline RUNNING after all is no failure) and the start's requestId."""
    org, pid = target.org_id, target.pipeline_id
    until = client.operation_deadline()
    request_id: str | None = None
    try:
        mode, rate, config = resume.execution_mode, resume.kafka_rate, resume.resource_config
        request_id = client.start_pipeline(org, pid, mode, rate, config, wait=False, until=until)
        client.wait_for_status(org, pid, "RUNNING", until=until)
    except EnosError as exc:
        try:
            status = _read(client, target)
        except EnosError:
            status = None
        if status == "RUNNING":
            return  # it got there just after the bound, or a lost answer's start took effect
        raise PipelineLeftPausedError(
            pid, org, exc, situation, reset_error, status=status, start_request_id=request_id
        ) from exc
