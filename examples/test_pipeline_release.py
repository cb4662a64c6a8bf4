"""Tests of the example program without the Pulumi CLI and without EnOS (docs/testing.md).

`enos_stack` and `enos_simulator` are pytest fixtures that enos-pulumi installs (`enos-pulumi[testing]`).
"""

import threading
import time
from pathlib import Path

import pytest

from enos_pulumi.testing import PAUSED_PIPELINE, RUNNING_PIPELINE, SIMULATOR_ORG_ID, HostError, Interrupted

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

PROGRAM = Path(__file__).parent / "pipeline-release"
STAGE = "FixedTimeWindowAggregator_1"


def test_a_release_resets_its_pairs_once(enos_stack, enos_simulator):
    stack = enos_stack(
        PROGRAM,
        config={
            "pipelineId": PAUSED_PIPELINE,
            "release": "2026-11",
            "assetIds": ["inv01", "inv02"],
            "pointIds": ["INV.GenActivePW", "INV.Temp"],
        },
    )
    before = enos_simulator.stage_pairs(SIMULATOR_ORG_ID, PAUSED_PIPELINE, STAGE)

    first = stack.up()

    assert first.ops == {"window-agg-reset": "create"}
    gone = before - enos_simulator.stage_pairs(SIMULATOR_ORG_ID, PAUSED_PIPELINE, STAGE)
    assert gone == {(a, p) for a in ("inv01", "inv02") for p in ("INV.GenActivePW", "INV.Temp")}
    assert len(first.outputs["request_ids"]) == 1
    assert stack.up().ops == {"window-agg-reset": "same"}  # re-running the release resets nothing

    stack.config["release"] = "2026-12"  # the next release
    assert stack.preview().ops == {"window-agg-reset": "update"}  # shown in review...
    assert stack.up().ops == {"window-agg-reset": "update"}  # ...and run on merge


def test_a_running_pipeline_fails_the_release_before_deleting(enos_stack, enos_simulator):
    config = {
        "pipelineId": RUNNING_PIPELINE,
        "release": "2026-11",
        "assetIds": ["inv01"],
        "pointIds": ["INV.Temp"],
    }
    stack = enos_stack(PROGRAM, config=config)
    before = enos_simulator.stage_pairs(SIMULATOR_ORG_ID, RUNNING_PIPELINE, STAGE)

    with pytest.raises(HostError, match="is RUNNING"):  # the text `pulumi up` prints
        stack.up()

    assert stack.state == {}  # nothing recorded: the next `pulumi up` tries again
    assert enos_simulator.stage_pairs(SIMULATOR_ORG_ID, RUNNING_PIPELINE, STAGE) == before


def test_a_cancelled_up_leaves_the_pipeline_running(enos_stack, enos_simulator):
    config = {
        "pipelineId": RUNNING_PIPELINE,
        "release": "2026-11",
        "assetIds": ["inv01"],
        "pointIds": ["INV.Temp"],
        "pausePipeline": True,
        "resumeExecutionMode": "cluster",
    }
    stack = enos_stack(PROGRAM, config=config)
    killed = threading.Event()  # set: the CLI dies, as a cancelled CI job kills it
    enos_simulator.on_request = lambda entry: killed.set() if entry["operation"] == "delete" else None

    with pytest.raises(Interrupted):
        stack.up(interrupt=killed)  # killed with the pipeline paused for the reset

    deadline = time.monotonic() + 60
    while enos_simulator.pipeline_status(SIMULATOR_ORG_ID, RUNNING_PIPELINE) != "RUNNING":
        assert time.monotonic() < deadline, "the guardian did not start the pipeline again"
        time.sleep(0.2)
    enos_simulator.on_request = None
    again = stack.up()  # the pending create runs again, and Pulumi warns about it
    assert again.ops == {"window-agg-reset": "create"}
    assert any("pending operations" in warning for warning in again.warnings)
