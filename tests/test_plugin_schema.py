"""The plugin's package schema: valid for Pulumi's package format, documented, and naming exactly the inputs
``check_inputs`` reads and the outputs ``run_reset`` returns (a new input without a schema entry fails
here)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from enos_pulumi.enos.client import EnosClient
from enos_pulumi.enos.settings import SETTINGS_KEYS, resolve_settings
from enos_pulumi.inputs import REPLACE_KEYS, check_inputs
from enos_pulumi.plugin import TOKEN, package_schema
from enos_pulumi.plugin.schema import CONFIG, INPUTS, OUTPUTS, camel, camel_names_in
from enos_pulumi.plugin.server import plugin_version
from enos_pulumi.reset import run_reset
from enos_pulumi.simulator import Simulator
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE

pytest_plugins = ["tests.support.plugin_fixtures"]

METASCHEMA = Path(__file__).resolve().parent / "data" / "pulumi-package-schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    metaschema = json.loads(METASCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(metaschema)
    return jsonschema.Draft202012Validator(metaschema)


def _all_properties(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    resource = schema["resources"][TOKEN]
    for section, props in (
        ("config", schema["config"]["variables"]),
        ("provider", schema["provider"]["inputProperties"]),
        ("inputs", resource["inputProperties"]),
        ("outputs", resource["properties"]),
    ):
        for name, spec in props.items():
            yield f"{section}.{name}", spec


def test_the_schema_is_a_valid_pulumi_package_schema(validator: jsonschema.protocols.Validator) -> None:
    validator.validate(package_schema(plugin_version()))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda s: s.update(name="9enos"),
        lambda s: s.update(resources={"StageStateReset": s["resources"][TOKEN]}),
        lambda s: s["resources"][TOKEN]["inputProperties"]["assetIds"].update(oneOf=[{"type": "array"}]),
        lambda s: s["resources"][TOKEN]["properties"]["assetCount"].update(type="int"),
        lambda s: s.update(resource={}),
        lambda s: s["config"].update(defaults="x"),
    ],
    ids=["package name", "type token", "array without items", "unknown type", "unknown key", "defaults"],
)
def test_the_metaschema_refuses_what_pulumi_refuses(
    validator: jsonschema.protocols.Validator, spoil: Any
) -> None:
    """The rules are not vacuous: each spoiled schema fails."""
    schema = copy.deepcopy(package_schema("1.2.3"))
    spoil(schema)
    assert not validator.is_valid(schema)


def test_every_property_is_described() -> None:
    undescribed = [
        name
        for name, spec in _all_properties(package_schema("1.0.0"))
        if len(spec.get("description", "")) < 10
    ]
    assert undescribed == []


def test_required_names_exist_and_secret_key_is_secret() -> None:
    schema = package_schema("1.0.0")
    resource = schema["resources"][TOKEN]
    assert set(resource["requiredInputs"]) == {"pipelineId", "stageInstanceName", "assetIds", "pointIds"}
    assert set(resource["required"]) <= set(resource["properties"])
    assert schema["config"]["variables"] == schema["provider"]["inputProperties"]
    secret = [name for name, spec in schema["config"]["variables"].items() if spec.get("secret")]
    assert secret == ["secretKey"]
    config_keys = {key.split(":", 1)[1] for key, _ in SETTINGS_KEYS.values()} | {"orgId"}
    assert set(schema["config"]["variables"]) == config_keys


def test_the_replacing_inputs_are_the_target() -> None:
    replacing = {
        name for name, spec in _all_properties(package_schema("1.0.0")) if spec.get("willReplaceOnChanges")
    }
    assert replacing == {f"inputs.{camel(key)}" for key in REPLACE_KEYS}


class _Spy(Mapping[str, Any]):
    """Inputs that record every name looked up."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.values.get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"pipeline_id": "p", "stage_instance_name": "s", "org_id": "o", "asset_ids": ["a"], "point_ids": "x"},
        {"pause_pipeline": True, "resume_execution_mode": "cluster", "resume_resource_config": {"a": 1.0}},
        {"trigger": 3.0, "require_paused": False, "verify": True, "resume_kafka_rate": 10.0},
    ],
)
def test_the_schema_names_every_input_check_inputs_reads(values: dict[str, Any]) -> None:
    """Holds both ways: an input ``check_inputs`` learns to read (a new option) needs a schema entry, and
    a schema input nothing reads is stale."""
    spy = _Spy(values)
    check_inputs(spy)
    read = spy.read | set(values)
    assert read == {p.name for p in INPUTS}


def test_the_schema_names_every_output_run_reset_returns(simulator: Simulator) -> None:
    settings = resolve_settings(None, {}, simulator.environment())
    props = {
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_PAUSED_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "asset_ids": ["a1"],
        "point_ids": ["p1"],
        "trigger": "t",
    }
    outs = run_reset(EnosClient(settings), props)
    assert set(outs) == {p.name for p in OUTPUTS}
    derived = {name for p in OUTPUTS for name in p.derived_from}
    assert derived <= {p.name for p in INPUTS}


def test_check_failures_speak_the_schema_names() -> None:
    assert (
        camel_names_in("is required when pause_pipeline is true") == "is required when pausePipeline is true"
    )
    assert (
        camel_names_in("pass org_id, or set enos:orgId / ENOS_ORG_ID")
        == "pass orgId, or set enos:orgId / ENOS_ORG_ID"
    )
    assert camel_names_in("ids_hash of asset_ids_x") == "ids_hash of asset_ids_x"  # only input names
    assert {p.camel for p in CONFIG} >= {"apiGateway", "secretKey", "operationTimeoutSeconds"}


def test_get_schema_over_grpc_answers_the_schema_of_the_installed_version(plugin: Any) -> None:
    served = plugin.host.get_schema()
    assert served == json.loads(json.dumps(package_schema(plugin_version())))
    assert served["version"] == plugin.host.get_plugin_version() == plugin_version()
