"""``StageStateReset``: a Pulumi resource that resets an EnOS operator's stage state."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from .provider import StageStateResetProvider
from .settings import resolve_org_id

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


def _default_org_id() -> str:
    """``enos:orgId`` from the stack config, else ``ENOS_ORG_ID``, read in the program."""
    return resolve_org_id(None, {"enos:orgId": pulumi.Config("enos").get("orgId")}, os.environ)


class StageStateReset(pulumi.dynamic.Resource, module="enos", name="StageStateReset"):
    """Deletes an operator's intermediate state (EnOS *Delete Stage State*) when created or updated.

    It runs again only when ``org_id``, ``pipeline_id`` or ``stage_instance_name`` change (a replace),
    when the canonical asset/point ID sets change, or when ``trigger`` changes to a new non-empty value.
    Preview, refresh and destroy never delete anything. With ``pause_pipeline=True`` a RUNNING pipeline
    is paused for the reset and started again (``resume_execution_mode`` "standalone" or "cluster",
    ``resume_kafka_rate`` records/s, optional ``resume_resource_config``).
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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "org_id": _default_org_id() if _blank(org_id) else org_id,
            "pipeline_id": pipeline_id,
            "stage_instance_name": stage_instance_name,
            "asset_ids": asset_ids,
            "point_ids": point_ids,
            "trigger": trigger,
            "require_paused": require_paused,
            "verify": verify,
            "pause_pipeline": pause_pipeline,
            "resume_execution_mode": resume_execution_mode,
            "resume_kafka_rate": resume_kafka_rate,
            "resume_resource_config": resume_resource_config,
        }
        # None-valued keys are not sent as inputs but make the outputs available as attributes.
        props.update(dict.fromkeys(_OUTPUTS))
        super().__init__(StageStateResetProvider(), resource_name, props, opts)
