"""The simulator's in-memory model: apps, tokens, pipelines, stage state, faults and the request log.

Everything is guarded by one lock; the HTTP side only calls the methods here. State is nested dicts
(org, pipeline, stage) -> asset -> point -> (time, value) so that deleting or reading N pairs costs O(N)
and seeding a whole assets x points block is one ``dict.fromkeys`` per asset.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import pipelines as transitions
from .faults import Fault
from .pipelines import Pipeline
from .seeds import SeedError, parse_seed

__all__ = ["STAGE_PREFIXES", "App", "Store"]

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


@dataclass
class App:
    access_key: str
    secret_key: str = field(repr=False)
    orgs: frozenset[str] | None = None  # None: the app may act on any organization

    def may_access(self, org_id: str) -> bool:
        return self.orgs is None or org_id in self.orgs


@dataclass
class _TokenRecord:
    app_key: str
    expires_at: float


class Store:
    """Thread-safe model behind the simulator. Times come from ``clock`` (seconds, like ``time.time``)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.pipelines: dict[str, Pipeline] = {}  # pipeline IDs are unique across organizations
        self.state: dict[tuple[str, str, str], _StageState] = {}
        self.faults: list[Fault] = []
        self.log: list[dict[str, Any]] = []
        self.transitions: list[dict[str, Any]] = []
        self.tokens_issued = 0
        self.connections_opened = 0
        self._tokens: dict[str, _TokenRecord] = {}
        self._used_encryptions: set[str] = set()
        self._next_fault_id = 1

    # -- apps and tokens -------------------------------------------------------------------------------

    def add_app(self, access_key: str, secret_key: str, orgs: Iterable[str] | None = None) -> None:
        if not access_key or not secret_key:
            raise ValueError("an app needs a non-empty access key and secret key")
        with self.lock:
            self.apps[access_key] = App(access_key, secret_key, None if orgs is None else frozenset(orgs))

    def use_encryption(self, encryption: str) -> bool:
        """Record a token request's ``encryption``; False if it was seen before (a replay)."""
        with self.lock:
            if encryption in self._used_encryptions:
                return False
            self._used_encryptions.add(encryption)
            return True

    def issue_token(self, app_key: str, lifetime_s: float) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._tokens[token] = _TokenRecord(app_key, self.clock() + lifetime_s)
            self.tokens_issued += 1
        return token

    def token_app(self, token: str) -> tuple[App | None, bool]:
        """The app a token was issued to (None if unknown) and whether the token is still live."""
        with self.lock:
            record = self._tokens.get(token)
            if record is None:
                return None, False
            return self.apps.get(record.app_key), self.clock() < record.expires_at

    def revoke_token(self, token: str) -> None:
        with self.lock:
            record = self._tokens.get(token)
            if record is not None:
                record.expires_at = float("-inf")

    def expire_tokens(self) -> int:
        """Expire every live token now (they stay known, so callers get 1203 rather than 'unknown')."""
        with self.lock:
            now = self.clock()
            live = [r for r in self._tokens.values() if r.expires_at > now]
            for record in live:
                record.expires_at = float("-inf")
            return len(live)

    # -- pipelines -------------------------------------------------------------------------------------

    def add_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        status: str = "PAUSED",
        name: str | None = None,
        released: bool = True,
    ) -> None:
        if not org_id or not pipeline_id or not status:
            raise ValueError("a pipeline needs a non-empty org ID, pipeline ID and status")
        with self.lock:
            existing = self.pipelines.get(pipeline_id)
            if existing is not None and existing.org_id != org_id:
                raise ValueError(f"pipeline {pipeline_id} already belongs to org {existing.org_id}")
            self.pipelines[pipeline_id] = Pipeline(org_id, pipeline_id, name or pipeline_id, status, released)

    def pipeline(self, org_id: str, pipeline_id: str) -> Pipeline | None:
        """The pipeline if it exists in ``org_id`` (another org's pipeline is invisible, as in EnOS), with
        any operation whose time has come applied."""
        with self.lock:
            found = self.pipelines.get(pipeline_id)
            if found is None or found.org_id != org_id:
                return None
            self._settle(found)
            return found

    def list_pipelines(
        self, org_id: str, released_only: bool, page_no: int, page_size: int
    ) -> tuple[int, list[Pipeline]]:
        with self.lock:
            matching = [
                p for p in self.pipelines.values() if p.org_id == org_id and (p.released or not released_only)
            ]
            start = (page_no - 1) * page_size
            page = matching[start : start + page_size]
            for pipeline in page:
                self._settle(pipeline)
            return len(matching), page

    def operate(
        self,
        pipeline: Pipeline,
        action: str,
        delay: float,
        request_id: str | None,
        effect: bool = True,
        to: str | None = None,
    ) -> int:
        """Pause, start or stop ``pipeline`` (already looked up, under the lock): 0 when accepted, else
        the EnOS code refusing it. Without ``effect`` an accepted operation changes nothing; ``to`` is the
        status it leads to instead of the usual one (a start that ends FAILED)."""
        with self.lock:
            self._settle(pipeline)
            code = transitions.refusal(pipeline, action)
            if code is not None:
                return code
            if effect:
                record = transitions.begin(pipeline, action, self.clock(), delay, request_id, to)
                if record is not None:
                    self.transitions.append(record)
            return 0

    def set_status(self, org_id: str, pipeline_id: str, status: str) -> None:
        """Set a status at once, dropping any operation in progress (a test's fixture, not an API call)."""
        with self.lock:
            pipeline = self.pipeline(org_id, pipeline_id)
            if pipeline is None:
                raise KeyError(f"no pipeline {pipeline_id} in org {org_id}")
            pipeline.status, pipeline.pending = status, None

    def settle_all(self) -> None:
        with self.lock:
            for pipeline in self.pipelines.values():
                self._settle(pipeline)

    def _settle(self, pipeline: Pipeline) -> None:
        record = transitions.settle(pipeline, self.clock())
        if record is not None:
            self.transitions.append(record)

    # -- stage state -----------------------------------------------------------------------------------

    def _require_pipeline(self, org_id: str, pipeline_id: str) -> None:
        if self.pipeline(org_id, pipeline_id) is None:
            raise ValueError(f"unknown pipeline {pipeline_id} in org {org_id}; add it first")

    def set_pairs(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        assets: Iterable[str],
        points: Sequence[str],
        value: Any = 0.0,
        time_ms: int | None = None,
    ) -> int:
        """Give every (asset, point) of ``assets`` x ``points`` the same state; returns the pair count."""
        if time_ms is None:
            time_ms = int(self.clock() * 1000)
        entry = (time_ms, value)
        count = 0
        with self.lock:
            self._require_pipeline(org_id, pipeline_id)
            stage_state = self.state.setdefault((org_id, pipeline_id, stage), {})
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
            stage_state = self.state.get((org_id, pipeline_id, stage))
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
        items: list[dict[str, Any]] = []
        with self.lock:
            stage_state = self.state.get((org_id, pipeline_id, stage))
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
            stage_state = self.state.get((org_id, pipeline_id, stage), {})
            return {(asset, point) for asset, per_asset in stage_state.items() for point in per_asset}

    def pair_count(self) -> int:
        with self.lock:
            return sum(len(per_asset) for s in self.state.values() for per_asset in s.values())

    # -- faults ----------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            fault.id = self._next_fault_id
            self._next_fault_id += 1
            self.faults.append(fault)
        return fault

    def take_faults(self, op: str, gateway: bool) -> tuple[float, Fault | None]:
        """Consume the faults that apply to one request at one stage (gateway or service).

        Returns the summed delay of matching latency faults (gateway stage only) and the first other
        matching fault; each consumed fault's count goes down by one and it is dropped at zero.
        """
        delay_ms = 0.0
        chosen: Fault | None = None
        with self.lock:
            for fault in list(self.faults):
                if not fault.matches(op):
                    continue
                if fault.kind == "latency":
                    if not gateway:
                        continue
                    delay_ms += fault.latency_ms
                elif chosen is None and fault.is_gateway == gateway:
                    chosen = fault
                else:
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
        return delay_ms, chosen

    # -- log -------------------------------------------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)

    # -- seeds and reset -------------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget everything, counters included."""
        with self.lock:
            self.apps.clear()
            self.pipelines.clear()
            self.state.clear()
            self.faults.clear()
            self.log.clear()
            self.transitions.clear()
            self._tokens.clear()
            self._used_encryptions.clear()
            self.tokens_issued = 0

    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        """Add apps, pipelines and state from a seed mapping (see :data:`.seeds.SEED_FORMAT`).

        Validates everything before changing anything, so a bad seed leaves the store as it was.
        """
        parsed = parse_seed(seed)
        pairs = 0
        with self.lock:
            for org_id, pipeline_id, *_ in parsed.pipelines:
                existing = self.pipelines.get(pipeline_id)
                if existing is not None and existing.org_id != org_id:
                    raise SeedError(f"pipeline {pipeline_id} already belongs to org {existing.org_id}")
            for access_key, secret_key, orgs in parsed.apps:
                self.add_app(access_key, secret_key, orgs)
            for org_id, pipeline_id, status, name, released, blocks in parsed.pipelines:
                self.add_pipeline(org_id, pipeline_id, status, name, released)
                for stage, assets, points, value, time_ms in blocks:
                    pairs += self.set_pairs(org_id, pipeline_id, stage, assets, points, value, time_ms)
        return {"apps": len(parsed.apps), "pipelines": len(parsed.pipelines), "pairs": pairs}
