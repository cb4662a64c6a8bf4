"""``StageStateReset``: a Pulumi resource that resets an EnOS operator's stage state."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from .enos.settings import resolve_org_id
from .inputs import LIST_FORM_MAX_IDS
from .provider import StageStateResetProvider

__all__ = ["StageStateReset"]

IdsInput = pulumi.Input[str] | pulumi.Input[Sequence[pulumi.Input[str]]]

_OUTPUTS = (
    "ids_hash",
    "asset_count",
    "point_count",
    "request_count",
    "request_ids",
    "reset_at",
    "paused_by_reset",
)


def _blank(value: object) -> bool:
    # org_id="" (e.g. an unset variable) means "use the default", not "no organization".
    return value is None or (isinstance(value, str) and not value.strip())


def _default_org_id() -> pulumi.Input[str]:
    """``enos:orgId`` from the stack config, else ``ENOS_ORG_ID``, read in the program.

    A config value set with ``--secret`` stays secret (as ``Config.get_secret`` would keep it): the
    resource's ``org_id`` input and output are then stored encrypted.
    """
    from pulumi.runtime.config import get_config, is_config_secret

    key = "enos:orgId"
    configured = get_config(key)
    org_id = resolve_org_id(None, {key: configured}, os.environ)
    if is_config_secret(key) and not _blank(configured):
        return pulumi.Output.secret(org_id)
    return org_id


def _org_id(value: Any) -> Any:
    if isinstance(value, pulumi.Output):
        # An Output that resolves to "" means the default too; secretness and unknown-ness carry over.
        return value.apply(lambda resolved: _default_org_id() if _blank(resolved) else resolved)
    return _default_org_id() if _blank(value) else value


def _trigger(value: Any) -> Any:
    """Integers travel as decimal text: Pulumi sends numbers as doubles, exact only up to 2**53."""

    def as_text(resolved: Any) -> Any:
        is_int = isinstance(resolved, int) and not isinstance(resolved, bool)
        return str(resolved) if is_int else resolved

    return value.apply(as_text) if isinstance(value, pulumi.Output) else as_text(value)


def _joined_if_big(items: Any) -> Any:
    if not isinstance(items, (list, tuple)) or len(items) <= LIST_FORM_MAX_IDS:
        return items
    try:
        joined = ",".join(items)
    except TypeError:  # an Output or a non-string item: left for Check to name
        return items
    if joined.count(",") != len(items) - 1:
        return items  # an ID with a comma in it: joining would silently make two IDs of one
    return joined


def _compact_ids(value: Any) -> Any:
    """A list of more than ``LIST_FORM_MAX_IDS`` plain IDs as one comma-joined string.

    Pulumi converts a list item by item every time it crosses to the engine and on to the provider host
    (seconds for a million IDs, at every Check); one string crosses in milliseconds. The provider keeps
    such sets as one string anyway, and the diff compares the ID sets' hash, so the form changes nothing.
    A list of separate Outputs stays a list; an Output list is joined once resolved (it stays secret or
    unknown).
    """
    if isinstance(value, pulumi.Output):
        return value.apply(_joined_if_big)
    return _joined_if_big(value)


class StageStateReset(pulumi.dynamic.Resource, module="enos", name="StageStateReset"):
    """Deletes an operator's intermediate state (EnOS *Delete Stage State*) when created or updated.

    It runs again only when ``org_id``, ``pipeline_id`` or ``stage_instance_name`` change (a replace),
    when the canonical asset/point ID sets change, or when ``trigger`` changes to a new non-empty value.
    Preview, refresh and destroy never delete anything. With ``pause_pipeline=True`` a RUNNING pipeline
    is paused for the reset and started again (``resume_execution_mode`` "standalone" or "cluster",
    ``resume_kafka_rate`` records/s, optional ``resume_resource_config``); ``resume_policy="always"``
    starts it after the reset even if it was PAUSED already. ``require_known_stage_type=False`` lets
    a stage instance name through that starts with no operator type this version knows.
    """

    org_id: pulumi.Output[str]
    pipeline_id: pulumi.Output[str]
    stage_instance_name: pulumi.Output[str]
    trigger: pulumi.Output[str | None]
    #: Hex SHA-256 of the canonical asset and point ID sets.
    ids_hash: pulumi.Output[str]
    asset_count: pulumi.Output[int]
    point_count: pulumi.Output[int]
    #: Delete Stage State requests the last reset sent (one requestId each, in ``request_ids``).
    request_count: pulumi.Output[int]
    request_ids: pulumi.Output[list[str]]
    #: ISO-8601 UTC time of the last successful reset.
    reset_at: pulumi.Output[str]
    #: Whether the last reset paused the (RUNNING) pipeline and started it again (``pause_pipeline``).
    paused_by_reset: pulumi.Output[bool]

    def __init__(
        self,
        resource_name: str,
        *,
        pipeline_id: pulumi.Input[str],
        stage_instance_name: pulumi.Input[str],
        asset_ids: IdsInput,
        point_ids: IdsInput,
        org_id: pulumi.Input[str] | None = None,
        trigger: pulumi.Input[str | int | float] | None = None,
        require_paused: pulumi.Input[bool] = True,
        verify: pulumi.Input[bool] = False,
        pause_pipeline: pulumi.Input[bool] = False,
        resume_execution_mode: pulumi.Input[str] | None = None,
        resume_kafka_rate: pulumi.Input[int] | None = None,
        resume_resource_config: pulumi.Input[Mapping[str, Any]] | None = None,
        resume_policy: pulumi.Input[str] | None = None,
        require_known_stage_type: pulumi.Input[bool] = True,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "org_id": _org_id(org_id),
            "pipeline_id": pipeline_id,
            "stage_instance_name": stage_instance_name,
            "asset_ids": _compact_ids(asset_ids),
            "point_ids": _compact_ids(point_ids),
            "trigger": _trigger(trigger),
            "require_paused": require_paused,
            "verify": verify,
            "pause_pipeline": pause_pipeline,
            "resume_execution_mode": resume_execution_mode,
            "resume_kafka_rate": resume_kafka_rate,
            "resume_resource_config": resume_resource_config,
            "resume_policy": resume_policy,
            "require_known_stage_type": require_known_stage_type,
        }
        # None-valued keys are not sent as inputs but make the outputs available as attributes.
        props.update(dict.fromkeys(_OUTPUTS))
        super().__init__(StageStateResetProvider(), resource_name, props, opts)
