"""A reset's inputs: checked and canonicalized at preview (Check), compared (Diff), read at reset time.

Plain dicts in and out, so the dynamic provider and the provider plugin share one behaviour: failures
are ``(input name, reason)`` pairs, a diff is the changed keys and the replace keys. Inputs that depend
on resources not created yet arrive as ``pulumi.output.Unknown`` (preview only).

``pause_pipeline``, ``resume_execution_mode``, ``resume_kafka_rate`` and ``resume_resource_config``
never cause a reset by themselves: the diff does not look at them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.output import Unknown

from .enos.errors import InvalidIdsError
from .enos.ids import canonical_ids, describe_value, ids_hash_joined
from .enos.pipeline_control import EXECUTION_MODES
from .pausing import Resume

__all__ = [
    "BOOL_INPUTS",
    "DEFAULT_KAFKA_RATE",
    "ID_INPUTS",
    "LIST_FORM_MAX_IDS",
    "REPLACE_KEYS",
    "Diff",
    "Failure",
    "check_inputs",
    "diff_inputs",
    "is_unknown",
    "joined",
    "normalize_trigger",
    "resume_of",
]

# Check hands back a canonical list (readable, item by item, in a preview) up to this many IDs, and
# one comma-joined string above it: a list of a million strings costs seconds on every gRPC crossing,
# the same IDs as one string cost milliseconds. Diffs compare ids_hash, so the form never causes a reset.
LIST_FORM_MAX_IDS = 1000

ID_INPUTS = ("asset_ids", "point_ids")
# The target: required strings, and a change of any of them is a replacement.
REPLACE_KEYS = ("org_id", "pipeline_id", "stage_instance_name")
BOOL_INPUTS = {"require_paused": True, "verify": False, "pause_pipeline": False}
DEFAULT_KAFKA_RATE = 1000
_MAX_KAFKA_RATE = 1_000_000_000

#: A problem with one input: (input name, reason). The engine shows the name with the reason.
Failure = tuple[str, str]


@dataclass(frozen=True)
class Diff:
    """What changed between the stored outputs and the checked inputs: ``changed`` names the keys
    (``ids_hash`` for the ID sets), ``replaces`` those that force a replacement."""

    changed: list[str]
    replaces: list[str]


def is_unknown(value: Any) -> bool:
    """An input that depends on a resource not created yet (only seen during preview)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, (list, tuple)):
        return any(is_unknown(item) for item in value)
    return False


def normalize_trigger(value: Any) -> str | None:
    """Triggers compare as text: 3, 3.0 and "3" are the same trigger; None and "" mean no trigger.

    Numbers reach the provider as floats (exact only up to 2**53), so the resource sends an integer as
    its decimal text; a whole float is written without ".0".
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a trigger must be a string or a number, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"a trigger must be a finite number, got {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise TypeError(f"a trigger must be a string or a number, got {describe_value(value)}")


def joined(value: Any) -> str:
    """Canonical checked IDs (a list or a comma-joined string) as the comma-joined string."""
    return value if isinstance(value, str) else ",".join(value)


def _ids_changed(olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    try:
        digest = ids_hash_joined(joined(news["asset_ids"]), joined(news["point_ids"]))
    except (KeyError, TypeError):  # missing, or Unknown (alone or inside a list) during preview
        return True
    return digest != olds.get("ids_hash")


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], list[Failure]]:
    """Validate and canonicalize the inputs; every problem is a CheckFailure naming its input."""
    inputs = dict(news)
    failures: list[Failure] = []
    for name in REPLACE_KEYS:
        value = news.get(name)
        if is_unknown(value):
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            hint = ": pass org_id, or set stack config enos:orgId / ENOS_ORG_ID" if name == "org_id" else ""
            failures.append((name, f"required and must not be empty{hint}"))
        elif not isinstance(value, str):
            failures.append((name, f"must be a string, got {describe_value(value)}"))
        else:
            inputs[name] = value.strip()
    for name in ID_INPUTS:
        value = news.get(name)
        if isinstance(value, Unknown):
            continue
        if value is None:
            failures.append((name, "required: a non-empty list of IDs or one comma-separated string"))
            continue
        try:
            ids = canonical_ids(value, name)
        except InvalidIdsError as exc:
            # Only now look for unknown items: scanning a million-item list on every check is slow.
            if not is_unknown(value):
                # The engine shows the input's name with the reason; the reason need not repeat it.
                failures.append((name, exc.reason))
            continue
        as_list = isinstance(value, (list, tuple)) and len(ids) <= LIST_FORM_MAX_IDS
        inputs[name] = list(ids) if as_list else ",".join(ids)
    for name, default in BOOL_INPUTS.items():
        value = news.get(name)
        if value is None:
            inputs[name] = default
        elif not isinstance(value, bool) and not is_unknown(value):
            failures.append((name, f"must be true or false, got {describe_value(value)}"))
    trigger = news.get("trigger")
    if not is_unknown(trigger):
        try:
            inputs["trigger"] = normalize_trigger(trigger)
        except TypeError as exc:
            failures.append(("trigger", str(exc)))
    failures += check_pause_inputs(news, inputs)
    return inputs, failures


def diff_inputs(olds: Mapping[str, Any], news: Mapping[str, Any]) -> Diff:
    """Replace on a new target; update on new IDs or a new non-empty trigger; nothing else changes.

    ``olds`` are the stored outputs (which hold ``ids_hash``), ``news`` the checked inputs.
    """
    replaces = [key for key in REPLACE_KEYS if is_unknown(news.get(key)) or news.get(key) != olds.get(key)]
    changed = list(replaces)
    if _ids_changed(olds, news):
        changed.append("ids_hash")
    trigger = news.get("trigger")
    if is_unknown(trigger) or (trigger is not None and trigger != olds.get("trigger")):
        changed.append("trigger")
    return Diff(changed, replaces)


def _unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


def _whole_numbers(value: Any) -> Any:
    """Numbers cross the engine as floats: 2.0 goes back to 2 so EnOS sees the integer it was given."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_whole_numbers(v) for v in value]
    return value


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def check_pause_inputs(news: Mapping[str, Any], inputs: dict[str, Any]) -> list[Failure]:
    """Validate and normalize the pause/resume inputs into ``inputs``; failures name the input."""
    failures: list[Failure] = []
    pause = news.get("pause_pipeline")
    mode = news.get("resume_execution_mode")
    if not _unknown(mode):
        if mode is None or (isinstance(mode, str) and not mode.strip()):
            inputs.pop("resume_execution_mode", None)
            if pause is True:
                failures.append(
                    (
                        "resume_execution_mode",
                        "is required when pause_pipeline is true: 'standalone' or 'cluster', how the "
                        "pipeline runs when the reset starts it again",
                    )
                )
        elif not isinstance(mode, str) or mode.strip().lower() not in EXECUTION_MODES:
            failures.append(("resume_execution_mode", f"must be 'standalone' or 'cluster', got {mode!r:.60}"))
        else:
            inputs["resume_execution_mode"] = mode.strip().lower()
    rate = news.get("resume_kafka_rate")
    if rate is None:
        inputs["resume_kafka_rate"] = DEFAULT_KAFKA_RATE
    elif not _unknown(rate):
        whole = (
            isinstance(rate, (int, float))
            and not isinstance(rate, bool)
            and math.isfinite(rate)
            and float(rate).is_integer()
        )
        if not whole or not 0 < rate <= _MAX_KAFKA_RATE:
            failures.append(
                (
                    "resume_kafka_rate",
                    f"must be a whole number of records per second from 1 to {_MAX_KAFKA_RATE:,}, "
                    f"got {rate!r:.60}",
                )
            )
        else:
            inputs["resume_kafka_rate"] = int(rate)
    config = news.get("resume_resource_config")
    if config is not None and not _unknown(config):
        if not isinstance(config, Mapping):
            failures.append(
                (
                    "resume_resource_config",
                    f"must be a mapping (sent as Operate Pipeline's resourceConfig), "
                    f"got {type(config).__name__}",
                )
            )
        elif not _finite(config):
            failures.append(
                (
                    "resume_resource_config",
                    "holds a number that is not finite (NaN or Infinity), which JSON cannot carry",
                )
            )
        else:
            inputs["resume_resource_config"] = _whole_numbers(config)
    return failures


def resume_of(props: Mapping[str, Any]) -> Resume | None:
    """How to start the pipeline again after the reset, or None when the reset may not pause it."""
    if props.get("pause_pipeline") is not True:
        return None
    config = props.get("resume_resource_config")
    return Resume(
        execution_mode=str(props["resume_execution_mode"]),
        kafka_rate=int(props.get("resume_kafka_rate") or DEFAULT_KAFKA_RATE),
        resource_config=dict(config) if isinstance(config, Mapping) else None,
    )
