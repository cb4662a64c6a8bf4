"""The plugin as a process: what the CLI passes and reads, provider settings, Cancel and SIGTERM with a
reset under way, the checkout's PulumiPlugin.yaml entry point, and the YAML/TypeScript examples."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import yaml
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from enos_pulumi.plugin import TOKEN, package_schema
from enos_pulumi.plugin.server import parse_args, plugin_version
from enos_pulumi.plugin.service import CANCELLED, STOPPING
from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import HostError, PluginHost, is_secret, secret
from enos_pulumi.testing._plugin_host import plugin_command
from enos_pulumi.testing._wire import to_struct
from tests.support.fixtures_simulator import SIM_ACCESS_KEY, SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_SECRET_KEY
from tests.support.plugin_fixtures import plugin_inputs

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.plugin_fixtures import HostedPlugin, PluginFactory

pytest_plugins = ["tests.support.plugin_fixtures"]

ROOT = Path(__file__).resolve().parents[1]


def wait_for(condition: Any, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)  # another process's progress: no clock to inject


def test_arguments_the_cli_passes_are_accepted() -> None:
    assert (
        parse_args(["--logtostderr", "-v=9", "--tracing", "file:/t", "127.0.0.1:5"]).engine_address
        == "127.0.0.1:5"
    )
    assert parse_args(["--logflow", "127.0.0.1:7", "extra"]).engine_address == "127.0.0.1:7"
    assert parse_args([]).engine_address is None
    out = subprocess.run([*plugin_command(), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout == f"{plugin_version()}\n"


def test_stdout_carries_only_the_port(simulator: Simulator) -> None:
    """Progress lines and anything else go to stderr: the engine reads stdout's first line as the port."""
    command = [*plugin_command(), "--logtostderr", "-v=9", "--tracing", "file:/dev/null", "127.0.0.1:1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = process.stdout.readline().decode()  # type: ignore[union-attr]
        assert re.fullmatch(r"\d+\n", port)
        stub = provider_pb2_grpc.ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{port.strip()}"))
        args = {"apiGateway": simulator.base_url, "accessKey": SIM_ACCESS_KEY, "secretKey": SIM_SECRET_KEY}
        stub.Configure(provider_pb2.ConfigureRequest(args=to_struct(args), acceptSecrets=True), timeout=30)
        request = provider_pb2.CreateRequest(
            urn="urn:x", properties=to_struct(plugin_inputs(pipelineId="pl-paused"))
        )
        assert stub.Create(request, timeout=60).id.startswith("reset-")
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert out == b"" and process.returncode == 0
    assert b"Delete Stage State" in err and SIM_SECRET_KEY.encode() not in err


def test_provider_settings_are_checked_and_the_secret_key_always_stored_secret(
    module_simulator: Simulator, plugin_factory: PluginFactory
) -> None:
    host = plugin_factory(module_simulator).host
    checked, failures = host.check_config(
        {}, {"apiGatway": "https://x", "secretKey": "plain", "version": "1.0.0"}
    )
    assert failures[0][0] == "apiGatway" and "apiGateway" in failures[0][1]
    assert is_secret(checked["secretKey"]) and checked["version"] == "1.0.0"
    _, failures = host.check_config({}, {"accessKey": 42.0})
    assert (
        failures == [("accessKey", "must be a string, got a number (42.0)")]
        or "must be a string" in failures[0][1]
    )
    # A gateway `pulumi up` would refuse fails CheckConfig, at preview, with no secret in sight.
    _, failures = host.check_config({}, {"apiGateway": "http://user:pw@gateway.example.com"})
    assert [name for name, _ in failures] == ["apiGateway"]
    assert "https" in failures[0][1] and "pw" not in failures[0][1]
    diff = host.stub.DiffConfig(
        provider_pb2.DiffRequest(
            urn="urn:p", olds=to_struct({"accessKey": "a"}), news=to_struct({"accessKey": "b"})
        )
    )
    assert (diff.changes, list(diff.replaces), list(diff.diffs)) == (2, [], ["accessKey"])


_BAD_SETTINGS = {
    "operationTimeoutSeconds": "five",
    "authScheme": "oauth2",
    "parallelRequests": 0.0,
    "resetTimeoutSeconds": "0.5",
    "caBundle": "/nonexistent/ca.pem",
    "maxPairsPerRequest": secret("qzjx-200000"),
    "version": "1.0.0",
}


def test_check_config_refuses_every_setting_up_would_refuse_and_quotes_no_secret_one(
    tmp_path: Path,
) -> None:
    """By the rules `pulumi up` applies, at preview, without credentials; a caBundle path this machine lacks
    is the update machine's business; a setting from the environment counts where the config has none."""
    env = {**_base_env(), "PULUMI_PROJECT": "p", "ENOS_CONNECT_TIMEOUT_SECONDS": "0"}
    with PluginHost(cwd=tmp_path, env=env) as host:
        _, failures = host.check_config({}, _BAD_SETTINGS)
    reasons = dict(failures)
    assert sorted(reasons) == [
        "authScheme",
        "connectTimeoutSeconds",
        "maxPairsPerRequest",
        "operationTimeoutSeconds",
        "parallelRequests",
        "resetTimeoutSeconds",
    ]
    assert reasons["operationTimeoutSeconds"] == (
        "stack config enos:operationTimeoutSeconds must be a number from 1 to 86400, got 'five'"
    )
    assert "enos:authScheme must be one of apim-signature, bearer" in reasons["authScheme"]
    assert "enos:parallelRequests must be a whole number from 1 to 32, got 0" in reasons["parallelRequests"]
    assert "enos:resetTimeoutSeconds must be a number from 1 to 86400" in reasons["resetTimeoutSeconds"]
    assert "environment variable ENOS_CONNECT_TIMEOUT_SECONDS must be" in reasons["connectTimeoutSeconds"]
    assert reasons["maxPairsPerRequest"].endswith("got [secret]") and "qzjx" not in str(failures)


def test_settings_from_the_older_variables_map_and_the_environment(
    module_simulator: Simulator, tmp_path: Path
) -> None:
    """An engine that sends no ``args`` sends ``enos:config:*`` variables; the environment fills gaps."""
    env = {"ENOS_SECRET_KEY": SIM_SECRET_KEY, "PULUMI_PROJECT": "p"}
    with PluginHost(cwd=tmp_path, env={**_base_env(), **env}) as host:
        variables = {
            "enos:config:apiGateway": module_simulator.base_url,
            "enos:config:accessKey": SIM_ACCESS_KEY,
        }
        host._call("Configure", provider_pb2.ConfigureRequest(variables=variables, acceptSecrets=True))
        _, outs = host.create("urn:x", plugin_inputs(stageInstanceName="LatestRecordMerger_vars"))
        assert outs["requestCount"] == 1


def _base_env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith("ENOS_")}


def test_cancel_lets_the_reset_under_way_finish_and_refuses_new_ones(
    module_simulator: Simulator, plugin_factory: PluginFactory
) -> None:
    p = plugin_factory(module_simulator)
    module_simulator.add_fault("latency=800,op=delete,count=1")
    results: list[Any] = []
    worker = threading.Thread(
        target=lambda: results.append(
            p.engine.up("under-way", plugin_inputs(stageInstanceName="LatestRecordMerger_c1"))
        )
    )
    worker.start()
    wait_for(lambda: "List Pipelines" in p.host.stderr, "the reset to start")
    p.host.cancel()  # the CLI's first Ctrl-C
    worker.join(60)
    assert results and results[0].op == "create"  # the reset under way finished
    module_simulator.clear_log()
    with pytest.raises(HostError) as caught:
        p.engine.up("after-cancel", plugin_inputs(stageInstanceName="LatestRecordMerger_c2"))
    assert caught.value.details == CANCELLED
    assert [r["operation"] for r in module_simulator.requests] == []
    assert (
        p.engine.preview("after-cancel", plugin_inputs(stageInstanceName="LatestRecordMerger_c2")).op
        == "create"
    )


def test_sigterm_waits_for_a_paused_pipeline_to_be_started_again(
    module_simulator: Simulator, plugin_factory: PluginFactory
) -> None:
    p = plugin_factory(module_simulator)
    module_simulator.add_fault("latency=800,op=delete,count=1")
    inputs = plugin_inputs(
        stageInstanceName="LatestRecordMerger_term",
        pipelineId=SIM_RUNNING_PIPELINE,
        pausePipeline=True,
        resumeExecutionMode="standalone",
    )
    results: list[Any] = []

    def up() -> None:
        try:
            results.append(p.engine.up("term", inputs))
        except BaseException as exc:  # what the engine would get if the answer were cut off
            results.append(exc)

    worker = threading.Thread(target=up)
    worker.start()
    wait_for(lambda: "reached | PAUSED" in p.host.stderr, "the pipeline to be paused")
    assert p.host.process is not None
    p.host.process.send_signal(signal.SIGTERM)
    assert p.host.process.wait(60) == 0
    worker.join(60)
    assert module_simulator.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    actions = [t["action"] for t in module_simulator.transitions if t["pipeline_id"] == SIM_RUNNING_PIPELINE]
    assert actions[-2:] == ["pause", "start"]
    # The engine got the reset's answer and recorded it: the next `pulumi up` does not reset again.
    (step,) = results
    assert not isinstance(step, BaseException), step
    assert step.op == "create" and (step.outputs or {})["pausedByReset"] is True
    assert p.engine.state["term"].outputs["requestCount"] == 1


def test_sigterm_delivers_the_answer_of_a_reset_under_way_and_refuses_new_ones(
    module_simulator: Simulator, plugin_factory: PluginFactory
) -> None:
    p = plugin_factory(module_simulator)
    module_simulator.clear_log()
    module_simulator.add_fault("latency=800,op=delete,count=1")
    results: list[Any] = []

    def up() -> None:
        try:
            results.append(p.engine.up("t1", plugin_inputs(stageInstanceName="LatestRecordMerger_t1")))
        except BaseException as exc:
            results.append(exc)

    worker = threading.Thread(target=up)
    worker.start()
    wait_for(lambda: "List Pipelines" in p.host.stderr, "the reset to start")
    assert p.host.process is not None
    p.host.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "reset(s) under way finish first" in p.host.stderr, "the plugin to begin stopping")
    # A reset asked for while the plugin stops is refused before it calls anything.
    with pytest.raises(HostError) as caught:
        p.host.create(p.engine.urn("t2"), plugin_inputs(stageInstanceName="LatestRecordMerger_t2"))
    assert caught.value.details == STOPPING
    assert p.host.process.wait(60) == 0
    worker.join(60)
    (step,) = results
    assert not isinstance(step, BaseException), step
    assert step.op == "create" and "t1" in p.engine.state
    deletes = [r for r in module_simulator.requests if r["operation"] == "delete"]
    assert len(deletes) == 1  # t1's, once; t2 called nothing
    assert "1 reset(s) under way" in p.host.stderr


def test_a_checkout_runs_as_a_plugin_directory(tmp_path: Path) -> None:
    """``pulumi package add <checkout>`` reads PulumiPlugin.yaml, installs requirements.txt into a venv and
    runs ``python <checkout> <engine address> [flags]``: the checkout's __main__.py serves the plugin."""
    if not (ROOT / "PulumiPlugin.yaml").exists():
        pytest.skip("an unpacked sdist is no plugin directory: `pulumi package add` takes a checkout")
    manifest = yaml.safe_load((ROOT / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python" and manifest["name"] == "enos"
    requirements = [
        line for line in (ROOT / "requirements.txt").read_text().splitlines() if not line.startswith("#")
    ]
    assert requirements == ["."]
    with PluginHost(cwd=tmp_path, command=[sys.executable, str(ROOT)]) as host:
        assert host.get_schema() == package_schema(plugin_version())


def _yaml_reset() -> dict[str, Any]:
    program = yaml.safe_load((ROOT / "examples" / "yaml-release" / "Pulumi.yaml").read_text())
    (resource,) = [r for r in program["resources"].values() if r["type"] == TOKEN]
    return dict(resource["properties"])


def test_the_yaml_example_resets_a_running_pipeline_through_the_plugin(plugin: HostedPlugin) -> None:
    sim = plugin.simulator
    config = {"pipelineId": SIM_RUNNING_PIPELINE, "release": "release-2026-11"}
    properties = {
        key: config[value[2:-1]] if isinstance(value, str) and value.startswith("${") else value
        for key, value in _yaml_reset().items()
    }
    step = plugin.engine.up("window-agg-reset", {"orgId": SIM_ORG_ID, **properties})
    assert step.op == "create" and (step.outputs or {})["pausedByReset"] is True
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    assert plugin.engine.up("window-agg-reset", {"orgId": SIM_ORG_ID, **properties}).op == "same"


def test_the_typescript_example_uses_schema_names_only() -> None:
    source = (ROOT / "examples" / "ts-release" / "index.ts").read_text()
    schema = package_schema("1.0.0")["resources"][TOKEN]
    args = source.split("new enos.StageStateReset(", 1)[1].split("});", 1)[0]
    used_inputs = set(re.findall(r"^\s+(\w+):", args, re.MULTILINE))
    assert set(schema["requiredInputs"]) <= used_inputs <= set(schema["inputProperties"])
    used_outputs = set(re.findall(r"reset\.(\w+)", source))
    assert used_outputs and used_outputs <= set(schema["properties"])
    assert set(_yaml_reset()) <= set(schema["inputProperties"])


def test_secret_trigger_from_a_secret_config_stays_secret(plugin: HostedPlugin) -> None:
    step = plugin.engine.up(
        "secret-release", plugin_inputs(stageInstanceName="LatestRecordMerger_s", trigger=secret("r9"))
    )
    assert "trigger" in step.secret_outputs and (step.outputs or {})["trigger"] == "r9"
