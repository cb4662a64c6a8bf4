"""``pulumi-resource-enos`` through its process over gRPC, with the engine's rules (``PluginEngine``), against
the simulator: the same semantics as the dynamic ``StageStateReset``, in a program's camelCase names."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import pytest

from enos_pulumi.enos.errors import PipelineNotPausedError
from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import CheckFailedError, HostError, is_secret
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_RUNNING_PIPELINE
from tests.support.plugin_fixtures import plugin_inputs

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.plugin_fixtures import HostedPlugin

pytest_plugins = ["tests.support.plugin_fixtures"]


@pytest.fixture(autouse=True)
def _clean(module_simulator: Simulator) -> None:
    module_simulator.clear_faults()
    module_simulator.clear_log()
    module_simulator.set_pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "RUNNING")


@pytest.fixture
def stage(request: pytest.FixtureRequest) -> str:
    return "LatestRecordMerger_" + re.sub(r"\W", "_", request.node.name)


def enos_calls(sim: Simulator) -> list[str]:
    return [r["operation"] for r in sim.requests if r["operation"] != "token"]


def rpcs(p: HostedPlugin, name: str) -> list[str]:
    urn = p.engine.urn(name)
    return [method for method, call_urn in p.host.calls if call_urn == urn]


def test_preview_up_same_update_replace_refresh_destroy(plugin: HostedPlugin, stage: str) -> None:
    p, sim = plugin, plugin.simulator
    inputs = plugin_inputs(stageInstanceName=stage, assetIds=["a2", "a1", "a2"], trigger="r1")

    preview = p.engine.preview("life", inputs)
    assert (preview.op, enos_calls(sim)) == ("create", [])  # preview calls nothing
    assert rpcs(p, "life") == ["Check", "Create"]  # Create with preview set: the provider supports it

    created = p.engine.up("life", inputs)
    assert created.op == "create" and enos_calls(sim) == ["list", "delete"]
    outs = created.outputs or {}
    assert (outs["assetCount"], outs["pointCount"], outs["requestCount"], outs["trigger"]) == (2, 2, 1, "r1")
    assert outs["orgId"] == SIM_ORG_ID and outs["pausedByReset"] is False
    assert {k: v for k, v in (preview.outputs or {}).items() if not _unknown(v)} == {
        k: outs[k]
        for k in (
            "orgId",
            "pipelineId",
            "stageInstanceName",
            "trigger",
            "idsHash",
            "assetCount",
            "pointCount",
        )
    }
    assert set(outs) == set(preview.outputs or {})
    assert p.engine.state["life"].inputs["assetIds"] == ["a1", "a2"]  # canonical, as Check returned it

    sim.clear_log()
    same = plugin_inputs(stageInstanceName=stage, assetIds="a1, a2", trigger="r1", verify=True)
    assert p.engine.preview("life", same).op == "same"
    assert p.engine.up("life", same).op == "same" and enos_calls(sim) == []
    assert p.engine.up("life", {**same, "trigger": None}).op == "same"  # removing the trigger: no reset

    updated = p.engine.up("life", plugin_inputs(stageInstanceName=stage, assetIds=["a1", "a3"]))
    assert updated.op == "update" and enos_calls(sim) == ["list", "delete"]
    assert p.host.detailed_diffs[p.engine.urn("life")] == {"assetIds": ("UPDATE", True)}
    sim.clear_log()
    assert (
        p.engine.up("life", plugin_inputs(stageInstanceName=stage, assetIds=["a1", "a3"], trigger="r2")).op
        == "update"
    )
    assert p.host.detailed_diffs[p.engine.urn("life")] == {"trigger": ("ADD", True)}

    sim.clear_log()
    moved = plugin_inputs(stageInstanceName=stage, pipelineId="pl-other", assetIds=["a1", "a3"], trigger="r2")
    sim.add_pipeline(SIM_ORG_ID, "pl-other", status="PAUSED")
    replaced = p.engine.up("life", moved)
    assert (replaced.op, replaced.replaces) == ("replace", ["pipelineId"])
    assert p.host.detailed_diffs[p.engine.urn("life")] == {"pipelineId": ("UPDATE_REPLACE", True)}
    assert [r["pipeline_id"] for r in sim.requests if r["operation"] == "delete"] == ["pl-other"]

    sim.clear_log()
    p.host.calls.clear()
    stored = p.engine.state["life"]
    assert p.engine.refresh("life").op == "same"
    assert p.engine.state["life"] == stored and rpcs(p, "life") == ["Read", "Diff"]
    assert p.engine.destroy("life").op == "delete"
    assert enos_calls(sim) == [] and "life" not in p.engine.state


def output_after(p: HostedPlugin, start: int, expected: str) -> str:
    """The plugin's stderr from ``start`` once ``expected`` shows in it (the pipe is read by a thread)."""
    deadline = time.monotonic() + 10
    while expected not in p.host.stderr[start:] and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for another process's pipe: no clock to inject
    return p.host.stderr[start:]


def _unknown(value: Any) -> bool:
    return type(value).__name__ == "Unknown"


def test_replace_on_changes_of_an_id_set_replaces(plugin: HostedPlugin, stage: str) -> None:
    """The diff names the input that changed, so the program's ``replaceOnChanges: [pointIds]`` works
    (the dynamic resource cannot offer it)."""
    p = plugin
    p.engine.up("roc", plugin_inputs(stageInstanceName=stage))
    step = p.engine.up(
        "roc", plugin_inputs(stageInstanceName=stage, pointIds=["p9"]), replace_on_changes=["pointIds"]
    )
    assert (step.op, step.replaces) == ("replace", ["pointIds"])
    step = p.engine.up(
        "roc",
        plugin_inputs(stageInstanceName=stage, pointIds=["p9"], assetIds=["a9"]),
        replace_on_changes=["pointIds"],
    )
    assert step.op == "update"  # assetIds changed, pointIds did not


def test_preview_with_unknown_inputs_reports_a_change_and_calls_nothing(
    plugin: HostedPlugin, stage: str
) -> None:
    from pulumi.output import Unknown

    p, sim = plugin, plugin.simulator
    p.engine.up("unknowns", plugin_inputs(stageInstanceName=stage))
    sim.clear_log()
    step = p.engine.preview("unknowns", plugin_inputs(stageInstanceName=stage, assetIds=["a1", Unknown()]))
    assert step.op == "update" and enos_calls(sim) == []
    assert _unknown((step.outputs or {})["idsHash"]) and (step.outputs or {})["orgId"] == SIM_ORG_ID
    step = p.engine.preview("unknowns", plugin_inputs(stageInstanceName=Unknown()))
    assert (step.op, step.replaces) == ("replace", ["stageInstanceName"])


def test_a_running_pipeline_is_refused_with_the_dynamic_resources_message(
    plugin: HostedPlugin, stage: str
) -> None:
    p, sim = plugin, plugin.simulator
    with pytest.raises(HostError) as caught:
        p.engine.up("running", plugin_inputs(stageInstanceName=stage, pipelineId=SIM_RUNNING_PIPELINE))
    expected = str(PipelineNotPausedError(SIM_RUNNING_PIPELINE, SIM_ORG_ID, "RUNNING"))
    assert caught.value.details == expected  # the message alone, no traceback
    assert "running" not in p.engine.state and enos_calls(sim) == ["list"]


def test_pause_pipeline_pauses_resets_and_resumes(plugin: HostedPlugin, stage: str) -> None:
    p, sim = plugin, plugin.simulator
    step = p.engine.up(
        "paused",
        plugin_inputs(
            stageInstanceName=stage,
            pipelineId=SIM_RUNNING_PIPELINE,
            pausePipeline=True,
            resumeExecutionMode="cluster",
        ),
    )
    assert (step.outputs or {})["pausedByReset"] is True
    actions = [t["action"] for t in sim.transitions if t["pipeline_id"] == SIM_RUNNING_PIPELINE]
    assert actions[-2:] == ["pause", "start"]
    assert sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"assetIds": []}, ("assetIds", "empty")),
        ({"pointIds": ["p1", "p,2"]}, ("pointIds", "comma")),
        ({"pausePipeline": True}, ("resumeExecutionMode", "is required when pausePipeline is true")),
        ({"orgId": None}, ("orgId", "pass orgId, or set stack config enos:orgId / ENOS_ORG_ID")),
        ({"assetId": ["a1"]}, ("assetId", "is not an input of StageStateReset")),
        ({"verify": "yes"}, ("verify", "must be true or false")),
    ],
)
def test_bad_inputs_fail_check_naming_the_input(
    plugin: HostedPlugin, overrides: dict[str, Any], expected: tuple[str, str]
) -> None:
    with pytest.raises(CheckFailedError) as caught:
        plugin.engine.preview("bad", plugin_inputs(**overrides))
    assert any(name == expected[0] and expected[1] in reason for name, reason in caught.value.failures), (
        caught.value
    )
    assert enos_calls(plugin.simulator) == []


def test_org_id_defaults_to_the_provider_setting_then_the_environment(
    module_simulator: Simulator, plugin_factory: Any, stage: str
) -> None:
    configured = plugin_factory(module_simulator, settings={"enos:orgId": SIM_ORG_ID})
    step = configured.engine.up("org", plugin_inputs(stageInstanceName=stage, orgId=None))
    assert (step.outputs or {})["orgId"] == SIM_ORG_ID
    from_env = plugin_factory(module_simulator, env={"ENOS_ORG_ID": "o-env"})
    assert from_env.engine.preview("org", plugin_inputs(orgId=None)).outputs["orgId"] == "o-env"  # type: ignore[index]


def test_import_is_refused_clearly(plugin: HostedPlugin) -> None:
    with pytest.raises(HostError, match="cannot be imported"):
        plugin.host.read(plugin.engine.urn("imported"), "reset-123", {}, {})


def test_secret_inputs_stay_secret_and_out_of_errors(plugin: HostedPlugin, stage: str) -> None:
    from enos_pulumi.testing import secret

    p, sim = plugin, plugin.simulator
    inputs = plugin_inputs(
        stageInstanceName=stage, assetIds=secret(["sa1", "sa2"]), trigger=secret("release-42")
    )
    step = p.engine.up("secrets", inputs)
    assert {"idsHash", "assetCount", "pointCount", "requestCount", "trigger"} <= step.secret_outputs
    assert not {"orgId", "pipelineId", "resetAt", "requestIds"} & step.secret_outputs
    stored = p.engine.state["secrets"]
    assert is_secret(stored.inputs["assetIds"]) and is_secret(stored.outputs["trigger"])
    assert p.engine.preview("secrets", inputs).op == "same"

    sim.clear_log()
    before = len(p.host.stderr)
    hidden = plugin_inputs(stageInstanceName=stage, pipelineId=secret(SIM_RUNNING_PIPELINE))
    with pytest.raises(HostError) as caught:
        p.engine.up("secret-target", hidden)
    assert SIM_RUNNING_PIPELINE not in caught.value.details and "[secret]" in caught.value.details
    lines = output_after(p, before, "List Pipelines")
    assert SIM_RUNNING_PIPELINE not in lines  # progress lines hide it too
    assert "test-secret-key" not in p.host.stderr


def test_same_pipeline_in_the_dynamic_and_plugin_forms_stores_the_same_hash(
    plugin: HostedPlugin, stage: str
) -> None:
    from enos_pulumi.enos.ids import ids_hash

    step = plugin.engine.up(
        "hash", plugin_inputs(stageInstanceName=stage, assetIds=" b, a ,a", pointIds=["y", "x"])
    )
    assert (step.outputs or {})["idsHash"] == ids_hash(["a", "b"], ["x", "y"])
    assert (step.outputs or {})["pipelineId"] == SIM_PAUSED_PIPELINE
