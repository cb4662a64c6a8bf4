"""Stage state: the (asset, point) pairs that have state, per organization, pipeline and stage.

State is nested dicts (org, pipeline, stage) -> asset -> point -> (time, value) so that deleting or
reading N pairs costs O(N) and seeding a whole assets x points block is one ``dict.fromkeys`` per asset.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["STAGE_PREFIXES", "StageState"]

#: Operators whose stage state the API can read or delete, told apart by the stage instance name's prefix.
STAGE_PREFIXES = (
    "LastRecordAppender",
    "LastChangedRecordAppender",
    "LatestRecordMerger",
    "RecordCapturer",
    "LatePointTagger",
    "FixedTimeWindowAggregator",
    "SlidingTimeWindowAggregator",
)

# (time ms, value) per point, points per asset.
_AssetState = dict[str, tuple[int, Any]]
_StageState = dict[str, _AssetState]


class StageState:
    """Thread-safe under ``lock`` (the store's)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self._stages: dict[tuple[str, str, str], _StageState] = {}

    def clear(self) -> None:
        with self.lock:
            self._stages.clear()

    def set_pairs(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        assets: Iterable[str],
        points: Sequence[str],
        value: Any,
        time_ms: int,
    ) -> int:
        """Give every (asset, point) of ``assets`` x ``points`` the same state; returns the pair count."""
        entry = (time_ms, value)
        count = 0
        with self.lock:
            stage_state = self._stages.setdefault((org_id, pipeline_id, stage), {})
            for asset in assets:
                per_asset = stage_state.get(asset)
                if per_asset is None:
                    stage_state[asset] = dict.fromkeys(points, entry)
                else:
                    per_asset.update(dict.fromkeys(points, entry))
                count += len(points)
        return count

    def delete_pairs(
        self, org_id: str, pipeline_id: str, stage: str, assets: Iterable[str], points: Sequence[str]
    ) -> int:
        """Delete the named pairs; returns how many existed."""
        deleted = 0
        point_set = set(points)
        with self.lock:
            stage_state = self._stages.get((org_id, pipeline_id, stage))
            if not stage_state:
                return 0
            for asset in set(assets):
                per_asset = stage_state.get(asset)
                if not per_asset:
                    continue
                # Walk whichever side is smaller: a huge point list against a small asset, or vice versa.
                doomed = (
                    [p for p in point_set if p in per_asset]
                    if len(point_set) <= len(per_asset)
                    else [p for p in per_asset if p in point_set]
                )
                for point in doomed:
                    del per_asset[point]
                deleted += len(doomed)
                if not per_asset:
                    del stage_state[asset]
        return deleted

    def get_pairs(
        self, org_id: str, pipeline_id: str, stage: str, assets: Sequence[str], points: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Get Stage State's items for the named pairs that have state, in request order."""
        items: list[dict[str, Any]] = []
        with self.lock:
            stage_state = self._stages.get((org_id, pipeline_id, stage))
            if not stage_state:
                return items
            for asset in dict.fromkeys(assets):
                per_asset = stage_state.get(asset)
                if not per_asset:
                    continue
                for point in dict.fromkeys(points):
                    entry = per_asset.get(point)
                    if entry is not None:
                        items.append(
                            {"assetId": asset, "pointId": point, "time": entry[0], "value": entry[1]}
                        )
        return items

    def stage_pairs(self, org_id: str, pipeline_id: str, stage: str) -> set[tuple[str, str]]:
        with self.lock:
            stage_state = self._stages.get((org_id, pipeline_id, stage), {})
            return {(asset, point) for asset, per_asset in stage_state.items() for point in per_asset}

    def pair_count(self) -> int:
        with self.lock:
            return sum(len(per_asset) for s in self._stages.values() for per_asset in s.values())

    def stage_counts(self, org_id: str, pipeline_id: str) -> dict[str, int]:
        """Pairs with state per stage of one pipeline."""
        with self.lock:
            return {
                stage: sum(len(per_asset) for per_asset in state.values())
                for (org, pid, stage), state in self._stages.items()
                if org == org_id and pid == pipeline_id
            }
