"""pause_pipeline and the auth schemes through Pulumi's real provider host (the process `pulumi up` starts),
against a simulator whose pause and start take (real, short) time."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import HostError
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_RUNNING_PIPELINE, make_simulator
from tests.support.host_errors import assert_raised
from tests.support.host_fixtures import HostedProvider, HostFactory
from tests.support.tls_front import TlsFront, make_self_signed

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

pytest_plugins = ["tests.support.host_fixtures"]

PAUSE = {"pause_pipeline": True, "resume_execution_mode": "standalone", "resume_kafka_rate": 800}


@pytest.fixture
def slow_sim() -> Iterator[Simulator]:
    sim = make_simulator(pause_seconds=0.6, start_seconds=0.4)
    try:
        yield sim
    finally:
        sim.stop()


def seed(sim: Simulator, stage: str) -> None:
    sim.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, stage, ["a1", "a2"], ["p1", "p2"])


def actions(sim: Simulator) -> list[str]:
    return [t["action"] for t in sim.transitions if t["pipeline_id"] == SIM_RUNNING_PIPELINE]


def deletes_all_while_paused(sim: Simulator) -> bool:
    deletes = [e for e in sim.requests if e["operation"] == "delete"]
    return bool(deletes) and all(e["pipeline_status"] == "PAUSED" for e in deletes)


def test_a_running_pipeline_is_reset_hands_free_through_the_host(
    slow_sim: Simulator, host_factory: HostFactory
) -> None:
    h = host_factory(slow_sim)
    stage = "FixedTimeWindowAggregator_1"
    seed(slow_sim, stage)
    step = h.engine.up(
        "hands-free", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, stage_instance_name=stage, **PAUSE)
    )
    assert step.op == "create"
    assert step.outputs is not None and step.outputs["paused_by_reset"] is True
    assert slow_sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, stage) == set()
    assert slow_sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    assert actions(slow_sim) == ["pause", "start"]
    assert deletes_all_while_paused(slow_sim)
    (start,) = [e for e in slow_sim.requests if e["operation"] == "start"]
    assert start["operate_body"] == {"executionMode": 0, "kafkaRate": 800}
    # The progress `pulumi up` shows: the pause, the waits, the start.
    err = h.host.stderr
    assert "enos: Operate Pipeline (pause) pipeline pl-running | ok" in err
    assert "enos: Wait for pipeline status pipeline pl-running | reached | PAUSED" in err
    assert "enos: Operate Pipeline (start) pipeline pl-running | ok" in err
    # A second up changes nothing: no pause, no start, no delete.
    again = h.engine.up(
        "hands-free", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, stage_instance_name=stage, **PAUSE)
    )
    assert again.op == "same"
    assert actions(slow_sim) == ["pause", "start"]


@pytest.mark.parametrize("resets", [2, 4])
def test_concurrent_resets_in_one_host_share_one_pause(
    slow_sim: Simulator, host_factory: HostFactory, resets: int
) -> None:
    h = host_factory(slow_sim)
    stages = [f"FixedTimeWindowAggregator_{i}" for i in range(resets)]
    for stage in stages:
        seed(slow_sim, stage)
    outputs: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def create(stage: str) -> None:
        urn = h.engine.urn(f"reset-{stage}")
        try:
            inputs = h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, stage_instance_name=stage, **PAUSE)
            checked, failures = h.host.check(urn, {}, inputs)
            assert failures == []
            outputs.append(h.host.create(urn, checked)[1])
        except BaseException as exc:
            errors.append(exc)

    # The engine sends independent resources' Creates at once; the host serves up to 4 in parallel.
    threads = [threading.Thread(target=create, args=(stage,)) for stage in stages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert actions(slow_sim) == ["pause", "start"]
    assert deletes_all_while_paused(slow_sim)
    assert [o["paused_by_reset"] for o in outputs] == [True] * resets
    for stage in stages:
        assert slow_sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, stage) == set()
    assert slow_sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_failed_start_through_the_host_says_the_pipeline_is_left_paused(
    slow_sim: Simulator, host_factory: HostFactory
) -> None:
    h = host_factory(slow_sim)
    seed(slow_sim, "FixedTimeWindowAggregator_1")
    slow_sim.error_code(61165, op="start")
    with pytest.raises(HostError) as info:
        h.engine.up("left-paused", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, **PAUSE))
    assert_raised(info.value.details, "PipelineLeftPausedError")
    assert "is left PAUSED" in info.value.details and "EnOS 61165" in info.value.details
    assert slow_sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "PAUSED"


@pytest.mark.parametrize("scheme", ["bearer", "apim-signature"])
def test_each_auth_scheme_end_to_end_through_the_host(host_factory: HostFactory, scheme: str) -> None:
    sim = make_simulator(auth=scheme)
    try:
        h: HostedProvider = host_factory(sim, settings={"enos:authScheme": scheme})
        sim.set_pairs(SIM_ORG_ID, "pl-paused", "FixedTimeWindowAggregator_1", ["a1", "a2"], ["p1", "p2"])
        step = h.engine.up("auth", h.inputs())
        assert step.op == "create"
        assert {e["auth"] for e in sim.requests if e["operation"] in ("list", "delete")} == {scheme}
        assert sim.stage_pairs(SIM_ORG_ID, "pl-paused", "FixedTimeWindowAggregator_1") == set()
    finally:
        sim.stop()


def test_the_wrong_auth_scheme_is_refused_naming_the_setting(host_factory: HostFactory) -> None:
    sim = make_simulator(auth="bearer")
    try:
        h = host_factory(sim, settings={"enos:retryDeadlineSeconds": "0"})
        with pytest.raises(HostError) as info:
            h.engine.up("wrong-scheme", h.inputs())
        assert_raised(info.value.details, "AuthenticationError")
        assert "enos:authScheme" in info.value.details
    finally:
        sim.stop()


# -- answers lost, starts that fail, bounds (issue: a production pipeline never left stopped by mistake) --


@pytest.mark.parametrize(
    ("kind", "status", "settings"),
    [
        ("status", 503, {}),  # a 5xx from the gateway after EnOS paused it; the retry is refused, 61152
        ("html", 502, {}),
        ("code", 503, {}),  # 61199 "other error", after the pause took effect
        ("drop", 503, {}),  # the connection cut after the request went out
    ],
)
def test_a_pause_that_took_effect_but_whose_answer_was_lost_is_reset_and_resumed(
    slow_sim: Simulator, host_factory: HostFactory, kind: str, status: int, settings: dict[str, str]
) -> None:
    h = host_factory(slow_sim, settings=settings)
    seed(slow_sim, "FixedTimeWindowAggregator_1")
    slow_sim.answer_lost(kind, op="pause", status=status, code=61199)
    step = h.engine.up("lost-pause", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, **PAUSE))
    assert step.outputs is not None and step.outputs["paused_by_reset"] is True
    assert deletes_all_while_paused(slow_sim)
    assert slow_sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "FixedTimeWindowAggregator_1") == set()
    assert actions(slow_sim) == ["pause", "start"]
    assert slow_sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_pause_answered_only_with_5xx_is_waited_for_not_called_not_paused(
    slow_sim: Simulator, host_factory: HostFactory
) -> None:
    # Every answer to every pause attempt is lost (the first paused it, the others were refused behind
    # the 503s): the retries end in a 503, which may have landed, so the reset looks before it says.
    h = host_factory(slow_sim, settings={"enos:retryDeadlineSeconds": "1"})
    seed(slow_sim, "FixedTimeWindowAggregator_1")
    slow_sim.answer_lost("status", op="pause", status=503, count=None)
    step = h.engine.up("only-5xx", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, **PAUSE))
    assert step.outputs is not None and step.outputs["paused_by_reset"] is True
    assert len([e for e in slow_sim.requests if e["operation"] == "pause"]) >= 2
    assert actions(slow_sim) == ["pause", "start"]
    assert slow_sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_refused_pause_reports_the_status_it_read(slow_sim: Simulator, host_factory: HostFactory) -> None:
    h = host_factory(slow_sim)
    seed(slow_sim, "FixedTimeWindowAggregator_1")
    slow_sim.error_code(61152, op="pause", count=1)  # refused on its first answer
    with pytest.raises(HostError) as info:
        h.engine.up("refused", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, **PAUSE))
    assert "this reset's pause did not take effect. Pipeline pl-running is RUNNING now." in info.value.details
    assert "the pipeline was not paused" not in info.value.details
    assert actions(slow_sim) == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_a_pause_whose_tls_answer_broke_after_sending_is_not_a_handshake_failure(
    slow_sim: Simulator, host_factory: HostFactory, tmp_path: Path
) -> None:
    cert, key = make_self_signed(tmp_path)
    front = TlsFront(slow_sim.port, cert, key, break_answer_to=b"action=pause")
    try:
        h = host_factory(slow_sim, gateway=front.url, settings={"enos:caBundle": str(cert)})
        seed(slow_sim, "FixedTimeWindowAggregator_1")
        step = h.engine.up("tls-cut", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, **PAUSE))
    finally:
        front.close()
    assert front.broken == 1
    err = h.host.stderr
    assert "the TLS connection to localhost:" in err and "broke after the request was sent" in err
    assert "TLS handshake" not in err
    assert step.outputs is not None and step.outputs["paused_by_reset"] is True
    assert actions(slow_sim) == ["pause", "start"]
    assert slow_sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"


def test_a_start_that_ends_failed_is_reported_at_once_with_its_status_and_request_id(
    slow_sim: Simulator, host_factory: HostFactory
) -> None:
    # EnOS accepts the start and the pipeline then goes FAILED: the wait ends there, not at the bound.
    h = host_factory(slow_sim, settings={"enos:operationTimeoutSeconds": "15"})
    seed(slow_sim, "FixedTimeWindowAggregator_1")
    slow_sim.becomes("FAILED", op="start", count=1)
    with pytest.raises(HostError) as info:
        h.engine.up("failed-start", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, **PAUSE))
    assert_raised(info.value.details, "PipelineLeftPausedError")
    (start,) = [e for e in slow_sim.requests if e["operation"] == "start"]
    text = info.value.details
    assert "Pipeline pl-running (org o-test) is not running: its status is FAILED" in text
    assert f"EnOS accepted it (requestId {start['request_id']})" in text
    assert "became FAILED while waiting for RUNNING" in text
    assert "left PAUSED" not in text and "ran past its bound" not in text
    waits = [line for line in h.host.stderr.splitlines() if "want RUNNING" in line]
    assert len(waits) <= 2  # it stopped looking once FAILED showed, instead of polling for 15 s
    assert slow_sim.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "FAILED"


def test_a_pause_slower_than_the_reset_bound_still_resets(host_factory: HostFactory) -> None:
    # The reset's bound (enos:resetTimeoutSeconds) starts once the pipeline is PAUSED: a pause that
    # takes longer than it must not pause and restart a production pipeline on every up, deleting nothing.
    sim = make_simulator(pause_seconds=2.5, start_seconds=0.2)
    try:
        h = host_factory(sim, settings={"enos:resetTimeoutSeconds": "1"})
        seed(sim, "FixedTimeWindowAggregator_1")
        step = h.engine.up("slow-pause", h.inputs(pipeline_id=SIM_RUNNING_PIPELINE, **PAUSE))
        assert step.outputs is not None and step.outputs["paused_by_reset"] is True
        assert sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "FixedTimeWindowAggregator_1") == set()
        assert deletes_all_while_paused(sim)
        assert actions(sim) == ["pause", "start"]
    finally:
        sim.stop()
