"""pause_pipeline through the provider's methods: pause -> reset -> resume, its failure rules and one
shared pause for concurrent resets of a pipeline, against a simulator whose transitions take time."""

from __future__ import annotations

import threading
import time
from typing import Any

import pulumi
import pytest
from pulumi.output import Unknown

from enos_pulumi.enos.errors import (
    DeletionRejectedError,
    OperationTimeoutError,
    PipelineLeftPausedError,
    PipelineNotPausedError,
    PipelineStatusError,
)
from enos_pulumi.provider import StageStateResetProvider
from tests.support.fixtures_simulator import (
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
)
from tests.support.pause_rig import PauseRig

STATE = (["a1", "a2"], ["p1", "p2"])


def provider(rig: PauseRig, **fields: Any) -> StageStateResetProvider:
    p = StageStateResetProvider()
    p._environ = {
        "ENOS_API_GATEWAY": rig.sim.base_url,
        "ENOS_ACCESS_KEY": SIM_ACCESS_KEY,
        "ENOS_SECRET_KEY": SIM_SECRET_KEY,
    }
    p._client_factory = lambda _settings: rig.client(**fields)
    return p


def props(p: StageStateResetProvider, **overrides: Any) -> dict[str, Any]:
    news: dict[str, Any] = {
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_RUNNING_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "asset_ids": STATE[0],
        "point_ids": STATE[1],
        "pause_pipeline": True,
        "resume_execution_mode": "cluster",
        "resume_kafka_rate": 1500.0,  # numbers arrive as floats
        **overrides,
    }
    result = p.check({}, news)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return dict(result.inputs)


def seed(rig: PauseRig, pipeline: str = SIM_RUNNING_PIPELINE, stage: str = SIM_STAGE) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, pipeline, stage, *STATE)


def assert_no_delete_outside_paused(rig: PauseRig) -> None:
    deletes = rig.log("delete")
    assert deletes, "no delete was sent"
    assert {d["pipeline_status"] for d in deletes} == {"PAUSED"}


def actions(rig: PauseRig, pipeline: str = SIM_RUNNING_PIPELINE) -> list[str]:
    return [t["action"] for t in rig.sim.transitions if t["pipeline_id"] == pipeline]


# -- the happy paths ---------------------------------------------------------------------------------------


def test_a_running_pipeline_is_paused_reset_and_running_again(pause_rig: PauseRig) -> None:
    seed(pause_rig)
    p = provider(pause_rig)
    outs = p.create(props(p)).outs

    assert pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == set()
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    assert actions(pause_rig) == ["pause", "start"]
    assert_no_delete_outside_paused(pause_rig)
    (start,) = pause_rig.log("start")
    assert start["operate_body"] == {"executionMode": 1, "kafkaRate": 1500}
    assert outs["paused_by_reset"] is True
    order = [e["operation"] for e in pause_rig.log("pause", "delete", "start")]
    assert order == ["pause", "delete", "start"]


def test_an_already_paused_pipeline_is_reset_and_left_paused(pause_rig: PauseRig) -> None:
    seed(pause_rig, SIM_PAUSED_PIPELINE)
    p = provider(pause_rig)
    outs = p.create(props(p, pipeline_id=SIM_PAUSED_PIPELINE)).outs
    assert outs["paused_by_reset"] is False
    assert pause_rig.log("pause", "start") == []
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"
    assert pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == set()


@pytest.mark.parametrize("status", ["STOPPED", "PUBLISHED"])
def test_a_stopped_or_published_pipeline_is_refused_and_untouched(pause_rig: PauseRig, status: str) -> None:
    seed(pause_rig)
    pause_rig.sim.set_pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE, status)
    p = provider(pause_rig)
    with pytest.raises(PipelineNotPausedError) as info:
        p.create(props(p))
    assert f"is {status}" in str(info.value)
    assert "pause_pipeline pauses only a RUNNING pipeline" in str(info.value)
    assert pause_rig.log("pause", "start", "delete") == []
    assert len(pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE)) == 4


# -- the failure rules -------------------------------------------------------------------------------------


def test_a_reset_that_fails_after_the_pause_still_resumes_and_says_so(pause_rig: PauseRig) -> None:
    seed(pause_rig)
    pause_rig.sim.answer_data_false(op="delete", count=1)
    p = provider(pause_rig)
    with pytest.raises(DeletionRejectedError) as info:
        p.create(props(p))
    assert "[the pipeline was resumed: it is RUNNING again]" in str(info.value)
    assert actions(pause_rig) == ["pause", "start"]
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_start_that_fails_leaves_the_pipeline_paused_and_says_so_with_the_code(pause_rig: PauseRig) -> None:
    seed(pause_rig)
    pause_rig.sim.error_code(61165, op="start")
    p = provider(pause_rig)
    with pytest.raises(PipelineLeftPausedError) as info:
        p.create(props(p))
    error = info.value
    (start,) = pause_rig.log("start")
    assert error.code == 61165 and error.request_id == start["request_id"]
    text = str(error)
    assert f"Pipeline {SIM_RUNNING_PIPELINE} (org {SIM_ORG_ID}) is left PAUSED" in text
    assert "EnOS 61165" in text and start["request_id"] in text
    assert "the reset succeeded" in text
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "PAUSED"
    assert pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == set()


def test_a_pause_that_never_takes_effect_deletes_nothing(pause_rig: PauseRig) -> None:
    seed(pause_rig)
    pause_rig.sim.no_effect("pause")
    p = provider(pause_rig, operation_timeout=30.0)
    with pytest.raises(OperationTimeoutError) as info:
        p.create(props(p))
    assert "Nothing was deleted" in str(info.value)
    assert pause_rig.log("delete", "start") == []
    assert len(pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE)) == 4


def test_a_pause_whose_answer_was_lost_is_waited_for_not_reported_as_failed(pause_rig: PauseRig) -> None:
    # The first pause request takes longer than the attempt bound: the client gives up on its answer
    # and asks again, while EnOS carries the first one out (and the second is refused, 61152, or lands
    # first). Either way the pause may have taken effect, so the reset waits for PAUSED, resets, and
    # starts the pipeline again - instead of "not paused" while it pauses behind the user's back.
    seed(pause_rig)
    pause_rig.sim.add_latency(600, op="pause", count=1)
    p = provider(pause_rig, attempt_timeout=0.3)
    outs = p.create(props(p)).outs
    assert outs["paused_by_reset"] is True
    assert len(pause_rig.log("pause")) >= 1
    assert_no_delete_outside_paused(pause_rig)
    assert pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == set()
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_pause_refused_outright_deletes_nothing_and_starts_nothing(pause_rig: PauseRig) -> None:
    # 61152 on the first answer: EnOS refused this pause, so a PAUSED status afterwards is someone
    # else's doing; starting the pipeline "again" would undo their pause.
    seed(pause_rig)
    pause_rig.sim.error_code(61152, op="pause", count=1)
    p = provider(pause_rig)
    with pytest.raises(PipelineStatusError) as info:
        p.create(props(p))
    # What the pipeline is now comes from a status read, not from what this reset meant to do.
    assert "Nothing was deleted; this reset's pause did not take effect" in str(info.value)
    assert f"Pipeline {SIM_RUNNING_PIPELINE} is RUNNING now." in str(info.value)
    assert pause_rig.log("delete", "start") == []


# -- one shared pause --------------------------------------------------------------------------------------


@pytest.mark.parametrize("resets", [2, 4])
def test_concurrent_resets_of_one_pipeline_share_one_pause(pause_rig: PauseRig, resets: int) -> None:
    stages = [f"FixedTimeWindowAggregator_{i}" for i in range(resets)]
    for stage in stages:
        seed(pause_rig, stage=stage)
    p = provider(pause_rig)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(stage: str) -> None:
        try:
            results.append(p.create(props(p, stage_instance_name=stage)).outs)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(stage,)) for stage in stages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert actions(pause_rig) == ["pause", "start"]
    assert_no_delete_outside_paused(pause_rig)
    assert all(out["paused_by_reset"] for out in results)
    start_time = pause_rig.log("start")[0]["time"]
    assert all(d["time"] < start_time for d in pause_rig.log("delete"))
    for stage in stages:
        assert pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, stage) == set()
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_reset_without_pause_pipeline_joins_a_pause_in_progress(pause_rig: PauseRig) -> None:
    # It must not be resumed from under: the start waits for it.
    seed(pause_rig, stage="FixedTimeWindowAggregator_A")
    seed(pause_rig, stage="FixedTimeWindowAggregator_B")
    p = provider(pause_rig)
    outs: list[Any] = []
    leader = threading.Thread(
        target=lambda: outs.append(p.create(props(p, stage_instance_name="FixedTimeWindowAggregator_A")).outs)
    )
    leader.start()
    follower_props = props(
        p, stage_instance_name="FixedTimeWindowAggregator_B", pause_pipeline=False, resume_execution_mode=None
    )
    follower = threading.Thread(target=lambda: outs.append(p.create(follower_props).outs))
    follower.start()
    leader.join(30)
    follower.join(30)
    assert len(outs) == 2
    assert actions(pause_rig) == ["pause", "start"]
    assert_no_delete_outside_paused(pause_rig)


# -- inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "prop", "reason"),
    [
        ({"resume_execution_mode": None}, "resume_execution_mode", "is required when pause_pipeline is true"),
        ({"resume_execution_mode": "turbo"}, "resume_execution_mode", "must be 'standalone' or 'cluster'"),
        ({"resume_kafka_rate": 0}, "resume_kafka_rate", "whole number of records per second"),
        ({"resume_kafka_rate": 2.5}, "resume_kafka_rate", "whole number"),
        ({"resume_kafka_rate": True}, "resume_kafka_rate", "whole number"),
        ({"resume_resource_config": ["cpu"]}, "resume_resource_config", "must be a mapping"),
        ({"resume_resource_config": {"cpu": float("nan")}}, "resume_resource_config", "not finite"),
        ({"resume_resource_config": {"n": [float("inf")]}}, "resume_resource_config", "not finite"),
        (  # the provider host turns an asset into an object, which the start could not send
            {"resume_resource_config": {"jar": pulumi.StringAsset("x")}},
            "resume_resource_config",
            "must hold JSON values only (objects with string keys, arrays, strings, finite numbers, true, "
            "false, null): it is sent as Operate Pipeline's resourceConfig, and "
            "resume_resource_config['jar'] is a StringAsset",
        ),
        ({"resume_resource_config": {"n": [1, b"x"]}}, "resume_resource_config", "['n'][1] is a bytes"),
        ({"resume_resource_config": {"n": {1: "a"}}}, "resume_resource_config", "not a string (int)"),
        ({"pause_pipeline": "yes"}, "pause_pipeline", "must be true or false"),
        ({"resume_policy": "sometimes"}, "resume_policy", "must be 'if-paused-by-reset' (the default"),
        ({"resume_policy": 1.0}, "resume_policy", "or 'always'"),
        (
            {"resume_policy": "always", "pause_pipeline": False},
            "resume_policy",
            "'always' needs pause_pipeline=true",
        ),
        ({"require_known_stage_type": "no"}, "require_known_stage_type", "must be true or false"),
    ],
)
def test_bad_pause_inputs_are_check_failures_naming_the_input(
    overrides: dict[str, Any], prop: str, reason: str
) -> None:
    news = {
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_RUNNING_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "asset_ids": ["a1"],
        "point_ids": ["p1"],
        "pause_pipeline": True,
        "resume_execution_mode": "standalone",
        **overrides,
    }
    failures = StageStateResetProvider().check({}, news).failures
    assert [(f.property, reason in f.reason) for f in failures] == [(prop, True)]


def test_pause_inputs_are_normalized_and_never_cause_a_reset() -> None:
    p = StageStateResetProvider()
    base = {
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_RUNNING_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "asset_ids": ["a1"],
        "point_ids": ["p1"],
    }
    config = {"cpu": 2.0, "nested": {"n": [1.0, 1.5]}}
    news = {
        **base,
        "pause_pipeline": True,
        "resume_execution_mode": " Cluster ",
        "resume_resource_config": config,
        "resume_policy": " Always ",
        "require_known_stage_type": False,
    }
    checked = p.check({}, news).inputs
    assert checked["resume_execution_mode"] == "cluster"
    assert checked["resume_policy"] == "always"
    assert checked["resume_kafka_rate"] == 1000
    assert checked["resume_resource_config"] == {"cpu": 2, "nested": {"n": [1, 1.5]}}
    from enos_pulumi.enos.ids import ids_hash

    olds = {"org_id": SIM_ORG_ID, "pipeline_id": SIM_RUNNING_PIPELINE, "stage_instance_name": SIM_STAGE,
            "ids_hash": ids_hash(["a1"], ["p1"]), "trigger": None}  # fmt: skip
    plain = p.check({}, base).inputs
    assert p.diff("id", olds, plain).changes is False
    assert p.diff("id", olds, checked).changes is False


def test_a_resource_config_unknown_at_preview_in_part_is_taken_as_it_will_come() -> None:
    config = {"cpu": 2, "jar": Unknown(), "more": [Unknown()]}
    news = {
        "org_id": SIM_ORG_ID,
        "pipeline_id": SIM_RUNNING_PIPELINE,
        "stage_instance_name": SIM_STAGE,
        "asset_ids": ["a1"],
        "point_ids": ["p1"],
        "pause_pipeline": True,
        "resume_execution_mode": "standalone",
        "resume_resource_config": config,
    }
    assert StageStateResetProvider().check({}, news).failures == []


def test_a_pause_that_takes_effect_late_is_undone_and_nothing_deleted(pause_rig: PauseRig) -> None:
    # EnOS accepted the pause but it took 5 s against a 3 s bound: the reset gives up, deletes nothing,
    # gives the pause the same time again to settle and, as it did pause, starts the pipeline again.
    seed(pause_rig)
    p = provider(pause_rig, operation_timeout=3.0)
    with pytest.raises(OperationTimeoutError) as info:
        p.create(props(p))
    assert "Nothing was deleted" in str(info.value)
    assert "had reached PAUSED and was started again" in str(info.value)
    assert actions(pause_rig) == ["pause", "start"]
    assert pause_rig.log("delete") == []
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_pause_still_pending_after_settling_is_not_called_undone(pause_rig: PauseRig) -> None:
    seed(pause_rig)
    p = provider(pause_rig, operation_timeout=1.0)  # 1 s, then 1 s more: the 5 s pause is still pending
    with pytest.raises(OperationTimeoutError) as info:
        p.create(props(p))
    text = str(info.value)
    assert "EnOS accepted the pause" in text and "it may still" in text
    assert "did not pause it" not in text
    assert pause_rig.log("delete", "start") == []


def test_a_reset_without_pause_pipeline_that_began_first_is_not_resumed_from_under(
    pause_rig: PauseRig,
) -> None:
    # The unmanaged reset registers before the pausing one starts; its slow status check then sees the
    # pause, and it deletes. The pipeline is started again only after it finished.
    seed(pause_rig, stage="FixedTimeWindowAggregator_A")
    seed(pause_rig, stage="FixedTimeWindowAggregator_B")
    p = provider(pause_rig)
    leader_paused = threading.Event()
    follower_checked = threading.Event()
    outs: list[Any] = []
    errors: list[BaseException] = []
    unmanaged = props(p, stage_instance_name="FixedTimeWindowAggregator_B", pause_pipeline=False,
                      resume_execution_mode=None)  # fmt: skip
    real_client = pause_rig.client

    def slow_check_client(**fields: Any) -> Any:
        client = real_client(**fields)
        original = client.pipeline_status

        def status(org: str, pid: str) -> str | None:
            leader_paused.wait(10)  # the check runs only once the other reset has paused the pipeline
            result = original(org, pid)
            follower_checked.set()
            return result

        client.pipeline_status = status  # type: ignore[method-assign]
        return client

    def run_unmanaged() -> None:
        q = provider(pause_rig)
        q._client_factory = lambda _settings: slow_check_client()
        try:
            outs.append(q.create(unmanaged).outs)
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=run_unmanaged)
    first.start()
    time.sleep(0.2)  # registered, waiting in its status check

    def delete_then_signal() -> Any:
        client = real_client()
        original = client.delete_stage_state

        def delete(*args: Any) -> Any:
            leader_paused.set()
            follower_checked.wait(10)
            return original(*args)

        client.delete_stage_state = delete  # type: ignore[method-assign]
        return client

    p._client_factory = lambda _settings: delete_then_signal()
    outs.append(p.create(props(p, stage_instance_name="FixedTimeWindowAggregator_A")).outs)
    first.join(30)
    assert errors == []
    assert len(outs) == 2
    assert actions(pause_rig) == ["pause", "start"]
    assert_no_delete_outside_paused(pause_rig)


# -- found PAUSED: a warning, and resume_policy ------------------------------------------------------------


def test_a_pipeline_found_paused_is_reset_left_paused_and_warned_about(pause_rig: PauseRig) -> None:
    seed(pause_rig, SIM_PAUSED_PIPELINE)
    p = provider(pause_rig)
    outs = p.create(props(p, pipeline_id=SIM_PAUSED_PIPELINE)).outs
    assert outs["paused_by_reset"] is False
    (warning,) = [e for e in pause_rig.events if e.outcome == "warning"]
    line = warning.describe()
    assert line.startswith(f"enos: WARNING (pipeline {SIM_PAUSED_PIPELINE}): pipeline {SIM_PAUSED_PIPELINE}")
    assert "was already PAUSED when this reset began, so the reset leaves it PAUSED" in line
    assert "an earlier pulumi up was interrupted" in line and "resume_policy='always'" in line
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"


def test_resume_policy_always_starts_a_pipeline_found_paused_after_the_reset(pause_rig: PauseRig) -> None:
    seed(pause_rig, SIM_PAUSED_PIPELINE)
    p = provider(pause_rig)
    outs = p.create(props(p, pipeline_id=SIM_PAUSED_PIPELINE, resume_policy="always")).outs
    assert outs["paused_by_reset"] is False  # it did not pause it
    assert actions(pause_rig, SIM_PAUSED_PIPELINE) == ["start"]
    order = [e["operation"] for e in pause_rig.log("delete", "start")]
    assert order == ["delete", "start"]
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "RUNNING"
    (warning,) = [e.detail for e in pause_rig.events if e.outcome == "warning"]
    assert "resume_policy is 'always', so the reset starts it afterwards" in warning


def test_resume_policy_always_still_starts_the_pipeline_when_the_reset_fails(pause_rig: PauseRig) -> None:
    seed(pause_rig, SIM_PAUSED_PIPELINE)
    pause_rig.sim.answer_data_false(op="delete", count=1)
    p = provider(pause_rig)
    with pytest.raises(DeletionRejectedError) as info:
        p.create(props(p, pipeline_id=SIM_PAUSED_PIPELINE, resume_policy="always"))
    assert "[the pipeline was resumed: it is RUNNING again]" in str(info.value)
    assert pause_rig.sim.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "RUNNING"


def test_a_start_refused_reports_the_status_it_read_afterwards(pause_rig: PauseRig) -> None:
    seed(pause_rig)
    pause_rig.sim.error_code(61165, op="start")
    p = provider(pause_rig)
    with pytest.raises(PipelineLeftPausedError) as info:
        p.create(props(p))
    assert info.value.status == "PAUSED"
    # The status named comes from a List Pipelines read after the failed start.
    starts = [e["time"] for e in pause_rig.log("start")]
    assert any(e["time"] > starts[-1] for e in pause_rig.log("list"))


def test_the_reset_bound_starts_once_the_pipeline_is_paused(pause_rig: PauseRig) -> None:
    # A 5 s pause against a 2 s reset bound: the deletes still have their 2 s once it is PAUSED.
    seed(pause_rig)
    p = provider(pause_rig, reset_timeout=2.0)
    outs = p.create(props(p)).outs
    assert outs["paused_by_reset"] is True
    assert pause_rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == set()
    assert_no_delete_outside_paused(pause_rig)
