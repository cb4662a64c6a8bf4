"""The plugin's Pulumi package schema, built from one table of inputs, outputs and provider settings.

Every name the plugin shows a program is the camelCase form of the snake_case name ``check_inputs``
and ``run_reset`` use (``asset_ids`` <-> ``assetIds``); the tables below are the only place the plugin
lists them, and a test holds them equal to what ``check_inputs`` reads and ``run_reset`` returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..enos.settings import ORG_ID_KEYS, SETTINGS_KEYS

__all__ = [
    "CONFIG",
    "INPUTS",
    "OUTPUTS",
    "PACKAGE",
    "RESERVED_CONFIG_KEYS",
    "TOKEN",
    "Prop",
    "camel",
    "package_schema",
]

PACKAGE = "enos"
TOKEN = f"{PACKAGE}:index:StageStateReset"
#: Provider inputs the engine itself adds (the plugin version, where to download it): never ours to check.
RESERVED_CONFIG_KEYS = frozenset({"version", "pluginDownloadURL"})

_STRING: dict[str, Any] = {"type": "string"}
_IDS: dict[str, Any] = {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}


def camel(snake: str) -> str:
    """``stage_instance_name`` -> ``stageInstanceName``."""
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True)
class Prop:
    """One property: its snake_case name (as ``inputs.py``/``reset.py`` use it), schema type, description.

    ``derived_from`` (outputs only) names the inputs an output is computed from: it is stored as a secret
    when any of them was one.
    """

    name: str
    type: dict[str, Any]
    description: str
    required: bool = False
    replace: bool = False
    secret: bool = False
    derived_from: tuple[str, ...] = field(default=())

    @property
    def camel(self) -> str:
        return camel(self.name)

    def spec(self) -> dict[str, Any]:
        spec = dict(self.type, description=self.description)
        if self.replace:
            spec["willReplaceOnChanges"] = True
        if self.secret:
            spec["secret"] = True
        return spec


INPUTS: tuple[Prop, ...] = (
    Prop("pipeline_id", _STRING, "The EnOS pipeline ID. A change replaces the reset.", True, True),
    Prop(
        "stage_instance_name",
        _STRING,
        "The operator (stage instance) whose intermediate state is deleted, e.g. "
        "`FixedTimeWindowAggregator_1`. A change replaces the reset.",
        True,
        True,
    ),
    Prop(
        "asset_ids",
        _IDS,
        "The asset IDs: a non-empty list, or one comma-separated string. Surrounding spaces and repeats "
        "are dropped and the set is sorted, so reordering or repeating IDs changes nothing; a new set "
        "resets again.",
        True,
    ),
    Prop("point_ids", _IDS, "The measurement point IDs, in the same forms as `assetIds`.", True),
    Prop(
        "org_id",
        _STRING,
        "The organization (OU) ID. Default: provider config `enos:orgId`, then the environment variable "
        "`ENOS_ORG_ID`, read when the inputs are checked. A change replaces the reset.",
        replace=True,
    ),
    Prop(
        "trigger",
        {"oneOf": [{"type": "string"}, {"type": "number"}]},
        "Any string or number. Changing it to a new non-empty value runs the reset again; removing it "
        "does nothing.",
    ),
    Prop(
        "require_paused",
        {"type": "boolean"},
        "Default true: before deleting, check that the pipeline is PAUSED and fail clearly if not.",
    ),
    Prop(
        "verify",
        {"type": "boolean"},
        "Default false: after deleting, read the state back (Get Stage State) and fail if any remains.",
    ),
    Prop(
        "pause_pipeline",
        {"type": "boolean"},
        "Default false. When the pipeline is RUNNING at reset time: pause it, wait until it is PAUSED, "
        "reset, start it again and wait until it is RUNNING. Already PAUSED: reset and leave it paused.",
    ),
    Prop(
        "resume_execution_mode",
        _STRING,
        "`standalone` or `cluster`: how the pipeline runs when the reset starts it again. Required when "
        "`pausePipeline` is true.",
    ),
    Prop(
        "resume_kafka_rate",
        {"type": "integer"},
        "Records per second for the restart (Operate Pipeline `kafkaRate`), a whole number > 0. "
        "Default 1000.",
    ),
    Prop(
        "resume_resource_config",
        {"type": "object", "additionalProperties": {"$ref": "pulumi.json#/Any"}},
        "Optional mapping sent as Operate Pipeline's `resourceConfig` when the pipeline is started again.",
    ),
    Prop(
        "resume_policy",
        _STRING,
        "`if-paused-by-reset` (default): start the pipeline after the reset only if the reset paused it; "
        "`always`: start it even if it was PAUSED already (an earlier, interrupted reset may have left it "
        "so). Needs `pausePipeline`.",
    ),
    Prop(
        "require_known_stage_type",
        {"type": "boolean"},
        "Default true: `stageInstanceName` must start with an operator type that keeps stage state, else "
        "the preview fails, naming the nearest. False for an operator type EnOS added after this version.",
    ),
)

_IDS_FROM = ("asset_ids", "point_ids")
OUTPUTS: tuple[Prop, ...] = (
    Prop("org_id", _STRING, "The organization the reset ran in.", True, derived_from=("org_id",)),
    Prop("pipeline_id", _STRING, "The pipeline that was reset.", True, derived_from=("pipeline_id",)),
    Prop(
        "stage_instance_name",
        _STRING,
        "The operator whose state was deleted.",
        True,
        derived_from=("stage_instance_name",),
    ),
    Prop("trigger", _STRING, "The trigger of the last reset, as text.", derived_from=("trigger",)),
    Prop(
        "ids_hash",
        _STRING,
        "Hex SHA-256 of the canonical asset and point ID sets (the ID lists are not stored).",
        True,
        derived_from=_IDS_FROM,
    ),
    Prop("asset_count", {"type": "integer"}, "How many distinct asset IDs.", True, derived_from=_IDS_FROM),
    Prop("point_count", {"type": "integer"}, "How many distinct point IDs.", True, derived_from=_IDS_FROM),
    Prop(
        "request_count",
        {"type": "integer"},
        "The Delete Stage State requests the last reset made.",
        True,
        derived_from=_IDS_FROM,
    ),
    Prop(
        "request_ids",
        {"type": "array", "items": {"type": "string"}},
        "The EnOS requestIds of the last reset's delete requests, for audit.",
        True,
    ),
    Prop("reset_at", _STRING, "ISO-8601 UTC time of the last successful reset.", True),
    Prop(
        "paused_by_reset",
        {"type": "boolean"},
        "Whether the last reset paused the pipeline and started it again.",
        True,
        derived_from=("pause_pipeline",),
    ),
)

_SETTING_TEXT: dict[str, tuple[dict[str, Any], str]] = {
    "api_gateway": (_STRING, "API gateway base URL, e.g. `https://apim-ppe1.envisioniot.com`."),
    "access_key": (_STRING, "Application access key (appKey)."),
    "secret_key": (_STRING, "Application secret key (appSecret); set it with `pulumi config set --secret`."),
    "parallel_requests": ({"type": "integer"}, "Delete requests in flight at once, 1-32 (default 4)."),
    "max_pairs_per_request": (
        {"type": "integer"},
        "Largest assets x points product per request, up to the EnOS limit of 100000 (the default).",
    ),
    "retry_deadline": ({"type": "number"}, "Seconds within which a request's retries start (default 120)."),
    "read_timeout": ({"type": "number"}, "Seconds one socket read may wait (default 60)."),
    "connect_timeout": ({"type": "number"}, "Seconds a connection may take (default 10)."),
    "attempt_timeout": ({"type": "number"}, "Seconds one attempt may take, answer included (default 60)."),
    "reset_timeout": (
        {"type": "number"},
        "Seconds after which a reset starts no new request (default 1800).",
    ),
    "operation_timeout": (
        {"type": "number"},
        "Seconds to wait for a pipeline to reach PAUSED or RUNNING (default 300).",
    ),
    "auth_scheme": (_STRING, "`apim-signature` (default) or `bearer`."),
    "ca_bundle": (_STRING, "Path of a PEM file of CA certificates that issued the gateway's certificate."),
}


def _config_props() -> tuple[Prop, ...]:
    props = []
    for name, (config_key, env_var) in SETTINGS_KEYS.items():
        spec, text = _SETTING_TEXT[name]
        key = config_key.split(":", 1)[1]
        text = f"{text} Else the environment variable `{env_var}`."
        props.append(Prop(key, spec, text, secret=name == "secret_key"))
    org_key, org_env = ORG_ID_KEYS
    props.append(
        Prop(
            org_key.split(":", 1)[1],
            _STRING,
            f"Default organization for resets without `orgId`. Else the environment variable `{org_env}`.",
        )
    )
    return tuple(props)


#: Provider settings by their schema name (``apiGateway``); stack config ``enos:<name>``.
CONFIG: tuple[Prop, ...] = _config_props()


def _object(props: tuple[Prop, ...], key: str) -> dict[str, Any]:
    return {key: {p.camel: p.spec() for p in props}}


def package_schema(version: str) -> dict[str, Any]:
    """The schema ``GetSchema`` answers and ``pulumi package add`` generates SDKs from."""
    variables = {p.name: p.spec() for p in CONFIG}
    resource: dict[str, Any] = {
        "description": (
            "Deletes an EnOS stream-processing operator's intermediate state (Delete Stage State) when "
            "it is created, when its ID sets change or when `trigger` changes to a new value. Preview, "
            "refresh and destroy call nothing."
        ),
        **_object(INPUTS, "inputProperties"),
        "requiredInputs": [p.camel for p in INPUTS if p.required],
        **_object(OUTPUTS, "properties"),
        "required": [p.camel for p in OUTPUTS if p.required],
    }
    return {
        "name": PACKAGE,
        "displayName": "EnOS stage state reset",
        "version": version,
        "description": "Declare an EnOS stream-processing stage state reset as a Pulumi resource.",
        "keywords": ["enos", "envision", "stream-processing", "category/utility", "kind/native"],
        "license": "Apache-2.0",
        "config": {"variables": variables},
        "provider": {
            "description": "The EnOS connection. Settings not given here come from the `ENOS_*` environment.",
            "inputProperties": variables,
        },
        "resources": {TOKEN: resource},
    }


_SNAKE_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def camel_names_in(text: str) -> str:
    """``text`` with every snake_case input name it mentions in its schema (camelCase) spelling."""
    known = {p.name for p in INPUTS}
    return _SNAKE_NAME.sub(lambda m: camel(m.group(0)) if m.group(0) in known else m.group(0), text)
