"""The public testing kit itself: wire helpers, the engine's input rules, program stacks, fixtures."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pulumi.output import Unknown

import enos_pulumi.testing as kit
from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import (
    PAUSED_PIPELINE,
    RUNNING_PIPELINE,
    SIMULATOR_ORG_ID,
    UNKNOWN,
    HostError,
    Interrupted,
    ProgramStack,
    capture_program,
    is_secret,
    reveal,
    secret,
)
from enos_pulumi.testing._paths import process_ignore_changes
from enos_pulumi.testing._program import _duration
from enos_pulumi.testing._wire import annotate_secrets, decode, to_struct

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

STAGE = "FixedTimeWindowAggregator_1"
StackFactory = Callable[..., ProgramStack]


def program(directory: Path, body: str, project: str = "kit-test") -> Path:
    """A Pulumi program directory: ``body`` after the imports every program here needs."""
    directory.mkdir(parents=True, exist_ok=True)
    header = "import pulumi\nfrom enos_pulumi import StageStateReset\n\nconfig = pulumi.Config()\n"
    (directory / "__main__.py").write_text(header + body)
    (directory / "Pulumi.yaml").write_text(f"name: {project}\nruntime: python\n")
    return directory


def reset(name: str, assets: str = '["inv01", "inv02"]', extra: str = "") -> str:
    return (
        f'{name.replace("-", "_")} = StageStateReset("{name}", pipeline_id=config.get("pipeline") or '
        f'"{PAUSED_PIPELINE}", stage_instance_name="{STAGE}", asset_ids={assets}, point_ids=["INV.Temp"], '
        f'trigger=config.get("release"){extra})\n'
    )


def pairs(sim: Simulator, pipeline: str = PAUSED_PIPELINE) -> set[tuple[str, str]]:
    return sim.stage_pairs(SIMULATOR_ORG_ID, pipeline, STAGE)


def deletes(sim: Simulator) -> int:
    return sum(1 for entry in sim.requests if entry["operation"] == "delete")


# -- the public surface --------------------------------------------------------------------------------


def test_all_names_every_public_member_and_only_those() -> None:
    public = {name for name in vars(kit) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(kit, name))}
    assert set(kit.__all__) == public - modules - {"annotations"}
    assert all(hasattr(kit, name) for name in kit.__all__)


# -- wire helpers and input rules -------------------------------------------------------------------------


def test_annotate_secrets_marks_outputs_by_the_name_of_a_secret_input() -> None:
    outs = {"a": 1, "b": [1, 2], "c": {"x": 1, "y": 2}, "d": "plain", "e": secret("already")}
    ins = {"a": secret(1), "b": [1, secret(2)], "c": {"x": secret(1)}, "e": "whatever", "z": secret(0)}
    marked = annotate_secrets(outs, ins)
    assert is_secret(marked["a"])
    assert is_secret(marked["b"]) and reveal(marked["b"]) == [1, 2]  # a list as a whole
    assert is_secret(marked["c"]["x"]) and marked["c"]["y"] == 2  # objects key by key
    assert marked["d"] == "plain" and "z" not in marked
    assert marked["e"] == secret("already")


def test_reveal_removes_every_marker_and_structs_carry_unknowns() -> None:
    assert reveal({"a": secret([secret("x"), "y"]), "b": [{"c": secret(1)}]}) == {
        "a": ["x", "y"],
        "b": [{"c": 1}],
    }
    struct = to_struct({"a": Unknown(), "b": ["x", Unknown()], "gone": None, "n": 3})
    decoded = decode(struct)
    assert decoded["n"] == 3.0 and "gone" not in decoded  # numbers travel as doubles
    assert dict(struct)["a"] == UNKNOWN and list(dict(struct)["b"]) == ["x", UNKNOWN]


def test_ignore_changes_swaps_in_stored_values_and_drops_what_was_not_stored() -> None:
    stored = {"trigger": "r1", "asset_ids": secret(["a1"])}
    news = {"trigger": "r2", "asset_ids": ["a2"], "verify": True}
    assert process_ignore_changes(news, stored, ["trigger", "asset_ids", "verify"]) == {
        "trigger": "r1",
        "asset_ids": secret(["a1"]),
    }


@pytest.mark.parametrize(
    ("text", "seconds"), [("", 0), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_custom_timeouts_read_as_go_durations(text: str, seconds: float) -> None:
    assert _duration(text) == seconds


# -- program stacks ------------------------------------------------------------------------------------


def test_every_command_starts_its_own_provider_host(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    """The CLI starts the provider anew for each command, so each `pulumi up` fetches its own token."""
    stack = enos_stack(program(tmp_path, reset("window")), config={"release": "r1"})
    tokens = enos_simulator.tokens_issued
    assert stack.up().ops == {"window": "create"}
    stack.config["release"] = "r2"
    assert stack.up().ops == {"window": "update"}
    assert enos_simulator.tokens_issued == tokens + 2
    assert "Get access token" in stack.last_host_output


def test_preview_of_a_new_stack_creates_with_unknown_outputs_and_calls_nothing(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    body = (
        reset("window") + 'pulumi.export("reset_at", window.reset_at)\npulumi.export("org", window.org_id)\n'
    )
    stack = enos_stack(program(tmp_path, body))
    enos_simulator.clear_log()
    result = stack.preview()
    assert result.ops == {"window": "create"}
    assert result.outputs == {"reset_at": UNKNOWN, "org": SIMULATOR_ORG_ID}
    assert enos_simulator.requests == [] and stack.state == {}


def test_renaming_a_resource_without_an_alias_resets_again(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    directory = program(tmp_path, reset("old-name"))
    stack = enos_stack(directory)
    stack.up()
    enos_simulator.clear_log()
    program(tmp_path, reset("new-name"))
    result = stack.up()
    assert result.ops == {"new-name": "create", "old-name": "delete"}
    assert deletes(enos_simulator) == 1  # the new resource's reset; the old one's delete calls nothing
    assert set(stack.state) == {"new-name"}


@pytest.mark.parametrize(
    "target", ["window", "urn:pulumi:test::kit-test::pulumi-python:dynamic/enos:StageStateReset::window"]
)
def test_up_replace_resets_the_named_resource_again(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path, target: str
) -> None:
    stack = enos_stack(program(tmp_path, reset("window") + reset("other")))
    stack.up()
    first_id = stack.state["window"].id
    enos_simulator.clear_log()
    result = stack.up(replace=[target])
    assert result.ops == {"window": "replace", "other": "same"}
    assert deletes(enos_simulator) == 1
    assert stack.state["window"].id != first_id


def test_other_providers_resources_are_recorded_and_their_outputs_feed_the_reset(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    body = (
        "release = pulumi.CustomResource('other:index:Release', 'release', {'pipelineId': '"
        + PAUSED_PIPELINE
        + "'})\n"
        + reset("window", extra=", opts=pulumi.ResourceOptions(depends_on=[release])").replace(
            'pipeline_id=config.get("pipeline") or "' + PAUSED_PIPELINE + '"',
            "pipeline_id=release.pipelineId",
        )
    )
    stack = enos_stack(program(tmp_path, body))
    assert stack.preview().ops == {"release": "create", "window": "create"}
    assert stack.up().ops == {"release": "create", "window": "create"}
    assert stack.state["window"].inputs["pipeline_id"] == PAUSED_PIPELINE
    assert stack.up().ops == {"release": "same", "window": "same"}
    program(tmp_path, "")
    assert stack.up().ops == {"window": "delete", "release": "delete"}


def test_a_failing_up_raises_what_the_user_reads_and_records_nothing(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    stack = enos_stack(program(tmp_path, reset("window")), config={"pipeline": RUNNING_PIPELINE})
    with pytest.raises(HostError, match=f"pipeline {RUNNING_PIPELINE} is RUNNING"):
        stack.up()
    assert stack.state == {}
    assert "List Pipelines" in stack.last_host_output
    # The failed command's result holds what the host printed too (the steps taken before the failure).
    assert stack.last_result is not None and stack.last_result.command == "up"
    assert "List Pipelines" in stack.last_result.host_output
    assert pairs(enos_simulator, RUNNING_PIPELINE)  # nothing deleted


def test_a_relative_program_directory_is_the_one_given(
    enos_stack: StackFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The program runs with its project directory as cwd: a relative path must not be read from there.
    program(tmp_path / "myproj", reset("window"))
    monkeypatch.chdir(tmp_path)
    assert enos_stack("myproj").up().ops == {"window": "create"}


def test_a_directory_without_a_project_says_so(tmp_path: Path) -> None:
    from enos_pulumi.testing import ProgramStack

    with pytest.raises(FileNotFoundError, match=r"no Pulumi project at .*Pulumi\.yaml"):
        ProgramStack(tmp_path / "nowhere")


def test_a_killed_up_leaves_a_pending_create_that_refresh_clears(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = enos_stack(program(tmp_path, reset("window")))
    interrupt, release = threading.Event(), threading.Event()
    handle = enos_simulator._handle

    def hold(call: Any) -> Any:
        if call.op == "delete":
            interrupt.set()
            release.wait(10)
        return handle(call)

    monkeypatch.setattr(enos_simulator, "_handle", hold)
    with pytest.raises(Interrupted):
        stack.up(interrupt=interrupt)
    release.set()
    monkeypatch.setattr(enos_simulator, "_handle", handle)
    assert stack.state == {} and list(stack.pending_creates) == ["window"]
    result = stack.up()
    assert result.ops == {"window": "create"} and "1 pending operations" in result.warnings[0]
    assert "1 pending operations" in stack.refresh().warnings[0]
    assert stack.refresh(clear_pending_creates=True).warnings == []
    assert stack.up().warnings == [] and stack.pending_creates == {}


def test_destroy_forgets_everything_and_deletes_no_state(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    stack = enos_stack(program(tmp_path, reset("window")))
    stack.up()
    before = pairs(enos_simulator)
    enos_simulator.clear_log()
    assert stack.destroy().ops == {"window": "delete"}
    assert stack.state == {} and enos_simulator.requests == [] and pairs(enos_simulator) == before


def test_capture_program_keeps_secret_config_secret(tmp_path: Path) -> None:
    directory = program(tmp_path, reset("window", extra=', org_id=config.get_secret("org")'))
    captured = capture_program(directory, {"org": "o-1"}, "kit-test", secret_keys=["org"])
    assert is_secret(captured["window"]["org_id"]) and reveal(captured["window"]["org_id"]) == "o-1"


def test_the_simulator_fixture_has_the_documented_seed(enos_simulator: Simulator) -> None:
    assert enos_simulator.pipeline_status(SIMULATOR_ORG_ID, PAUSED_PIPELINE) == "PAUSED"
    assert enos_simulator.pipeline_status(SIMULATOR_ORG_ID, RUNNING_PIPELINE) == "RUNNING"
    assert pairs(enos_simulator)


def test_a_preview_job_needs_no_enos_credentials(tmp_path: Path) -> None:
    # docs/ci.md keeps the EnOS key pair out of pull-request jobs: their preview must work with only the
    # organization configured, and send nothing.
    from enos_pulumi.testing import ProgramStack

    directory = program(tmp_path, reset("window"))
    stack = ProgramStack(directory, config={"enos:orgId": SIMULATOR_ORG_ID}, env={})
    result = stack.preview()
    assert result.ops == {"window": "create"}
    assert "Get access token" not in result.host_output
    # The up job is where the credentials are needed, and their absence is said plainly.
    with pytest.raises(kit.HostError) as info:
        stack.up()
    assert info.value.error_type in ("ConfigurationError", None)  # None: SDKs that send text only
    assert "enos:apiGateway" in info.value.error_message and "ENOS_API_GATEWAY" in info.value.error_message


def test_a_program_named_by_main_in_pulumi_yaml_is_found(enos_stack: StackFactory, tmp_path: Path) -> None:
    # Like this repository's own Pulumi.yaml (main: examples/pipeline-release/).
    program(tmp_path / "src" / "release", reset("window"))
    (tmp_path / "Pulumi.yaml").write_text("name: kit-test\nruntime: python\nmain: src/release/\n")
    assert enos_stack(tmp_path).up().ops == {"window": "create"}


def test_a_directory_without_a_program_says_so(tmp_path: Path) -> None:
    from enos_pulumi.testing import ProgramStack

    (tmp_path / "Pulumi.yaml").write_text("name: kit-test\nruntime: python\n")
    with pytest.raises(FileNotFoundError, match=r"no Pulumi program at .*__main__\.py"):
        ProgramStack(tmp_path, config={"enos:orgId": SIMULATOR_ORG_ID}).preview()
