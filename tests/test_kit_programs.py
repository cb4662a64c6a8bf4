"""Programs through the testing kit's ProgramStack against what ``pulumi preview``/``up`` really do.

Each test names, in its docstring, the Pulumi source (engine, language host or SDK file and function) of
the behaviour it checks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import (
    PAUSED_PIPELINE,
    RUNNING_PIPELINE,
    SIMULATOR_ORG_ID,
    CheckFailedError,
    HostError,
    ProgramStack,
    Registration,
    ResourceProtectedError,
)
from enos_pulumi.testing._deployment import Deployment

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGE = "FixedTimeWindowAggregator_1"
OTHER_PAUSED = "pl-kit-paused-2"
StackFactory = Callable[..., ProgramStack]
HAS_REPLACEMENT_TRIGGER = "replacement_trigger" in pulumi.ResourceOptions.__init__.__code__.co_varnames
HAS_REPLACE_WITH = "replace_with" in pulumi.ResourceOptions.__init__.__code__.co_varnames


def program(directory: Path, body: str, project: str = "kit-test", project_extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    header = "import pulumi\nfrom enos_pulumi import StageStateReset\n\nconfig = pulumi.Config()\n"
    (directory / "__main__.py").write_text(header + body)
    (directory / "Pulumi.yaml").write_text(f"name: {project}\nruntime: python\n{project_extra}")
    return directory


def reset(name: str, pipeline: str = PAUSED_PIPELINE, extra: str = "", opts: str = "") -> str:
    options = f", opts=pulumi.ResourceOptions({opts})" if opts else ""
    return (
        f'{name.replace("-", "_")} = StageStateReset("{name}", pipeline_id="{pipeline}", '
        f'stage_instance_name="{STAGE}", asset_ids=["inv01", "inv02"], point_ids=["INV.Temp"]'
        f"{extra}{options})\n"
    )


def deletes(sim: Simulator, pipeline: str | None = None) -> int:
    return sum(1 for e in sim.requests if e["operation"] == "delete" and pipeline in (None, e["pipeline_id"]))


def with_repo_on_path() -> dict[str, str]:
    """The environment with the repository importable, so the host can load tests.support providers."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }


# -- preview first, preview outputs -------------------------------------------------------------------


def test_up_runs_the_preview_first_so_a_check_on_unknowns_fails_before_any_reset(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    """pkg/cmd/pulumi/operations/up.go runs a preview before the update unless --skip-preview: a Check
    that fails on an unknown value (here a provider that refuses unknowns, fed the first reset's reset_at)
    fails there, before the first reset runs. With skip_preview the update creates both."""
    body = (
        "from tests.support.engine_providers import UnknownRefusingProvider\n"
        "class Strict(pulumi.dynamic.Resource, module='kit', name='Strict'):\n"
        "    def __init__(self, name, props):\n"
        "        super().__init__(UnknownRefusingProvider(), name, props)\n"
        + reset("first")
        + f"Strict('second', dict(org_id='{SIMULATOR_ORG_ID}', pipeline_id='{PAUSED_PIPELINE}', "
        f"stage_instance_name='{STAGE}', asset_ids=['inv03'], point_ids=['INV.Temp'], "
        "trigger=first.reset_at))\n"
    )
    stack = enos_stack(program(tmp_path, body), env=with_repo_on_path())
    with pytest.raises(CheckFailedError, match="property trigger has a problem: must be known at preview"):
        stack.up()
    assert stack.state == {} and deletes(enos_simulator) == 0
    result = stack.up(skip_preview=True)
    assert result.ops == {"first": "create", "second": "create"} and result.preview is None
    assert deletes(enos_simulator) == 2


def test_preview_outputs_are_the_checked_inputs(enos_stack: StackFactory, tmp_path: Path) -> None:
    """provider_plugin.go, Create/Update with req.Preview: a provider without preview support answers
    with the checked inputs (here pipeline_id trimmed by Check), not what the program registered."""
    body = (
        reset("window", pipeline=f"  {PAUSED_PIPELINE}  ") + 'pulumi.export("pipeline", window.pipeline_id)\n'
    )
    stack = enos_stack(program(tmp_path, body))
    preview = stack.preview()
    assert preview.outputs == {"pipeline": PAUSED_PIPELINE}
    assert preview.steps["window"].outputs is not None
    assert preview.steps["window"].outputs["pipeline_id"] == PAUSED_PIPELINE
    result = stack.up()
    assert result.preview is not None and result.preview.ops == {"window": "create"}
    assert result.outputs == {"pipeline": PAUSED_PIPELINE}


# -- a failed step -------------------------------------------------------------------------------------

SETTLED = (
    "async def settled(resource):\n"
    "    try:\n"
    "        await resource.id.future()\n"
    "    except Exception:\n"
    "        pass\n"
    "    return 'settled'\n"
)


def after(first: str, then: str) -> str:
    """Program text registering ``then`` once ``first`` has settled (created or failed), without making
    it depend on ``first``."""
    expression = then.strip().split(" = ", 1)[1]
    return SETTLED + f"pulumi.Output.from_input(settled({first})).apply(lambda _: {expression})\n"


def test_after_a_failed_step_no_new_step_starts(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """step_executor.go, cancelDueToError: a failed step cancels the deployment, so a registration that
    arrives afterwards is never started, though it depends on nothing that failed. Here ``late`` waits
    for another provider's resource that is answered only once ``first`` has failed."""
    first_failed = threading.Event()
    handle = Deployment.handle

    def noting_failures(self: Deployment, registration: Registration) -> Any:
        try:
            return handle(self, registration)
        except HostError:
            first_failed.set()
            raise

    def gate(registration: Registration, preview: bool) -> tuple[str, dict[str, Any]]:
        assert first_failed.wait(10)
        return "gate-id", registration.inputs

    monkeypatch.setattr(Deployment, "handle", noting_failures)
    body = (
        reset("first", pipeline=RUNNING_PIPELINE)
        + "gate = pulumi.CustomResource('other:index:Gate', 'gate', {'after': 'first'})\n"
        + reset("late", opts="depends_on=[gate]")
    )
    stack = enos_stack(program(tmp_path, body), other_resources=gate)
    with pytest.raises(HostError, match="is RUNNING"):
        stack.up(skip_preview=True)
    assert first_failed.is_set() and stack.state == {} and deletes(enos_simulator) == 0


def test_with_continue_on_error_independent_steps_go_on(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    """step_executor.go, cancelDueToError with ContinueOnError records the failure and goes on: the
    program hears "failed" (outputs unknown) and a later, independent reset still runs; the update still
    fails."""
    body = reset("first", pipeline=RUNNING_PIPELINE) + after("first", reset("second"))
    stack = enos_stack(program(tmp_path, body))
    with pytest.raises(HostError, match="is RUNNING"):
        stack.up(skip_preview=True, continue_on_error=True)
    assert set(stack.state) == {"second"} and deletes(enos_simulator, PAUSED_PIPELINE) == 1


def test_a_failed_update_after_a_replacement_keeps_the_old_resource_pending_delete(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    """step.go, CreateStep.Apply marks the replaced resource for deletion as soon as its replacement
    exists; step_generator.go, GenerateDeletes deletes it in the next update that gets that far."""
    enos_simulator.add_pipeline(SIMULATOR_ORG_ID, OTHER_PAUSED, status="PAUSED")
    stack = enos_stack(program(tmp_path, reset("moved")))
    stack.up()
    old = stack.state["moved"]
    moved = reset("moved", pipeline=OTHER_PAUSED)
    program(tmp_path, moved + after("moved", reset("broken", pipeline=RUNNING_PIPELINE)))
    with pytest.raises(HostError, match="is RUNNING"):
        stack.up()
    assert stack.state["moved"].id != old.id and stack.pending_deletes == [("moved", old)]
    program(tmp_path, moved)
    stack.up()
    assert stack.pending_deletes == [] and "broken" not in stack.state


# -- the program's process -----------------------------------------------------------------------------


def test_the_program_runs_as_the_language_host_runs_it(enos_stack: StackFactory, tmp_path: Path) -> None:
    """sdk/python/cmd/pulumi-language-python-exec: the program runs with the project directory as cwd and
    runpy.run_path puts the program directory first on sys.path (sibling modules import, afresh in each
    run as in a new process); the CLI applies Pulumi.yaml's config: defaults under the stack config and
    hands the program the same environment as the provider host."""
    project = tmp_path / "project"
    source = project / "src"
    source.mkdir(parents=True)
    (project / "assets.txt").write_text("inv07\ninv08\n")
    (source / "helpers.py").write_text("PREFIX = 'one'\n")
    (source / "__main__.py").write_text(
        "import os\nimport pulumi\nimport helpers\n"
        "config = pulumi.Config()\n"
        "pulumi.export('ids', open(config.require('assetFile')).read().split())\n"
        "pulumi.export('release', helpers.PREFIX + '-' + config.require('release'))\n"
        "pulumi.export('region', pulumi.Config('enos').get('region'))\n"
        "pulumi.export('suffix', os.environ.get('KIT_SUFFIX'))\n"
    )
    (project / "Pulumi.yaml").write_text(
        "name: kit-test\nruntime: python\nmain: src/\nconfig:\n"
        "  assetFile: assets.txt\n  release:\n    type: string\n    default: r-default\n"
        "  enos:region:\n    value: cn-sh\n"
    )
    stack = enos_stack(project, env={**os.environ, "KIT_SUFFIX": "from-env"})
    assert stack.preview().outputs == {
        "ids": ["inv07", "inv08"],
        "release": "one-r-default",
        "region": "cn-sh",
        "suffix": "from-env",
    }
    (source / "helpers.py").write_text("PREFIX = 'second'\n")  # another size: no stale bytecode
    stack.config["release"] = "r2"
    assert stack.preview().outputs["release"] == "second-r2"
    assert "KIT_SUFFIX" not in os.environ and os.getcwd() != str(project)


# -- resource options ------------------------------------------------------------------------------------


def test_protect_stops_a_replacement_and_a_delete_of_the_program(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    """step_generator.go, continueStepsFromDiff: the preview of a protected resource's replacement fails,
    so ``up`` changes nothing; step.go, DeleteStep.Apply: neither dropping it from the program nor
    ``destroy`` deletes it (the other resources are still deleted)."""
    enos_simulator.add_pipeline(SIMULATOR_ORG_ID, OTHER_PAUSED, status="PAUSED")
    stack = enos_stack(program(tmp_path, reset("guarded", opts="protect=True") + reset("plain")))
    stack.up()
    stored = stack.state["guarded"]
    enos_simulator.clear_log()
    program(tmp_path, reset("guarded", pipeline=OTHER_PAUSED, opts="protect=True") + reset("plain"))
    with pytest.raises(ResourceProtectedError, match="unable to replace"):
        stack.up()
    assert stack.state["guarded"] == stored and deletes(enos_simulator) == 0
    program(tmp_path, reset("plain"))
    with pytest.raises(ResourceProtectedError, match="cannot be deleted"):
        stack.up()
    assert "guarded" in stack.state
    with pytest.raises(ResourceProtectedError, match="cannot be deleted"):
        stack.destroy()
    assert set(stack.state) == {"guarded"}


@pytest.mark.skipif(not HAS_REPLACEMENT_TRIGGER, reason="replacement_trigger needs pulumi SDK 3.214+")
def test_a_changed_replacement_trigger_option_resets_again(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    """sdk/python/lib/pulumi/runtime/resource.py sends ResourceOptions.replacement_trigger with the
    registration; the engine replaces the resource when it changes (pkg/engine/lifecycletest/
    replacement_trigger_test.go): a new reset runs, and the same value again is no change."""
    body = reset("rotated", opts='replacement_trigger=config.get("rotation")')
    stack = enos_stack(program(tmp_path, body), config={"rotation": "2026-11"})
    stack.up()
    enos_simulator.clear_log()
    assert stack.up().ops == {"rotated": "same"} and deletes(enos_simulator) == 0
    stack.config["rotation"] = "2026-12"
    preview = stack.preview()
    assert preview.ops == {"rotated": "replace"} and preview.steps["rotated"].replaces == [
        "replacementTrigger"
    ]
    assert stack.up().ops == {"rotated": "replace"} and deletes(enos_simulator) == 1


@pytest.mark.skipif(not HAS_REPLACE_WITH, reason="replace_with is not in this pulumi SDK")
def test_a_resource_replaced_with_another_resets_with_it(
    enos_stack: StackFactory, enos_simulator: Simulator, tmp_path: Path
) -> None:
    """sdk/python/lib/pulumi/resource.py, ResourceOptions.replace_with: the resource is replaced whenever
    one of the named resources is; here the follower's reset runs again with the leader's."""
    enos_simulator.add_pipeline(SIMULATOR_ORG_ID, OTHER_PAUSED, status="PAUSED")
    follower = reset("follower", opts="replace_with=[leader]")
    stack = enos_stack(program(tmp_path, reset("leader") + follower))
    stack.up()
    enos_simulator.clear_log()
    program(tmp_path, reset("leader", pipeline=OTHER_PAUSED) + follower)
    assert stack.up().ops == {"leader": "replace", "follower": "replace"}
    assert deletes(enos_simulator, OTHER_PAUSED) == 1 and deletes(enos_simulator, PAUSED_PIPELINE) == 1
