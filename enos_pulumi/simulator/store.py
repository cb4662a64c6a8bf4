"""The simulator's in-memory model: apps, tokens, pipelines, stage state, faults and the request log.

Everything is guarded by one lock; the HTTP layer (:mod:`.server`) only calls the methods here. State is
nested dicts (org, pipeline, stage) -> asset -> point -> (time, value) so that deleting or reading N pairs
costs O(N) and seeding a whole assets x points block is one ``dict.fromkeys`` per asset.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "OPERATIONS",
    "STAGE_PREFIXES",
    "App",
    "Fault",
    "Pipeline",
    "SeedError",
    "Store",
    "demo_seed",
    "load_seed_file",
    "parse_fault",
    "parse_seed_text",
]

DEMO_SEED_NAME = "demo_seed.yaml"

#: Operation names used in the request log and to target faults.
OPERATIONS = ("token", "refresh", "delete", "get", "list", "operate", "unknown")

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

FAULT_KINDS = ("latency", "status", "drop", "data-false", "expire", "html", "code")

# (time ms, value) per point, points per asset.
_AssetState = dict[str, tuple[int, Any]]
_StageState = dict[str, _AssetState]


class SeedError(ValueError):
    """A seed (file or mapping) is malformed; the message names the offending entry."""


@dataclass
class App:
    access_key: str
    secret_key: str = field(repr=False)
    orgs: frozenset[str] | None = None  # None: the app may act on any organization

    def may_access(self, org_id: str) -> bool:
        return self.orgs is None or org_id in self.orgs


@dataclass
class Pipeline:
    org_id: str
    pipeline_id: str
    name: str
    status: str
    released: bool = True


@dataclass
class _TokenRecord:
    app_key: str
    expires_at: float


@dataclass
class Fault:
    """One injected fault, applied to the next ``count`` requests of operation ``op`` (None: any, forever).

    Kinds: ``latency`` (delay ``latency_ms`` then answer normally), ``status`` (HTTP ``status`` with a small
    JSON body, optional ``Retry-After``), ``drop`` (close the connection without answering), ``data-false``
    (``code 0, data false``, nothing done), ``expire`` (expire every token, so the request gets the 1203 401),
    ``html`` (HTTP ``status`` with an HTML page), ``code`` (HTTP 200 envelope with EnOS ``code``).
    """

    kind: str
    op: str | None = None
    count: int | None = None
    latency_ms: float = 0.0
    status: int | None = None
    retry_after: str | None = None
    code: int | None = None
    msg: str | None = None
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.op is not None and self.op not in OPERATIONS:
            raise ValueError(f"unknown operation {self.op!r}; expected one of {', '.join(OPERATIONS)}")
        if self.count is not None and self.count < 1:
            raise ValueError("fault count must be at least 1 (omit it for 'until cleared')")
        if self.kind == "data-false" and self.op is None:
            self.op = "delete"  # a token or list reply with data false would be meaningless
        if self.kind == "status" and self.status is None:
            self.status = 503
        if self.kind == "html" and self.status is None:
            self.status = 502
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"HTTP status {self.status} out of range")
        if self.kind == "code" and self.code is None:
            raise ValueError("a 'code' fault needs an EnOS code, e.g. code=61121")
        if self.kind == "latency" and self.latency_ms <= 0:
            raise ValueError("a 'latency' fault needs a positive delay in ms, e.g. latency=200")

    @property
    def is_gateway(self) -> bool:
        """Applied before authentication, as a proxy or gateway in front of EnOS would."""
        return self.kind in ("status", "drop", "expire", "html")

    def matches(self, op: str) -> bool:
        if self.op is None:
            # An EnOS business code (61121, 61199...) means nothing to the token service: without an
            # explicit op=token it is aimed at the APIs, not at the token request that comes first.
            return not (self.kind == "code" and op in ("token", "refresh"))
        return self.op == op

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "op": self.op, "count": self.count}
        for name in ("latency_ms", "status", "retry_after", "code", "msg"):
            value = getattr(self, name)
            if value not in (None, 0.0):
                out[name] = value
        return out

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Fault:
        """A fault from JSON (admin endpoint): ``{"kind": "status", "status": 429, "op": "delete", ...}``
        or ``{"spec": "status=429,op=delete"}``."""
        if "spec" in raw:
            return parse_fault(str(raw["spec"]))
        norm = {str(k).replace("-", "_"): v for k, v in raw.items()}
        kind = norm.pop("kind", None)
        if not isinstance(kind, str):
            raise ValueError("a fault needs a 'kind' (or a 'spec' string)")
        unknown = set(norm) - {"op", "count", "latency_ms", "status", "retry_after", "code", "msg"}
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(
                kind=kind,
                op=_opt_str(norm.get("op")),
                count=_opt_int(norm.get("count")),
                latency_ms=float(norm.get("latency_ms") or 0.0),
                status=_opt_int(norm.get("status")),
                retry_after=_retry_after(norm.get("retry_after")),
                code=_opt_int(norm.get("code")),
                msg=_opt_str(norm.get("msg")),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid fault {dict(raw)!r}: {exc}") from None


def parse_fault(spec: str) -> Fault:
    """Parse a command-line fault: ``KIND[=VALUE][,key=value...]``.

    Examples: ``latency=200``, ``status=429,retry-after=2,count=3``, ``drop,op=delete,count=1``,
    ``data-false,count=1`` (op defaults to delete), ``expire,op=delete,count=1``, ``html=502``,
    ``code=61121,op=operate,msg=busy``.
    Keys: ``op`` (one of OPERATIONS), ``count`` (next N matching requests; default: until cleared),
    ``retry-after``, ``msg``, ``status`` (for html).
    """
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise ValueError("empty fault spec")
    head, _, head_value = parts[0].partition("=")
    kind = head.strip()
    fields: dict[str, Any] = {"kind": kind}
    if kind.isdigit():  # "61121" is shorthand for "code=61121"
        fields = {"kind": "code", "code": kind}
    elif head_value:
        value_key = {"latency": "latency_ms", "status": "status", "html": "status", "code": "code"}.get(kind)
        if value_key is None:
            raise ValueError(f"fault {kind!r} takes no value (got {parts[0]!r})")
        fields[value_key] = head_value
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected key=value in fault spec, got {part!r}")
        key = key.strip().replace("-", "_")
        if key == "ms":
            key = "latency_ms"
        fields[key] = value.strip()
    try:
        return Fault.from_mapping(fields)
    except ValueError as exc:
        raise ValueError(f"bad fault spec {spec!r}: {exc}") from None


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _opt_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _retry_after(value: Any) -> str | None:
    if value is None or value == "":
        return None
    seconds = float(value)
    if seconds < 0:
        raise ValueError("retry-after must not be negative")
    return str(int(seconds)) if seconds.is_integer() else str(seconds)


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
        """The pipeline if it exists in ``org_id`` (another org's pipeline is invisible, as in EnOS)."""
        with self.lock:
            found = self.pipelines.get(pipeline_id)
            return found if found is not None and found.org_id == org_id else None

    def list_pipelines(
        self, org_id: str, released_only: bool, page_no: int, page_size: int
    ) -> tuple[int, list[Pipeline]]:
        with self.lock:
            matching = [
                p for p in self.pipelines.values() if p.org_id == org_id and (p.released or not released_only)
            ]
        start = (page_no - 1) * page_size
        return len(matching), matching[start : start + page_size]

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
        with self.lock:
            self.apps.clear()
            self.pipelines.clear()
            self.state.clear()
            self.faults.clear()
            self.log.clear()
            self._tokens.clear()
            self._used_encryptions.clear()

    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        """Add apps, pipelines and state from a seed mapping (see ``demo_seed.yaml`` for the format).

        Validates everything before changing anything, so a bad seed leaves the store as it was.
        """
        if not isinstance(seed, Mapping):
            raise SeedError("a seed must be a mapping with 'apps' and/or 'pipelines'")
        unknown = set(seed) - {"apps", "pipelines"}
        if unknown:
            raise SeedError(f"unknown top-level seed key(s): {', '.join(sorted(map(str, unknown)))}")
        apps = [_seed_app(raw, f"apps[{i}]") for i, raw in enumerate(_seed_list(seed, "apps"))]
        pipelines = [
            _seed_pipeline(raw, f"pipelines[{i}]") for i, raw in enumerate(_seed_list(seed, "pipelines"))
        ]
        pairs = 0
        with self.lock:
            for org_id, pipeline_id, *_ in pipelines:
                existing = self.pipelines.get(pipeline_id)
                if existing is not None and existing.org_id != org_id:
                    raise SeedError(f"pipeline {pipeline_id} already belongs to org {existing.org_id}")
            for access_key, secret_key, orgs in apps:
                self.add_app(access_key, secret_key, orgs)
            for org_id, pipeline_id, status, name, released, blocks in pipelines:
                self.add_pipeline(org_id, pipeline_id, status, name, released)
                for stage, assets, points, value, time_ms in blocks:
                    pairs += self.set_pairs(org_id, pipeline_id, stage, assets, points, value, time_ms)
        return {"apps": len(apps), "pipelines": len(pipelines), "pairs": pairs}


def load_seed_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON (``.json``) or YAML seed file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path}: {exc.strerror or exc}") from None
    return parse_seed_text(text, str(path), as_json=path.suffix.lower() == ".json")


def demo_seed() -> dict[str, Any]:
    """The seed the command line uses by default (``demo_seed.yaml`` next to this module)."""
    resource = resources.files(__package__ or "enos_pulumi.simulator").joinpath(DEMO_SEED_NAME)
    return parse_seed_text(resource.read_text(encoding="utf-8"), DEMO_SEED_NAME, as_json=False)


def parse_seed_text(text: str, source: str, as_json: bool) -> dict[str, Any]:
    if as_json:
        try:
            loaded: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SeedError(f"seed {source} is not valid JSON: {exc}") from None
    else:
        import yaml  # a dependency of this package (and of pulumi)

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SeedError(f"seed {source} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SeedError(f"seed {source} must contain a mapping at the top level")
    return loaded


_SeedApp = tuple[str, str, list[str] | None]
_SeedBlock = tuple[str, list[str], list[str], Any, int | None]
_SeedPipeline = tuple[str, str, str, str | None, bool, list[_SeedBlock]]


def _seed_list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SeedError(f"seed '{key}' must be a list")
    return value


def _pick(raw: Mapping[str, Any], where: str, *names: str, required: bool = True) -> Any:
    for name in names:
        if name in raw and raw[name] is not None:
            return raw[name]
    if required:
        raise SeedError(f"{where}: missing '{names[0]}'")
    return None


def _seed_str(raw: Mapping[str, Any], where: str, *names: str, required: bool = True) -> str | None:
    value = _pick(raw, where, *names, required=required)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise SeedError(f"{where}: '{names[0]}' must be a non-empty string")
    return str(value)


def _seed_app(raw: Any, where: str) -> _SeedApp:
    if not isinstance(raw, Mapping):
        raise SeedError(f"{where}: expected a mapping")
    key = _seed_str(raw, where, "access_key", "accessKey", "appKey")
    secret = _seed_str(raw, where, "secret_key", "secretKey", "appSecret")
    assert key is not None and secret is not None
    orgs = _pick(raw, where, "orgs", required=False)
    if orgs is not None:
        orgs = _seed_ids(orgs, f"{where}.orgs")
    return key, secret, orgs


def _seed_pipeline(raw: Any, where: str) -> _SeedPipeline:
    if not isinstance(raw, Mapping):
        raise SeedError(f"{where}: expected a mapping")
    org = _seed_str(raw, where, "org", "org_id", "orgId")
    pid = _seed_str(raw, where, "id", "pipeline_id", "pipelineId")
    assert org is not None and pid is not None
    status = _seed_str(raw, where, "status", required=False) or "PAUSED"
    name = _seed_str(raw, where, "name", "pipelineName", required=False)
    released = raw.get("released", True)
    if not isinstance(released, bool):
        raise SeedError(f"{where}: 'released' must be true or false")
    state = raw.get("state") or {}
    if not isinstance(state, Mapping):
        raise SeedError(f"{where}.state: expected a mapping of stage instance name to assets/points")
    blocks: list[_SeedBlock] = []
    for stage, spec in state.items():
        specs = spec if isinstance(spec, list) else [spec]
        for i, block in enumerate(specs):
            blocks.append(_seed_block(str(stage), block, f"{where}.state.{stage}[{i}]"))
    return org, pid, status, name, released, blocks


def _seed_block(stage: str, raw: Any, where: str) -> _SeedBlock:
    if not isinstance(raw, Mapping):
        raise SeedError(f"{where}: expected a mapping with 'assets' and 'points'")
    assets = _seed_ids(_pick(raw, where, "assets"), f"{where}.assets")
    points = _seed_ids(_pick(raw, where, "points"), f"{where}.points")
    time_ms = raw.get("time")
    if time_ms is not None and (not isinstance(time_ms, int) or isinstance(time_ms, bool)):
        raise SeedError(f"{where}.time: expected an integer Unix time in milliseconds")
    return stage, assets, points, raw.get("value", 0.0), time_ms


def _seed_ids(raw: Any, where: str) -> list[str]:
    """IDs as a list, a comma-separated string, or a generated range ``{prefix, count[, start, width]}``.

    ``{prefix: inv, count: 3, width: 2}`` gives inv01, inv02, inv03 (numbers zero-padded to ``width``).
    """
    if isinstance(raw, str):
        ids = [part.strip() for part in raw.split(",")]
    elif isinstance(raw, list):
        ids = [str(item) for item in raw]
    elif isinstance(raw, Mapping):
        prefix, count, start = raw.get("prefix", ""), raw.get("count"), raw.get("start", 1)
        width = raw.get("width", 1)
        if (
            not isinstance(count, int)
            or not isinstance(start, int)
            or not isinstance(width, int)
            or count < 0
        ):
            raise SeedError(
                f"{where}: a generated range needs an integer 'count' (optional 'start', 'width')"
            )
        ids = [f"{prefix}{n:0{width}d}" for n in range(start, start + count)]
    else:
        raise SeedError(f"{where}: expected a list, a comma-separated string or {{prefix, count}}")
    if any(not item for item in ids):
        raise SeedError(f"{where}: empty ID")
    return ids
