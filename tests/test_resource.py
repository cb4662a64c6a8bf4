"""What a program registers for ``StageStateReset``, under ``pulumi.runtime.set_mocks``.

Mocks change Pulumi's process-wide runtime settings and config; the ``mocks`` fixture restores the
defaults afterwards so that no other test module runs "inside" a mocked program or a preview.
"""

from __future__ import annotations

import base64
import json
import pickletools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pulumi
import pytest
import yaml
from pulumi.runtime import config as runtime_config
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings

from enos_pulumi import ConfigurationError, StageStateReset
from enos_pulumi.provider import StageStateResetProvider
from enos_pulumi.testing import TYPE_TOKEN, capture_program, reset_pulumi_runtime, serialize_provider

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = REPO_ROOT / "examples" / "pipeline-release"
PROGRAM_PROJECT = "enos-pipeline-release"
PROJECT = "enos-resource-test"
FAKE_OUTPUTS = {
    "ids_hash": "f" * 64,
    "asset_count": 2,
    "point_count": 1,
    "request_count": 1,
    "request_ids": ["rid-1"],
    "reset_at": "2026-11-01T10:00:00.000000Z",
}
REGISTERED_KEYS = {
    "__provider",
    "org_id",
    "pipeline_id",
    "stage_instance_name",
    "asset_ids",
    "point_ids",
    "require_paused",
    "verify",
}


class Capture(pulumi.runtime.Mocks):
    """Records each registration; answers with the inputs plus plausible outputs."""

    def __init__(self) -> None:
        self.registered: dict[str, tuple[str, dict[str, Any]]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered[args.name] = (args.typ, dict(args.inputs))
        return f"{args.name}-id", {**args.inputs, **FAKE_OUTPUTS}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def _restore_runtime() -> None:
    reset_pulumi_runtime()


@pytest.fixture
def mocks() -> Iterator[Capture]:
    _restore_runtime()  # a fresh config dict: set_config mutates whatever dict is current
    capture = Capture()
    pulumi.runtime.set_mocks(capture, project=PROJECT, stack="dev", preview=False)
    try:
        yield capture
    finally:
        _restore_runtime()
        assert runtime_settings.get_monitor() is None
        assert not runtime_settings.is_dry_run()
        assert runtime_config.CONFIG.get() == {}


def make(**overrides: Any) -> StageStateReset:
    kwargs: dict[str, Any] = {
        "pipeline_id": "pl-1",
        "stage_instance_name": "FixedTimeWindowAggregator_1",
        "asset_ids": ["inv01", "inv02"],
        "point_ids": "INV.Temp",
    }
    kwargs.update(overrides)
    return StageStateReset("reset", **kwargs)


def decoded_provider(value: Any) -> tuple[Any, bytes]:
    assert isinstance(value, str)
    data = base64.b64decode(value)
    return dill.loads(data), data


# -- what is registered --------------------------------------------------------------------------------


@pulumi.runtime.test
def _register_and_read_outputs(capture: Capture) -> Any:
    reset = make(org_id="o-explicit", trigger=3)
    outputs = [getattr(reset, name) for name in (*FAKE_OUTPUTS, "trigger", "org_id")]

    def check(values: list[Any]) -> None:
        assert values[: len(FAKE_OUTPUTS)] == list(FAKE_OUTPUTS.values())
        assert values[-2:] == ["3", "o-explicit"]

    return pulumi.Output.all(*outputs).apply(check)


def test_type_token_inputs_and_output_attributes(mocks: Capture) -> None:
    _register_and_read_outputs(mocks)
    typ, inputs = mocks.registered["reset"]
    assert typ == TYPE_TOKEN == "pulumi-python:dynamic/enos:StageStateReset"
    assert set(inputs) == REGISTERED_KEYS | {"trigger"}  # outputs are declared, not sent
    assert inputs["org_id"] == "o-explicit"
    assert inputs["pipeline_id"] == "pl-1"
    assert inputs["stage_instance_name"] == "FixedTimeWindowAggregator_1"
    assert inputs["asset_ids"] == ["inv01", "inv02"]
    assert inputs["point_ids"] == "INV.Temp"
    assert inputs["trigger"] == "3"  # an integer travels as decimal text (as a float it loses digits)
    assert (inputs["require_paused"], inputs["verify"]) == (True, False)


@pulumi.runtime.test
def _register_default(**overrides: Any) -> Any:
    return make(**overrides).urn


def test_no_trigger_registers_no_trigger(mocks: Capture) -> None:
    runtime_config.set_config("enos:orgId", "o-config")
    _register_default(require_paused=False, verify=True)
    _, inputs = mocks.registered["reset"]
    assert set(inputs) == REGISTERED_KEYS
    assert (inputs["require_paused"], inputs["verify"]) == (False, True)


@pytest.mark.parametrize(
    ("explicit", "config", "env", "expected"),
    [
        ("o-explicit", "o-config", "o-env", "o-explicit"),
        (None, "o-config", "o-env", "o-config"),
        (None, None, "o-env", "o-env"),
        (None, "  ", " o-env ", "o-env"),  # a blank config value does not hide the environment
        ("", "o-config", None, "o-config"),  # org_id="" (an unset variable) means the default too
    ],
)
def test_org_id_resolution(
    mocks: Capture,
    monkeypatch: pytest.MonkeyPatch,
    explicit: str | None,
    config: str | None,
    env: str | None,
    expected: str,
) -> None:
    if config is not None:
        runtime_config.set_config("enos:orgId", config)
    if env is not None:
        monkeypatch.setenv("ENOS_ORG_ID", env)
    _register_default(org_id=explicit)
    assert mocks.registered["reset"][1]["org_id"] == expected


def test_org_id_from_set_all_config(mocks: Capture) -> None:
    runtime_config.set_all_config({"enos:orgId": "o-all", f"{PROJECT}:orgId": "o-wrong-namespace"})
    _register_default()
    assert mocks.registered["reset"][1]["org_id"] == "o-all"


def test_missing_org_id_is_a_clear_configuration_error(mocks: Capture) -> None:
    runtime_config.set_config(f"{PROJECT}:orgId", "o-wrong-namespace")
    with pytest.raises(ConfigurationError) as info:
        make()
    text = str(info.value)
    assert "org_id" in text and "enos:orgId" in text and "ENOS_ORG_ID" in text
    assert mocks.registered == {}


# -- the serialized provider ---------------------------------------------------------------------------


def test_provider_is_not_a_secret_and_decodes_to_an_empty_provider(mocks: Capture) -> None:
    _register_default(org_id="o-1", pipeline_id=pulumi.Output.secret("pl-secret"))
    _, inputs = mocks.registered["reset"]
    # Control: a secret input does arrive marked as a secret...
    assert rpc.is_rpc_secret(inputs["pipeline_id"])
    assert rpc.unwrap_rpc_secret(inputs["pipeline_id"]) == "pl-secret"
    # ...while __provider is plain text (serialize_as_secret_always = False).
    assert not rpc.is_rpc_secret(inputs["__provider"])
    # hostdriver.serialize_provider produces exactly what the resource registers.
    assert inputs["__provider"] == serialize_provider(StageStateResetProvider())
    provider, data = decoded_provider(inputs["__provider"])
    assert type(provider) is StageStateResetProvider
    # Pickled by reference with an empty instance dict: nothing but the class path.
    strings = [arg for _, arg, _ in pickletools.genops(data) if isinstance(arg, str)]
    assert strings == ["enos_pulumi.provider", "StageStateResetProvider"]
    opcodes = [op.name for op, _, _ in pickletools.genops(data) if op.name != "MEMOIZE"]
    assert opcodes[-3:] == ["EMPTY_DICT", "BUILD", "STOP"]
    assert provider._config == {} and provider._environ is None and provider._client_factory is None


def test_credentials_never_enter_registered_inputs(mocks: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    canaries = ["cfg-secret-canary-93c1", "env-secret-canary-41d0", "cfg-access-canary-7e2a"]
    runtime_config.set_all_config(
        {
            "enos:orgId": "o-1",
            "enos:apiGateway": "https://apim-canary.example.test",
            "enos:accessKey": canaries[2],
            "enos:secretKey": canaries[0],
        },
        ["enos:secretKey"],
    )
    monkeypatch.setenv("ENOS_SECRET_KEY", canaries[1])
    _register_default()
    _, inputs = mocks.registered["reset"]
    provider, data = decoded_provider(inputs["__provider"])
    text = json.dumps(inputs) + repr(vars(provider)) + data.decode("latin-1")
    for canary in [*canaries, "apim-canary"]:
        assert canary not in text


# -- the example program -------------------------------------------------------------------------------


def _demo_config() -> dict[str, Any]:
    stack = yaml.safe_load((PROGRAM / "Pulumi.demo.yaml").read_text())
    return dict(stack["config"])


def test_example_program_registers_a_valid_reset() -> None:
    try:
        registered = capture_program(PROGRAM, _demo_config(), PROGRAM_PROJECT, stack="demo")
    finally:
        _restore_runtime()
    assert set(registered) == {"window-agg-reset"}
    inputs = registered["window-agg-reset"]
    assert inputs["org_id"] == "o-demo"  # from stack config enos:orgId
    assert inputs["pipeline_id"] == "pl-demo-paused"
    assert inputs["stage_instance_name"] == "FixedTimeWindowAggregator_1"  # the program's default
    assert inputs["asset_ids"] == ["inv01", "inv02"]
    assert inputs["point_ids"] == ["INV.GenActivePW", "INV.Temp"]
    assert inputs["trigger"] == "2026-11"
    assert (inputs["require_paused"], inputs["verify"]) == (True, True)
    provider, _ = decoded_provider(inputs["__provider"])
    assert type(provider) is StageStateResetProvider
    # What it registers passes the provider's check unchanged (already canonical).
    result = provider.check({}, inputs)
    assert result.failures == []
    assert result.inputs["asset_ids"] == ["inv01", "inv02"]


def test_example_program_without_an_org_fails_clearly() -> None:
    config = _demo_config()
    del config["enos:orgId"]
    try:
        with pytest.raises(ConfigurationError, match="enos:orgId"):
            capture_program(PROGRAM, config, PROGRAM_PROJECT, stack="demo")
    finally:
        _restore_runtime()
