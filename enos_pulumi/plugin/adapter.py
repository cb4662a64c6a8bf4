"""``StageStateReset`` for the plugin: schema names and secrets around ``check_inputs``, ``diff_inputs``
and ``run_reset``, which hold the behaviour (the dynamic provider uses the same three).

Inputs arrive camelCase with secrets revealed (see :mod:`.wire`); they go to the shared functions in
snake_case and come back camelCase. An output is marked secret when an input it is computed from was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..enos.ids import JoinedIds, ids_hash_joined
from ..enos.settings import ORG_ID_KEYS
from ..inputs import Failure, check_inputs, diff_inputs, is_unknown, joined
from .schema import INPUTS, OUTPUTS, camel, camel_names_in
from .wire import unknown

__all__ = ["Checked", "DiffPlan", "check", "diff", "outputs", "preview_outputs", "to_snake"]

_INPUT_NAMES = {p.camel: p.name for p in INPUTS}
_OUTPUT_NAMES = {p.camel: p.name for p in OUTPUTS}
_REPLACE_KINDS = ("org_id", "pipeline_id", "stage_instance_name")
#: Outputs only a reset can tell: unknown in a preview.
_CALL_OUTPUTS = ("request_count", "request_ids", "reset_at", "paused_by_reset")


def to_snake(props: Mapping[str, Any], outputs: bool = False) -> tuple[dict[str, Any], list[Failure]]:
    """``props`` by their snake_case names; a name the schema does not know is a failure."""
    names = _OUTPUT_NAMES if outputs else _INPUT_NAMES
    snake: dict[str, Any] = {}
    failures: list[Failure] = []
    for key, value in props.items():
        if key in names:
            snake[names[key]] = value
        else:
            known = ", ".join(sorted(names))
            failures.append((key, f"is not an input of StageStateReset; its inputs are {known}"))
    return snake, failures


@dataclass(frozen=True)
class Checked:
    """Check's answer: the checked inputs (camelCase), which of them are secret, the failures."""

    inputs: dict[str, Any]
    secrets: frozenset[str]
    failures: list[Failure]


def check(
    news: Mapping[str, Any],
    secrets: frozenset[str],
    config: Mapping[str, Any],
    config_secrets: frozenset[str],
    environ: Mapping[str, str],
) -> Checked:
    """``check_inputs`` on the program's inputs; ``orgId`` defaults to the provider's ``enos:orgId``, then
    ``ENOS_ORG_ID`` (the dynamic resource reads the same two in the program). ``config_secrets`` names
    the settings (``enos:orgId``) that were given as secrets."""
    snake, unknown = to_snake(news)
    if snake.get("org_id") is None:
        config_key, env_var = ORG_ID_KEYS
        default = config.get(config_key) or environ.get(env_var)
        if isinstance(default, str) and default.strip():
            snake["org_id"] = default
            if config_key in config_secrets:
                secrets = secrets | {"orgId"}
    # Failures never quote a secret input's value, whatever part of it they would show.
    inputs, failures = check_inputs(snake, {_INPUT_NAMES[k] for k in secrets if k in _INPUT_NAMES})
    named = [(camel(name), camel_names_in(reason)) for name, reason in failures]
    return Checked({camel(k): v for k, v in inputs.items()}, secrets, unknown + named)


@dataclass(frozen=True)
class DiffPlan:
    """Diff's answer by input name: what changed, which of those replace the reset."""

    changed: list[str]
    replaces: list[str]


def _ids_changed(name: str, old_inputs: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    old, new = old_inputs.get(name), news.get(name)
    if old is None or is_unknown(old) or is_unknown(new) or new is None:
        return True
    # Checked inputs are canonical (sorted, no repeats) in either form: their joined texts compare.
    return bool(joined(old) != joined(new))


def diff(old_outputs: Mapping[str, Any], news: Mapping[str, Any], old_inputs: Mapping[str, Any]) -> DiffPlan:
    """``diff_inputs`` (on the stored outputs and the checked inputs), told by input name: its
    ``ids_hash`` becomes whichever of ``assetIds`` and ``pointIds`` changed, so ``replaceOnChanges``
    on either works."""
    olds, _ = to_snake(old_outputs, outputs=True)
    new, _ = to_snake(news)
    old_in, _ = to_snake(old_inputs)
    result = diff_inputs(olds, new)
    changed: list[str] = []
    for key in result.changed:
        if key == "ids_hash":
            ids = [n for n in ("asset_ids", "point_ids") if _ids_changed(n, old_in, new)]
            changed += ids or ["asset_ids", "point_ids"]
        else:
            changed.append(key)
    return DiffPlan([camel(k) for k in changed], [camel(k) for k in result.replaces])


def outputs(outs: Mapping[str, Any], secrets: frozenset[str]) -> tuple[dict[str, Any], frozenset[str]]:
    """A reset's outputs (snake_case, from ``run_reset`` or :func:`preview_outputs`) by schema name, and
    those to store as secrets: each output computed from a secret input."""
    secret_inputs = {_INPUT_NAMES[k] for k in secrets if k in _INPUT_NAMES}
    marked = {p.camel for p in OUTPUTS if secret_inputs.intersection(p.derived_from)}
    return {camel(k): v for k, v in outs.items()}, frozenset(marked)


def preview_outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    """What a reset would return, as far as it is known without calling EnOS: the target, the trigger,
    the ID sets' hash and sizes; the rest unknown."""
    known: dict[str, Any] = {key: props.get(key) for key in (*_REPLACE_KINDS, "trigger")}
    assets, points = props.get("asset_ids"), props.get("point_ids")
    if assets is None or points is None or is_unknown(assets) or is_unknown(points):
        known.update(ids_hash=unknown(), asset_count=unknown(), point_count=unknown())
    else:
        assets_joined, points_joined = joined(assets), joined(points)
        known.update(
            ids_hash=ids_hash_joined(assets_joined, points_joined),
            asset_count=len(JoinedIds(assets_joined)),
            point_count=len(JoinedIds(points_joined)),
        )
    known.update({key: unknown() for key in _CALL_OUTPUTS})
    return known
