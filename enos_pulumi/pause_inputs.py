"""The pause inputs (``pause_pipeline=True``): checked and normalized for
:func:`enos_pulumi.inputs.check_inputs`, and turned into a :class:`~enos_pulumi.pause_steps.Resume` at
reset time. None of them causes a reset."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pulumi.output import Unknown

from .enos.pipeline_control import EXECUTION_MODES
from .pause_steps import RESUME_ALWAYS, RESUME_IF_PAUSED_BY_RESET, RESUME_POLICIES, Resume

__all__ = ["DEFAULT_KAFKA_RATE", "check_pause_inputs", "resume_of"]

DEFAULT_KAFKA_RATE = 1000
_MAX_KAFKA_RATE = 1_000_000_000

Failure = tuple[str, str]


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


def _not_json(value: Any, where: str) -> str | None:
    """Where in ``value`` (named ``where``) a value is that JSON cannot carry, and what it is; None if
    none is. A value unknown at preview is taken as it will come."""
    if value is None or isinstance(value, (str, bool, int, Unknown)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value!r}, a number that is not finite"
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key that is not a string ({type(key).__name__})"
            if (found := _not_json(item, f"{where}[{key!r:.40}]")) is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        return next((f for i, v in enumerate(value) if (f := _not_json(v, f"{where}[{i}]"))), None)
    return f"{where} is a {type(value).__name__}"


def _mode(news: Mapping[str, Any], inputs: dict[str, Any]) -> Failure | None:
    mode = news.get("resume_execution_mode")
    if _unknown(mode):
        return None
    if mode is None or (isinstance(mode, str) and not mode.strip()):
        inputs.pop("resume_execution_mode", None)
        if news.get("pause_pipeline") is True:
            return (
                "resume_execution_mode",
                "is required when pause_pipeline is true: 'standalone' or 'cluster', how the pipeline runs "
                "when the reset starts it again",
            )
        return None
    if not isinstance(mode, str) or mode.strip().lower() not in EXECUTION_MODES:
        return ("resume_execution_mode", f"must be 'standalone' or 'cluster', got {mode!r:.60}")
    inputs["resume_execution_mode"] = mode.strip().lower()
    return None


def _rate(news: Mapping[str, Any], inputs: dict[str, Any]) -> Failure | None:
    rate = news.get("resume_kafka_rate")
    if rate is None:
        inputs["resume_kafka_rate"] = DEFAULT_KAFKA_RATE
        return None
    if _unknown(rate):
        return None
    number = isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate)
    if not number or not float(rate).is_integer() or not 0 < rate <= _MAX_KAFKA_RATE:
        return (
            "resume_kafka_rate",
            f"must be a whole number of records per second from 1 to {_MAX_KAFKA_RATE:,}, got {rate!r:.60}",
        )
    inputs["resume_kafka_rate"] = int(rate)
    return None


def _config(news: Mapping[str, Any], inputs: dict[str, Any]) -> Failure | None:
    config = news.get("resume_resource_config")
    if config is None or _unknown(config):
        return None
    if not isinstance(config, Mapping):
        what = f"must be a mapping (sent as Operate Pipeline's resourceConfig), got {type(config).__name__}"
        return ("resume_resource_config", what)
    if (found := _not_json(config, "resume_resource_config")) is not None:
        return (
            "resume_resource_config",
            f"must hold JSON values only (objects with string keys, arrays, strings, finite numbers, true, "
            f"false, null): it is sent as Operate Pipeline's resourceConfig, and {found}",
        )
    inputs["resume_resource_config"] = _whole_numbers(config)
    return None


def _policy(news: Mapping[str, Any], inputs: dict[str, Any]) -> Failure | None:
    policy = news.get("resume_policy")
    if policy is None:
        inputs.pop("resume_policy", None)
        return None
    if _unknown(policy):
        return None
    value = policy.strip().lower() if isinstance(policy, str) else None
    if value not in RESUME_POLICIES:
        return (
            "resume_policy",
            f"must be '{RESUME_IF_PAUSED_BY_RESET}' (the default: start the pipeline after the reset only if "
            f"the reset paused it) or '{RESUME_ALWAYS}' (start it even if it was PAUSED already), "
            f"got {policy!r:.60}",
        )
    if value == RESUME_ALWAYS and news.get("pause_pipeline") in (False, None):
        return (
            "resume_policy",
            "'always' needs pause_pipeline=true: without it a reset never starts anything",
        )
    inputs["resume_policy"] = value
    return None


def check_pause_inputs(news: Mapping[str, Any], inputs: dict[str, Any]) -> list[Failure]:
    """Validate and normalize the pause/resume inputs into ``inputs``; failures name the input."""
    checks = (_mode, _rate, _config, _policy)
    return [failure for check in checks if (failure := check(news, inputs)) is not None]


def resume_of(props: Mapping[str, Any]) -> Resume | None:
    """How (and when) to start the pipeline again after the reset, or None when it may not pause it."""
    if props.get("pause_pipeline") is not True:
        return None
    config = props.get("resume_resource_config")
    return Resume(
        execution_mode=str(props["resume_execution_mode"]),
        kafka_rate=int(props.get("resume_kafka_rate") or DEFAULT_KAFKA_RATE),
        resource_config=dict(config) if isinstance(config, Mapping) else None,
        policy=str(props.get("resume_policy") or RESUME_IF_PAUSED_BY_RESET),
    )
