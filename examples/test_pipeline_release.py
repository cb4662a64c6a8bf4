"""Tests of the example program without the Pulumi CLI and without EnOS (docs/testing.md).

`enos_stack` and `enos_simulator` are pytest fixtures that enos-pulumi installs (`enos-pulumi[testing]`).
"""

from pathlib import Path

import pytest

from enos_pulumi.testing import PAUSED_PIPELINE, RUNNING_PIPELINE, SIMULATOR_ORG_ID, HostError

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
