"""The reset's own refusals and outcomes: a pipeline not paused or not listed, a pipeline left paused,
state that remains after the delete."""

from __future__ import annotations

from .base import EnosError

__all__ = ["PipelineLeftPausedError", "PipelineNotListedError", "PipelineNotPausedError", "StateRemainsError"]


class PipelineNotPausedError(EnosError):
    """The pipeline's status is not PAUSED, so the reset was not attempted."""

    def __init__(self, pipeline_id: str, org_id: str, status: str | None, *, pausing: bool = False) -> None:
        if pausing:
            advice = (
                "pause_pipeline pauses only a RUNNING pipeline: bring it to RUNNING or PAUSED in the EnOS "
                "console first"
            )
        else:
            advice = (
                "Pause it first (EnOS console or Operate Pipeline action=pause), set pause_pipeline=True to "
                "have the reset pause and resume it, or set require_paused=False if you have checked this "
                "yourself"
            )
        super().__init__(
            f"Stage state reset refused: pipeline {pipeline_id} is {status}, but deleting stage state needs "
            f"a PAUSED pipeline. {advice}. Nothing was deleted."
        )
        self.pipeline_id = pipeline_id
        self.org_id = org_id
        self.status = status


class PipelineLeftPausedError(EnosError):
    """The reset paused a running pipeline and could not start it again: it is not running.

    ``start_error`` is what the start (or the wait for RUNNING) failed with; ``reset_error`` the reset's
    own failure, if it failed too; ``status`` the status read after the failure (None if it could not be
    read: then the text says so rather than claim one); ``start_request_id`` the start's requestId when
    EnOS accepted the start and the pipeline then failed to reach RUNNING.
    """

    def __init__(
        self,
        pipeline_id: str,
        org_id: str,
        start_error: BaseException,
        situation: str,
        reset_error: BaseException | None = None,
        *,
        status: str | None = "PAUSED",
        start_request_id: str | None = None,
    ) -> None:
        code = getattr(start_error, "code", None)
        rid = start_request_id or getattr(start_error, "request_id", None)
        what = f"EnOS {code}" if code not in (None, 0) else type(start_error).__name__
        accepted = f"EnOS accepted it (requestId {start_request_id}), then " if start_request_id else ""
        reset = f" The reset itself failed first: {reset_error}" if reset_error is not None else ""
        rerun = (
            "; the next pulumi up runs the reset again and starts the pipeline only with "
            "resume_policy='always'"
        )
        if status == "PAUSED":
            head = "is left PAUSED"
            todo = f"Start it in the EnOS console (or Operate Pipeline action=start) now{rerun}"
        elif status is None:
            head = "may be left PAUSED (its status could not be read afterwards)"
            todo = f"Check it in the EnOS console and start it{rerun}"
        else:
            # A FAILED or STOPPED pipeline is no reset's to start: the next pulumi up refuses it too.
            head = f"is not running: its status is {status}"
            todo = "Repair and start it in the EnOS console; a reset refuses a pipeline in that status"
        super().__init__(
            f"Pipeline {pipeline_id} (org {org_id}) {head}: {situation}, but starting it again failed "
            f"({accepted}{what}, requestId {rid or 'none'}): {start_error}. {todo}.{reset}"
        )
        self.pipeline_id = pipeline_id
        self.org_id = org_id
        self.code = code
        self.request_id = rid
        self.status = status
        self.start_error = str(start_error)
        self.reset_error = str(reset_error) if reset_error is not None else None


class PipelineNotListedError(EnosError):
    """The pipeline is not among the organization's released pipelines, so its status is unknown."""

    def __init__(self, pipeline_id: str, org_id: str) -> None:
        super().__init__(
            f"Stage state reset refused: pipeline {pipeline_id} was not found among org {org_id}'s released "
            f"pipelines (List Pipelines). Check pipeline_id and org_id (the organization must own the "
            f"pipeline, and the pipeline must be released). Nothing was deleted."
        )
        self.pipeline_id = pipeline_id
        self.org_id = org_id


class StateRemainsError(EnosError):
    """``verify=True``: after the delete, Get Stage State still returned items for the reset pairs."""

    def __init__(self, target: str, remaining: int, sample: list[tuple[str, str]], request_ids: list[str]):
        shown = ", ".join(f"{a}/{p}" for a, p in sample)
        super().__init__(
            f"Stage state reset for {target} did not take effect: {remaining} asset/point pair(s) still have "
            f"state after deleting (e.g. {shown}; Get Stage State requestIds {', '.join(request_ids)}). "
            f"Check that the pipeline stayed paused; pulumi up will retry the reset."
        )
        self.target = target
        self.remaining = remaining
        self.sample = sample
        self.request_ids = request_ids
