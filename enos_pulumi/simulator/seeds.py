"""Seeds: the apps, pipelines and stage state a simulator starts with (files, mappings, the demo seed).

A seed is validated completely before anything is applied (:func:`parse_seed`), so a bad seed leaves the
simulator as it was; :meth:`.store.Store.seed` applies a parsed one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "SEED_FORMAT",
    "ParsedSeed",
    "SeedError",
    "demo_seed",
    "load_seed_file",
    "parse_seed",
    "parse_seed_text",
]

DEMO_SEED_NAME = "demo_seed.yaml"
MAX_RANGE = 10_000_000  # IDs per generated range: enough for any test, not enough to exhaust memory

#: The seed format, as ``enos-simulator --help`` shows it (demo_seed.yaml's comments say the same).
SEED_FORMAT = """\
Seed format (JSON, or YAML; --seed FILE, POST /__admin/seed):
  apps:                          applications that may get tokens
    - access_key: demo-access-key
      secret_key: demo-secret-key
      orgs: [o-demo]             optional: the organizations it may act on (default: any)
  pipelines:
    - org: o-demo                organization (pipeline IDs are unique across organizations)
      id: pl-demo-paused
      name: Demo pipeline        optional (default: the ID)
      status: PAUSED             optional: PAUSED (default), RUNNING, STOPPED, PUBLISHED
      released: true             optional: listed by List Pipelines with ifReleased=true (default)
      state:                     stage instance name -> a block, or a list of blocks
        FixedTimeWindowAggregator_1:
          assets: [inv01, inv02] every asset x point pair gets state
          points: INV.Temp,INV.Volt
          value: 42.0            optional (default 0.0)
          time: 1700000000000    optional Unix ms (default: now)
  IDs are a list, a comma-separated string, or a generated range {prefix, count, start, width}:
  {prefix: inv, count: 3, width: 2} gives inv01, inv02, inv03. camelCase keys (accessKey, orgId,
  pipelineId, ...) are accepted too."""


class SeedError(ValueError):
    """A seed (file or mapping) is malformed; the message names the offending entry."""


SeedApp = tuple[str, str, list[str] | None]
SeedBlock = tuple[str, list[str], list[str], Any, int | None]
SeedPipeline = tuple[str, str, str, str | None, bool, list[SeedBlock]]


@dataclass
class ParsedSeed:
    apps: list[SeedApp]
    pipelines: list[SeedPipeline]


def parse_seed(seed: Any) -> ParsedSeed:
    """Validate a seed mapping completely; raises :class:`SeedError` naming the bad entry."""
    if not isinstance(seed, Mapping):
        raise SeedError("a seed must be a mapping with 'apps' and/or 'pipelines'")
    unknown = set(seed) - {"apps", "pipelines"}
    if unknown:
        raise SeedError(f"unknown top-level seed key(s): {', '.join(sorted(map(str, unknown)))}")
    apps = [_seed_app(raw, f"apps[{i}]") for i, raw in enumerate(_seed_list(seed, "apps"))]
    pipelines = [
        _seed_pipeline(raw, f"pipelines[{i}]") for i, raw in enumerate(_seed_list(seed, "pipelines"))
    ]
    return ParsedSeed(apps, pipelines)


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
        except (ValueError, RecursionError) as exc:
            raise SeedError(f"seed {source} is not usable JSON: {type(exc).__name__}") from None
    else:
        import yaml  # a dependency of this package (and of pulumi)

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SeedError(f"seed {source} is not valid YAML: {exc}") from None
        except RecursionError:
            raise SeedError(f"seed {source} is nested too deeply") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SeedError(f"seed {source} must contain a mapping at the top level")
    return loaded


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


def _seed_app(raw: Any, where: str) -> SeedApp:
    if not isinstance(raw, Mapping):
        raise SeedError(f"{where}: expected a mapping")
    key = _seed_str(raw, where, "access_key", "accessKey", "appKey")
    secret = _seed_str(raw, where, "secret_key", "secretKey", "appSecret")
    assert key is not None and secret is not None
    orgs = _pick(raw, where, "orgs", required=False)
    if orgs is not None:
        orgs = _seed_ids(orgs, f"{where}.orgs")
    return key, secret, orgs


def _seed_pipeline(raw: Any, where: str) -> SeedPipeline:
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
    blocks: list[SeedBlock] = []
    for stage, spec in state.items():
        specs = spec if isinstance(spec, list) else [spec]
        for i, block in enumerate(specs):
            blocks.append(_seed_block(str(stage), block, f"{where}.state.{stage}[{i}]"))
    return org, pid, status, name, released, blocks


def _seed_block(stage: str, raw: Any, where: str) -> SeedBlock:
    if not isinstance(raw, Mapping):
        raise SeedError(f"{where}: expected a mapping with 'assets' and 'points'")
    assets = _seed_ids(_pick(raw, where, "assets"), f"{where}.assets")
    points = _seed_ids(_pick(raw, where, "points"), f"{where}.points")
    time_ms = raw.get("time")
    if time_ms is not None and (not isinstance(time_ms, int) or isinstance(time_ms, bool)):
        raise SeedError(f"{where}.time: expected an integer Unix time in milliseconds")
    value = raw.get("value", 0.0)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise SeedError(f"{where}.value: expected a JSON value (number, string, list, mapping...)") from None
    return stage, assets, points, value, time_ms


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
            or isinstance(count, bool)
            or not 0 <= count <= MAX_RANGE
            or not 0 <= width <= 64
        ):
            raise SeedError(
                f"{where}: a generated range needs an integer 'count' up to {MAX_RANGE:,} "
                "(optional integer 'start', and 'width' up to 64)"
            )
        ids = [f"{prefix}{n:0{width}d}" for n in range(start, start + count)]
    else:
        raise SeedError(f"{where}: expected a list, a comma-separated string or {{prefix, count}}")
    if any(not item for item in ids):
        raise SeedError(f"{where}: empty ID")
    return ids
