"""A reset's inputs: checked and canonicalized at preview (Check), compared (Diff), read at reset time.

Plain dicts in and out, so the dynamic provider and the provider plugin share one behaviour: failures
are ``(input name, reason)`` pairs, a diff is the changed keys and the replace keys. Inputs that depend
on resources not created yet arrive as ``pulumi.output.Unknown`` (preview only).

``pause_pipeline``, ``resume_execution_mode``, ``resume_kafka_rate``, ``resume_resource_config``,
``resume_policy`` and ``require_known_stage_type`` never cause a reset by themselves: the diff does not
look at them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.output import Unknown

from .enos.errors import InvalidIdsError
from .enos.ids import canonical_ids, ids_hash_joined, name_problem
from .enos.quoting import HIDDEN, PLAIN, Show, describe_value
from .enos.stage_types import STAGE_TYPES, stage_type_of, suggest_stage_type
from .pause_inputs import DEFAULT_KAFKA_RATE, check_pause_inputs, resume_of

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
BOOL_INPUTS = {
    "require_paused": True,
    "verify": False,
    "pause_pipeline": False,
    "require_known_stage_type": True,
}

# The pause inputs' reasons quote the bad value and their checks take no Show: for a secret one the
# reason is this, which quotes nothing.
_SECRET_PAUSE_REASON = (
    "is not valid; its value is secret, so the reason (which would quote it) is not shown: see this "
    "input in docs/resource.md"
)

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


def normalize_trigger(value: Any, show: Show = PLAIN) -> str | None:
    """Triggers compare as text: 3, 3.0 and "3" are the same trigger; None and "" mean no trigger.

    Numbers reach the provider as floats (exact only up to 2**53), so the resource sends an integer as
    its decimal text; a whole float is written without ".0". A bad value is quoted through ``show``.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a trigger must be a string or a number, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"a trigger must be a finite number, got {show(value)}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise TypeError(f"a trigger must be a string or a number, got {describe_value(value, show)}")


def joined(value: Any) -> str:
    """Canonical checked IDs (a list or a comma-joined string) as the comma-joined string."""
    return value if isinstance(value, str) else ",".join(value)


def _ids_changed(olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    try:
        digest = ids_hash_joined(joined(news["asset_ids"]), joined(news["point_ids"]))
    except (KeyError, TypeError):  # missing, or Unknown (alone or inside a list) during preview
        return True
    return digest != olds.get("ids_hash")


def _check_target(
    news: Mapping[str, Any], inputs: dict[str, Any], shows: Mapping[str, Show]
) -> list[Failure]:
    """org_id, pipeline_id and stage_instance_name: required strings, no control character, not absurdly
    long, and a stage of an operator type that keeps stage state (unless told otherwise)."""
    failures: list[Failure] = []
    for name in REPLACE_KEYS:
        value, show = news.get(name), shows.get(name, PLAIN)
        if is_unknown(value):
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            hint = ": pass org_id, or set stack config enos:orgId / ENOS_ORG_ID" if name == "org_id" else ""
            failures.append((name, f"required and must not be empty{hint}"))
        elif not isinstance(value, str):
            failures.append((name, f"must be a string, got {describe_value(value, show)}"))
        elif (problem := name_problem(value.strip(), show)) is not None:
            failures.append((name, problem))
        else:
            inputs[name] = value.strip()
    stage = inputs.get("stage_instance_name")
    checked = not any(name == "stage_instance_name" for name, _ in failures)
    required = news.get("require_known_stage_type")
    if checked and isinstance(stage, str) and required in (True, None) and stage_type_of(stage) is None:
        failures.append(
            ("stage_instance_name", _unknown_stage(stage, shows.get("stage_instance_name", PLAIN)))
        )
    return failures


def _unknown_stage(stage: str, show: Show) -> str:
    # The nearest type says what a secret name looks like: offered only for a name that may be quoted.
    near = None if show.secret else suggest_stage_type(stage)
    guess = f"did you mean {near}? " if near is not None else ""
    return (
        f"{show(stage)} does not start with an operator type whose stage state EnOS can delete "
        f"({', '.join(STAGE_TYPES)}): {guess}EnOS would refuse it (61107) after a pause_pipeline reset had "
        f"paused the pipeline. If EnOS has added an operator type this version does not know, set "
        f"require_known_stage_type=False"
    )


def check_inputs(
    news: Mapping[str, Any], secret_inputs: Collection[str] = ()
) -> tuple[dict[str, Any], list[Failure]]:
    """Validate and canonicalize the inputs; every problem is a CheckFailure naming its input.

    A failure quotes the bad value (or part of it), except for the inputs named in ``secret_inputs``
    (those the program marked secret, when the caller knows them): their values are never quoted.
    """
    inputs = dict(news)
    shows = {name: HIDDEN for name in secret_inputs}
    failures = _check_target(news, inputs, shows)
    for name in ID_INPUTS:
        value = news.get(name)
        if isinstance(value, Unknown):
            continue
        if value is None:
            failures.append((name, "required: a non-empty list of IDs or one comma-separated string"))
            continue
        try:
            ids = canonical_ids(value, name, shows.get(name, PLAIN))
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
            failures.append(
                (name, f"must be true or false, got {describe_value(value, shows.get(name, PLAIN))}")
            )
    trigger = news.get("trigger")
    if not is_unknown(trigger):
        try:
            inputs["trigger"] = normalize_trigger(trigger, shows.get("trigger", PLAIN))
        except TypeError as exc:
            failures.append(("trigger", str(exc)))
    failures += [
        (name, _SECRET_PAUSE_REASON if name in shows else reason)
        for name, reason in check_pause_inputs(news, inputs)
    ]
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
