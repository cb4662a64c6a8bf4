"""The inputs that let a reset pause and resume a running pipeline: checked at preview, read at reset.

``pause_pipeline``, ``resume_execution_mode``, ``resume_kafka_rate`` and ``resume_resource_config``
never cause a reset by themselves: the diff does not look at them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pulumi.dynamic import CheckFailure
from pulumi.output import Unknown

from .pausing import Resume
from .pipeline_control import EXECUTION_MODES

__all__ = ["DEFAULT_KAFKA_RATE", "check_pause_inputs", "resume_of"]

DEFAULT_KAFKA_RATE = 1000
_MAX_KAFKA_RATE = 1_000_000_000


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


def check_pause_inputs(news: Mapping[str, Any], inputs: dict[str, Any]) -> list[CheckFailure]:
    """Validate and normalize the pause/resume inputs into ``inputs``; failures name the input."""
    failures: list[CheckFailure] = []
    pause = news.get("pause_pipeline")
    mode = news.get("resume_execution_mode")
    if not _unknown(mode):
        if mode is None or (isinstance(mode, str) and not mode.strip()):
            inputs.pop("resume_execution_mode", None)
            if pause is True:
                failures.append(
                    CheckFailure(
                        "resume_execution_mode",
                        "is required when pause_pipeline is true: 'standalone' or 'cluster', how the "
                        "pipeline runs when the reset starts it again",
                    )
                )
        elif not isinstance(mode, str) or mode.strip().lower() not in EXECUTION_MODES:
            failures.append(
                CheckFailure("resume_execution_mode", f"must be 'standalone' or 'cluster', got {mode!r:.60}")
            )
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
                CheckFailure(
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
                CheckFailure(
                    "resume_resource_config",
                    f"must be a mapping (sent as Operate Pipeline's resourceConfig), "
                    f"got {type(config).__name__}",
                )
            )
        elif not _finite(config):
            failures.append(
                CheckFailure(
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
