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
from pulumi.output import Unknown
from pulumi.runtime import config as runtime_config
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings

from enos_pulumi import ConfigurationError, StageStateReset
from enos_pulumi.inputs import LIST_FORM_MAX_IDS
from enos_pulumi.provider import StageStateResetProvider
from enos_pulumi.testing import TYPE_TOKEN, capture_program, reset_pulumi_runtime, serialize_provider

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

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
    "pause_pipeline",
    "require_known_stage_type",
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
    assert inputs["pause_pipeline"] is False


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
    # enos_pulumi.testing.serialize_provider produces exactly what the resource registers.
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


# -- program-side forms: big lists, integer triggers, org_id --------------------------------------------

BIG = [f"inv{i:05d}" for i in range(LIST_FORM_MAX_IDS + 1)]


@pulumi.runtime.test
def _register_with(**overrides: Any) -> Any:
    return make(**overrides).urn


@pytest.mark.parametrize(
    ("given", "registered"),
    [
        (BIG, ",".join(BIG)),  # above the list-form bound: one string
        (tuple(BIG), ",".join(BIG)),
        (BIG[:LIST_FORM_MAX_IDS], BIG[:LIST_FORM_MAX_IDS]),  # at the bound: a list (readable previews)
        ([*BIG[:-1], "a,b"], [*BIG[:-1], "a,b"]),  # a comma inside an ID: left for Check to name
        ([*BIG[:-1], 7], [*BIG[:-1], 7.0]),  # not a string: left for Check to name
    ],
)
def test_big_plain_lists_are_joined_in_the_program(mocks: Capture, given: Any, registered: Any) -> None:
    _register_with(org_id="o-1", asset_ids=given, point_ids=given)
    _, inputs = mocks.registered["reset"]
    assert inputs["asset_ids"] == registered
    assert inputs["point_ids"] == registered


def test_a_list_of_separate_outputs_stays_a_list(mocks: Capture) -> None:
    ids = [pulumi.Output.from_input(i) for i in BIG]
    _register_with(org_id="o-1", asset_ids=ids)
    assert mocks.registered["reset"][1]["asset_ids"] == BIG


def test_an_output_list_is_joined_and_stays_secret(mocks: Capture) -> None:
    _register_with(org_id="o-1", asset_ids=pulumi.Output.secret(BIG), point_ids=pulumi.Output.secret(["p1"]))
    _, inputs = mocks.registered["reset"]
    assert rpc.is_rpc_secret(inputs["asset_ids"])
    assert rpc.unwrap_rpc_secret(inputs["asset_ids"]) == ",".join(BIG)
    assert rpc.unwrap_rpc_secret(inputs["point_ids"]) == ["p1"]  # small: still a list


def test_an_unknown_output_list_stays_unknown_in_preview() -> None:
    _restore_runtime()
    capture = Capture()
    pulumi.runtime.set_mocks(capture, project=PROJECT, stack="dev", preview=True)
    try:
        unknown = pulumi.Output(set(), asyncio_future(None), asyncio_future(False))
        _register_with(org_id="o-1", asset_ids=unknown)
    finally:
        _restore_runtime()
    _, inputs = capture.registered["reset"]
    assert isinstance(inputs["asset_ids"], Unknown)  # not joined, not resolved: unknown to the engine


def asyncio_future(value: Any) -> Any:
    import asyncio

    future: asyncio.Future[Any] = asyncio.get_event_loop().create_future()
    future.set_result(value)
    return future


@pytest.mark.parametrize(
    ("trigger", "registered"),
    [
        (20261130123456791, "20261130123456791"),  # above 2**53: a float would round it
        (3, "3"),
        (3.0, 3.0),  # a float is sent as it is; the provider writes it "3"
        ("release-1", "release-1"),
        (True, True),  # left for Check, which refuses a boolean
    ],
)
def test_integer_triggers_travel_as_decimal_text(mocks: Capture, trigger: Any, registered: Any) -> None:
    _register_with(org_id="o-1", trigger=trigger)
    assert mocks.registered["reset"][1]["trigger"] == registered


def test_an_integer_trigger_output_travels_as_text_too(mocks: Capture) -> None:
    _register_with(org_id="o-1", trigger=pulumi.Output.secret(20261130123456791))
    registered = mocks.registered["reset"][1]["trigger"]
    assert rpc.is_rpc_secret(registered) and rpc.unwrap_rpc_secret(registered) == "20261130123456791"


@pytest.mark.parametrize("resolved", ["", "  "])
def test_an_org_id_output_resolving_empty_means_the_default(mocks: Capture, resolved: str) -> None:
    runtime_config.set_config("enos:orgId", "o-config")
    _register_with(org_id=pulumi.Output.from_input(resolved))
    assert mocks.registered["reset"][1]["org_id"] == "o-config"


def test_an_org_id_output_keeps_its_value_and_secretness(mocks: Capture) -> None:
    runtime_config.set_config("enos:orgId", "o-config")
    _register_with(org_id=pulumi.Output.secret("o-given"))
    registered = mocks.registered["reset"][1]["org_id"]
    assert rpc.is_rpc_secret(registered) and rpc.unwrap_rpc_secret(registered) == "o-given"


def test_an_org_id_output_resolving_empty_without_a_default_fails_clearly(mocks: Capture) -> None:
    # Raised while the SDK resolves the input, so it arrives wrapped in the SDK's ValueError.
    with pytest.raises(ValueError, match=r"org_id is not set: .*enos:orgId.*ENOS_ORG_ID"):
        _register_with(org_id=pulumi.Output.from_input(""))
    assert mocks.registered == {}


def test_a_secret_org_id_config_stays_secret(mocks: Capture) -> None:
    runtime_config.set_all_config({"enos:orgId": "o-secret"}, ["enos:orgId"])
    _register_with()
    registered = mocks.registered["reset"][1]["org_id"]
    assert rpc.is_rpc_secret(registered) and rpc.unwrap_rpc_secret(registered) == "o-secret"


def test_a_plain_org_id_config_is_not_made_secret(mocks: Capture) -> None:
    runtime_config.set_all_config({"enos:orgId": "o-plain"}, [])
    _register_with()
    assert mocks.registered["reset"][1]["org_id"] == "o-plain"


def test_a_blank_secret_org_id_config_falls_back_to_the_environment(
    mocks: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime_config.set_all_config({"enos:orgId": " "}, ["enos:orgId"])
    monkeypatch.setenv("ENOS_ORG_ID", "o-env")
    _register_with()
    assert mocks.registered["reset"][1]["org_id"] == "o-env"


# -- end to end: program -> engine -> Pulumi's provider host -> simulator --------------------------------

END_TO_END = """
import pulumi
from enos_pulumi import StageStateReset

config = pulumi.Config()
reset = StageStateReset(
    "window",
    pipeline_id="pl-demo-paused",
    stage_instance_name="FixedTimeWindowAggregator_1",
    asset_ids=config.require_object("assets"),
    point_ids=["INV.Temp"],
    trigger=int(config.require("release")),
)
pulumi.export("trigger", reset.trigger)
"""


def _program(directory: Path) -> Path:
    (directory / "__main__.py").write_text(END_TO_END)
    (directory / "Pulumi.yaml").write_text("name: resource-e2e\nruntime: python\n")
    return directory


def test_integer_triggers_beyond_2_53_reset_when_they_change(enos_stack: Any, tmp_path: Path) -> None:
    stack = enos_stack(_program(tmp_path), config={"assets": ["inv01"], "release": "20261130123456789"})
    assert stack.up().ops == {"window": "create"}
    stack.config["release"] = "20261130123456791"  # the same double as ...789
    result = stack.up()
    assert result.ops == {"window": "update"}
    assert result.outputs["trigger"] == "20261130123456791"
    assert stack.up().ops == {"window": "same"}


def test_a_big_id_list_reaches_the_engine_as_one_string_and_resets(
    enos_stack: Any, enos_simulator: Any, tmp_path: Path
) -> None:
    assets = [f"inv{i:05d}" for i in range(LIST_FORM_MAX_IDS + 1)]
    enos_simulator.set_pairs("o-demo", "pl-demo-paused", "FixedTimeWindowAggregator_1", assets, ["INV.Temp"])
    stack = enos_stack(_program(tmp_path), config={"assets": list(reversed(assets)), "release": "1"})
    assert stack.up().ops == {"window": "create"}
    assert stack.state["window"].inputs["asset_ids"] == ",".join(assets)  # joined, then canonical
    left = enos_simulator.stage_pairs("o-demo", "pl-demo-paused", "FixedTimeWindowAggregator_1")
    assert left.isdisjoint((asset, "INV.Temp") for asset in assets)
    stack.config["assets"] = assets  # another order, same set: nothing to do
    assert stack.up().ops == {"window": "same"}
