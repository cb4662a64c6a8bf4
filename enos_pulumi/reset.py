"""The reset itself, shared by the dynamic provider and the provider plugin: paused check (or pause),
delete every batch, read back (optional), resume; the outputs Pulumi stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .enos.client import EnosClient, ResetReport, StageTarget
from .enos.errors import ApiError, PipelineNotListedError, PipelineNotPausedError, StateRemainsError
from .enos.ids import JoinedIds, ids_hash_joined
from .enos.stage_state import remaining_pairs
from .enos.stage_types import stage_type_of
from .inputs import joined, resume_of
from .pausing import COORDINATOR

__all__ = ["run_reset"]


def run_reset(client: EnosClient, props: Mapping[str, Any]) -> dict[str, Any]:
    """Paused check (optional) -> delete every batch -> read back (optional); raises on any failure."""
    target = StageTarget(props["org_id"], props["pipeline_id"], props["stage_instance_name"])
    assets_joined = joined(props["asset_ids"])
    points_joined = joined(props["point_ids"])
    assets, points = JoinedIds(assets_joined), JoinedIds(points_joined)

    def check_paused() -> None:
        # A reset that may not pause: its status check, deletes and verify reads are one bounded whole.
        client.share_bound()
        if not props.get("require_paused", True):
            return
        status = client.pipeline_status(target.org_id, target.pipeline_id)
        if status is None:
            raise PipelineNotListedError(target.pipeline_id, target.org_id)
        if status != "PAUSED":
            raise PipelineNotPausedError(target.pipeline_id, target.org_id, status)

    def delete_and_verify() -> ResetReport:
        # After a pause (this reset's, or one it joined) the bound counts from now, once the pipeline is
        # PAUSED: a pause that took long must not use up the deletes' time. (After check_paused the
        # bound is already shared, and this changes nothing.)
        client.share_bound()
        report = client.delete_stage_state(target, assets, points)
        if props.get("verify", False):
            items, request_ids = client.get_stage_state(target, assets, points)
            remaining = remaining_pairs(items, assets, points)
            if remaining:
                raise StateRemainsError(str(target), len(remaining), remaining[:5], list(request_ids))
        return report

    resume = resume_of(props)
    if resume is not None and stage_type_of(target.stage_instance_name) is None:
        _probe_stage(client, target, assets, points)
    # With pause_pipeline the coordinator pauses a RUNNING pipeline first (or joins a pause of it
    # already under way in this process) and starts it again afterwards.
    report, paused_by_reset = COORDINATOR.run(client, target, resume, delete_and_verify, check_paused)
    return {
        "org_id": target.org_id,
        "pipeline_id": target.pipeline_id,
        "stage_instance_name": target.stage_instance_name,
        "trigger": props.get("trigger"),
        "ids_hash": ids_hash_joined(assets_joined, points_joined),
        "asset_count": len(assets),
        "point_count": len(points),
        "request_count": report.request_count,
        "request_ids": list(report.request_ids),
        "reset_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "paused_by_reset": paused_by_reset,
    }


def _probe_stage(client: EnosClient, target: StageTarget, assets: JoinedIds, points: JoinedIds) -> None:
    """A stage of an operator type this version does not know (``require_known_stage_type=False``): ask
    EnOS about it with one Get Stage State, which needs no pause, before pausing a pipeline for it."""
    try:
        client.get_stage_state(target, [assets[0]], [points[0]])
    except ApiError as exc:
        exc.append_to_message("[Nothing was paused or deleted: asked before pausing the pipeline.]")
        raise
