"""EnosClient end to end against the local EnOS simulator, over real loopback sockets.

Every client is built the way the provider builds one (``resolve_settings``), with its own token cache and
session pool, and a retry policy whose clock only moves when it "sleeps": retries are real HTTP calls,
the waits between them are recorded instead of slept.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from enos_pulumi.enos import auth
from enos_pulumi.enos.client import EnosClient, RequestEvent, SessionPool, StageTarget
from enos_pulumi.enos.errors import (
    AuthenticationError,
    DeletionRejectedError,
    InvalidParameterError,
    PipelineAccessError,
    PipelineNotFoundError,
    PipelineStatusError,
    RateLimitedError,
    ServerError,
    TooManyPointsError,
    UnsupportedStageError,
)
from enos_pulumi.enos.ids import plan_tiling
from enos_pulumi.enos.retry import Backoff, RetryPolicy
from enos_pulumi.enos.settings import resolve_settings
from enos_pulumi.simulator import Simulator
from tests.support.fakes import FakeTime
from tests.support.fixtures_simulator import (
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_OTHER_ORG_ID,
    SIM_OTHER_PIPELINE,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
)

Factory = Callable[..., Simulator]

TARGET = StageTarget(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)
TARGET_KEY = (SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)
ASSETS = ["inv01", "inv02", "inv03"]
POINTS = ["INV.GenActivePW", "INV.Temp"]
OTHER_STAGE = "LastRecordAppender_1"
SIBLING_PIPELINE = "pl-sibling"


# -- harness -------------------------------------------------------------------------------------------------


class StrictMillis:
    """Real wall-clock signing timestamps (the simulator checks the 15-minute window), strictly increasing.

    Retries here do not really wait, so two token requests could otherwise fall in one millisecond and be
    refused as a replayed ``encryption`` (1001).
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1_000_000, self._last + 1)
            return self._last


class Rig:
    """One simulator plus what every client of a test shares: token cache, session pool, fake time."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.time = FakeTime()
        self.tokens = auth.TokenCache()
        self.sessions = SessionPool()
        self.events: list[RequestEvent] = []
        self.millis = StrictMillis()

    def client(
        self,
        *,
        parallel: int = 1,
        max_pairs: int = 100_000,
        deadline: float = 30.0,
        access_key: str = SIM_ACCESS_KEY,
        secret_key: str = SIM_SECRET_KEY,
        now_ms: Callable[[], int] | None = None,
        **fields: Any,
    ) -> EnosClient:
        """``fields`` set other Settings fields directly (below resolve_settings' floors, say)."""
        settings = resolve_settings(
            {
                "api_gateway": self.sim.base_url,
                "access_key": access_key,
                "secret_key": secret_key,
                "parallel_requests": parallel,
                "max_pairs_per_request": max_pairs,
                "retry_deadline": deadline,
            }
        )
        settings = dataclasses.replace(settings, **fields)
        policy = RetryPolicy(
            deadline=settings.retry_deadline,
            backoff=Backoff(initial=0.5, multiplier=2.0, maximum=20.0),
            clock=self.time.clock,
            sleep=self.time.sleep,
            rng=lambda: 0.5,
        )
        return EnosClient(
            settings,
            retry=policy,
            on_event=self.events.append,
            now_ms=now_ms or self.millis,
            tokens=self.tokens,
            sessions=self.sessions,
        )

    def log(self, operation: str | None = None) -> list[dict[str, Any]]:
        entries = self.sim.requests
        return entries if operation is None else [e for e in entries if e["operation"] == operation]

    def close(self) -> None:
        self.sessions.clear()


@pytest.fixture
def rig(simulator: Simulator) -> Iterator[Rig]:
    r = Rig(simulator)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def rigs(simulator_factory: Factory) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**options: Any) -> Rig:
        r = Rig(simulator_factory(**options))
        made.append(r)
        return r

    try:
        yield make
    finally:
        for r in made:
            r.close()


def pairs(assets: Sequence[str], points: Sequence[str]) -> set[tuple[str, str]]:
    return {(a, p) for a in assets for p in points}


def ok_pairs(entries: Sequence[dict[str, Any]]) -> int:
    """Asset x point pairs named by the successful (HTTP 200, code 0) stage state requests of a log."""
    return sum(e["asset_count"] * e["point_count"] for e in entries if e["status"] == 200 and e["code"] == 0)


def seed_neighbours(sim: Simulator) -> dict[tuple[str, str, str], set[tuple[str, str]]]:
    """State the reset of TARGET x ASSETS x POINTS must not touch; returns it per (org, pipeline, stage)."""
    sim.add_pipeline(SIM_ORG_ID, SIBLING_PIPELINE, status="PAUSED")
    # Same stage: other assets with the named points, and the named assets with another point.
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["inv04", "inv05"], POINTS)
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, ["INV.Volt"])
    # The very same pairs elsewhere: another stage, other pipelines, another organization.
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, OTHER_STAGE, ASSETS, POINTS)
    sim.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    sim.set_pairs(SIM_ORG_ID, SIBLING_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    sim.set_pairs(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    keys = [
        (SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE),
        (SIM_ORG_ID, SIM_PAUSED_PIPELINE, OTHER_STAGE),
        (SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE),
        (SIM_ORG_ID, SIBLING_PIPELINE, SIM_STAGE),
        (SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE),
    ]
    return {key: sim.stage_pairs(*key) for key in keys}


def snapshot(sim: Simulator, keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], set]:
    return {key: sim.stage_pairs(*key) for key in keys}


def bulk_ids(prefix: str, n: int) -> list[str]:
    return sorted(f"{prefix}{i:03d}" for i in range(n))


# -- a reset does what it says, and only that ------------------------------------------------------------


def test_full_reset_removes_exactly_the_named_pairs_and_nothing_else(rig: Rig) -> None:
    sim = rig.sim
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS, value=42.0)
    before = seed_neighbours(sim)
    total_before = sim.pair_count()
    named = pairs(ASSETS, POINTS)
    assert named <= before[(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE)]

    client = rig.client()
    # The reset as the provider runs it: paused check, delete, read back.
    assert client.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"
    report = client.delete_stage_state(TARGET, ASSETS, POINTS)
    items, _ = client.get_stage_state(TARGET, ASSETS, POINTS)

    assert items == []
    assert report.pairs == len(named) == 6
    deletes = rig.log("delete")
    assert len(deletes) == 1 == report.request_count
    assert report.request_ids == (deletes[0]["request_id"],)
    assert (deletes[0]["asset_count"], deletes[0]["point_count"]) == (3, 2)

    after = snapshot(sim, list(before))
    expected = dict(before)
    expected[TARGET_KEY] = before[TARGET_KEY] - named
    assert after == expected
    assert after[TARGET_KEY] == pairs(["inv04", "inv05"], POINTS) | pairs(ASSETS, ["INV.Volt"])
    assert sim.pair_count() == total_before - len(named)
    assert rig.time.sleeps == []


def test_multi_batch_reset_covers_every_pair_exactly_once(rig: Rig) -> None:
    sim = rig.sim
    assets, points = bulk_ids("wtg", 23), bulk_ids("pt", 7)
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, points)
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["keep-me"], points)

    report = rig.client(max_pairs=20).delete_stage_state(TARGET, assets, points)

    deletes = rig.log("delete")
    assert len(deletes) == report.request_count == plan_tiling(23, 7, 20).request_count
    assert report.request_count >= math.ceil(23 * 7 / 20) > 1
    assert all(e["status"] == 200 and e["code"] == 0 for e in deletes)
    assert all(e["asset_count"] * e["point_count"] <= 20 for e in deletes)
    # The requests name 161 pairs in all, and all 161 are gone: so each pair was named exactly once.
    assert ok_pairs(deletes) == report.pairs == 23 * 7
    assert sim.stage_pairs(*TARGET_KEY) == pairs(["keep-me"], points)
    assert sorted(report.request_ids) == sorted(e["request_id"] for e in deletes)
    assert len(set(report.request_ids)) == report.request_count
    ok_events = [e for e in rig.events if e.operation == "Delete Stage State" and e.outcome == "ok"]
    assert len(ok_events) == report.request_count


def test_the_default_limit_keeps_every_request_within_the_enos_limit(rig: Rig) -> None:
    assets, points = ["wtg-a", "wtg-b"], [f"pt{i:05d}" for i in range(60_000)]
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, points)
    assert rig.sim.pair_limit == 100_000  # the documented limit: 120,000 pairs cannot go in one request

    report = rig.client().delete_stage_state(TARGET, assets, points)

    deletes = rig.log("delete")
    assert [e["code"] for e in deletes] == [0, 0] and report.request_count == 2
    assert ok_pairs(deletes) == report.pairs == 120_000
    assert rig.sim.pair_count() == 0


def test_four_parallel_requests_give_the_same_result_as_one(rigs: Callable[..., Rig]) -> None:
    assets, points = bulk_ids("wtg", 23), bulk_ids("pt", 7)
    outcomes = []
    for parallel in (1, 4):
        r = rigs()
        r.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, points)
        r.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["keep-me"], points)
        r.sim.add_latency(30, op="delete")  # long enough for the parallel requests to overlap visibly
        report = r.client(parallel=parallel, max_pairs=20).delete_stage_state(TARGET, assets, points)
        deletes = r.log("delete")
        assert sorted(report.request_ids) == sorted(e["request_id"] for e in deletes)
        outcomes.append(
            {
                "remaining": r.sim.stage_pairs(*TARGET_KEY),
                "shapes": sorted((e["asset_count"], e["point_count"]) for e in deletes),
                "pairs": ok_pairs(deletes),
                "report": (report.request_count, report.pairs),
                "concurrency": max_overlap(deletes),
                "tokens": r.sim.tokens_issued,
            }
        )
    sequential, parallel4 = outcomes
    assert sequential["remaining"] == parallel4["remaining"] == pairs(["keep-me"], points)
    assert sequential["shapes"] == parallel4["shapes"]
    assert sequential["pairs"] == parallel4["pairs"] == 23 * 7
    assert sequential["report"] == parallel4["report"]
    assert sequential["concurrency"] == 1
    assert 2 <= parallel4["concurrency"] <= 4
    assert sequential["tokens"] == parallel4["tokens"] == 1


def max_overlap(entries: Sequence[dict[str, Any]]) -> int:
    """How many of the logged requests the server was handling at once, at most."""
    edges = []
    for e in entries:
        end = e["time"]
        edges += [(end - e["duration_ms"] / 1000, 1), (end, -1)]
    current = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        current += step
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("parallel", [1, 4])
def test_61105_from_the_server_is_split_and_completed(rig: Rig, parallel: int) -> None:
    sim = rig.sim
    assets, points = bulk_ids("wtg", 8), bulk_ids("pt", 5)
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, points)
    sim.pair_limit = 10  # below the client's 40: the server refuses what the client thinks is fine

    report = rig.client(parallel=parallel, max_pairs=40).delete_stage_state(TARGET, assets, points)

    deletes = rig.log("delete")
    refused = [e for e in deletes if e["code"] == 61105]
    done = [e for e in deletes if e["code"] == 0]
    assert refused and len(refused) + len(done) == len(deletes)
    assert (refused[0]["asset_count"], refused[0]["point_count"]) == (8, 5)
    assert all(e["asset_count"] * e["point_count"] <= 10 for e in done)
    assert ok_pairs(done) == report.pairs == 40
    assert report.request_count == len(done)
    assert sorted(report.request_ids) == sorted(e["request_id"] for e in done)
    assert sim.stage_pairs(*TARGET_KEY) == set()
    assert any(e.outcome == "split" for e in rig.events)
    assert rig.time.sleeps == []  # a split is not a retry: nothing waited


def test_61105_down_to_a_single_pair_is_reported(rig: Rig) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.pair_limit = 0

    with pytest.raises(TooManyPointsError) as info:
        rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    assert info.value.code == 61105
    assert [e["code"] for e in rig.log("delete")] == [61105] * len(rig.log("delete"))
    assert (rig.log("delete")[-1]["asset_count"], rig.log("delete")[-1]["point_count"]) == (1, 1)
    assert rig.sim.stage_pairs(*TARGET_KEY) == pairs(ASSETS, POINTS)


# -- faults: survived, or reported as the design says ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "op"), [(503, "delete"), (503, None), (500, "delete"), (502, "delete"), (504, "delete")]
)
def test_a_5xx_burst_is_survived(rig: Rig, status: int, op: str | None) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.fail_with_status(status, op=op, count=2)

    report = rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    statuses = [e["status"] for e in rig.log()]
    assert statuses.count(status) == 2
    assert statuses[-1] == 200 and rig.log()[-1]["operation"] == "delete"
    assert len(rig.time.sleeps) == 2
    assert report.request_count == 1
    assert rig.sim.stage_pairs(*TARGET_KEY) == set()
    assert sum(e.outcome == "retrying" for e in rig.events) == 2
    assert rig.sim.connections_opened == 1  # error answers do not cost the keep-alive connection


def test_a_429_with_retry_after_is_survived_after_waiting_at_least_that_long(rig: Rig) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.fail_with_status(429, op="delete", count=1, retry_after=7)

    rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    assert [e["status"] for e in rig.log("delete")] == [429, 200]
    assert len(rig.time.sleeps) == 1
    assert rig.time.sleeps[0] >= 7
    assert rig.sim.stage_pairs(*TARGET_KEY) == set()


def test_a_retry_after_beyond_the_deadline_gives_up_without_waiting(rig: Rig) -> None:
    rig.sim.fail_with_status(429, op="delete", retry_after=100)

    with pytest.raises(RateLimitedError) as info:
        rig.client(deadline=30).delete_stage_state(TARGET, ASSETS, POINTS)

    assert info.value.http_status == 429
    assert "API rate limit exceeded" in str(info.value)
    assert rig.time.sleeps == []
    assert len(rig.log("delete")) == 1


def test_a_dropped_connection_is_survived(rig: Rig) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.drop_connections(op="token", count=1)
    rig.sim.drop_connections(op="delete", count=1)

    report = rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    assert [e["status"] for e in rig.log("token")] == [None, 200]
    deletes = rig.log("delete")
    assert [e["status"] for e in deletes] == [None, 200]
    assert deletes[0]["fault"] == "drop"
    assert len(rig.time.sleeps) == 2
    assert rig.sim.tokens_issued == 1
    assert report.request_ids == (deletes[1]["request_id"],)
    assert rig.sim.stage_pairs(*TARGET_KEY) == set()


def test_a_read_timeout_is_retried(rig: Rig) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.add_latency(400, op="delete", count=1)
    # Below the floor that resolve_settings enforces, so that the test does not wait long.
    client = rig.client(read_timeout=0.2)

    report = client.delete_stage_state(TARGET, ASSETS, POINTS)

    assert len(rig.time.sleeps) == 1
    assert any(e.outcome == "retrying" and "no data from" in e.detail for e in rig.events)
    assert rig.sim.stage_pairs(*TARGET_KEY) == set()
    # The slow first attempt is logged when the server gets to answer it, after the retry succeeded.
    deadline = time.monotonic() + 5
    while len(rig.log("delete")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    deletes = rig.log("delete")
    assert [e["fault"] for e in deletes] == [None, "latency"]
    assert report.request_ids == (deletes[0]["request_id"],)


@pytest.mark.parametrize(("code", "op"), [(61199, "delete"), (1005, "token"), (1001, "token")])
def test_an_internal_error_code_burst_is_survived(rig: Rig, code: int, op: str) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.error_code(code, op=op, count=2)

    rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    assert [e["code"] for e in rig.log(op)] == [code, code, 0]
    assert len(rig.time.sleeps) == 2
    assert rig.sim.stage_pairs(*TARGET_KEY) == set()


def test_61102_is_not_retried(rig: Rig) -> None:
    rig.sim.error_code(61102, op="delete")

    with pytest.raises(InvalidParameterError) as info:
        rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    assert info.value.code == 61102
    assert len(rig.log("delete")) == 1
    assert rig.time.sleeps == []


def test_a_403_is_an_authentication_error_without_renewal_or_retry(rig: Rig) -> None:
    rig.sim.fail_with_status(403, op="delete")

    with pytest.raises(AuthenticationError) as info:
        rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    assert info.value.http_status == 403
    assert len(rig.log("delete")) == 1
    assert rig.sim.tokens_issued == 1
    assert rig.time.sleeps == []


@pytest.mark.parametrize("op", ["delete", None])
def test_one_html_502_page_is_survived(rig: Rig, op: str | None) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.html_error(502, op=op, count=1)

    rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    statuses = [e["status"] for e in rig.log()]
    assert statuses.count(502) == 1 and statuses[-1] == 200
    assert len(rig.time.sleeps) == 1
    assert rig.sim.stage_pairs(*TARGET_KEY) == set()


def test_a_persistent_html_502_page_ends_in_a_server_error_that_quotes_it(rig: Rig) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.html_error(502, op="delete")

    with pytest.raises(ServerError) as info:
        rig.client(deadline=5).delete_stage_state(TARGET, ASSETS, POINTS)

    text = str(info.value)
    assert info.value.http_status == 502
    assert "502 Bad Gateway" in text and "non-JSON" in text and "nginx" in text
    assert "<html>" not in text  # the page is summarised, not dumped
    assert "gave up after" in text and "Delete Stage State" in text
    deletes = rig.log("delete")
    assert len(deletes) == len(rig.time.sleeps) + 1 >= 2
    assert all(e["status"] == 502 for e in deletes)
    assert sum(rig.time.sleeps) <= 5
    assert rig.sim.stage_pairs(*TARGET_KEY) == pairs(ASSETS, POINTS)


@pytest.mark.parametrize("parallel", [1, 4])
def test_expired_tokens_are_renewed_once(rig: Rig, parallel: int) -> None:
    sim = rig.sim
    assets, points = bulk_ids("wtg", 16), bulk_ids("pt", 5)
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, points)
    client = rig.client(parallel=parallel, max_pairs=10)

    assert client.delete_stage_state(TARGET, assets[:8], points).request_count == 4
    assert sim.tokens_issued == 1
    assert sim.expire_tokens() == 1
    report = client.delete_stage_state(TARGET, assets[8:], points)

    assert sim.tokens_issued == 2
    assert len(rig.log("token")) == 2
    refused = [e for e in rig.log() if e["status"] == 401]
    assert refused and all(e["code"] == 1203 for e in refused)
    assert len(refused) <= parallel  # each request in flight at expiry is refused once, then renewed
    assert report.request_count == 4
    assert rig.time.sleeps == []  # a renewal is not a retry
    assert sim.stage_pairs(*TARGET_KEY) == set()


def test_an_expired_token_code_in_a_200_envelope_is_renewed_once(rig: Rig) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.error_code(1203, op="delete", count=1)

    rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    assert [e["code"] for e in rig.log("delete")] == [1203, 0]
    assert rig.sim.tokens_issued == 2
    assert rig.time.sleeps == []
    assert rig.sim.stage_pairs(*TARGET_KEY) == set()


def test_a_token_is_renewed_before_it_expires(rig: Rig) -> None:
    rig.sim.token_lifetime = 0.3  # renewed 0.15 s after issue, well before the server expires it
    client = rig.client()

    assert client.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"
    time.sleep(0.2)
    assert client.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"

    assert rig.sim.tokens_issued == 2
    assert [e["status"] for e in rig.log()] == [200] * 4  # renewed ahead: never refused


def test_a_refusal_that_renewing_does_not_cure_is_an_authentication_error(rig: Rig) -> None:
    skewed = StrictMillis()
    client = rig.client(now_ms=lambda: skewed() - 20 * 60 * 1000)  # 20 minutes behind the gateway

    with pytest.raises(AuthenticationError) as info:
        client.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE)

    assert info.value.http_status == 401
    assert "timestamp out of range" in str(info.value) and "clock" in str(info.value)
    assert [e["status"] for e in rig.log("list")] == [401, 401]  # renewed once, then the refusal stands
    assert rig.sim.tokens_issued == 2
    assert rig.time.sleeps == []


def test_data_false_is_a_rejected_deletion_and_not_retried(rig: Rig) -> None:
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    rig.sim.answer_data_false()

    with pytest.raises(DeletionRejectedError) as info:
        rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    deletes = rig.log("delete")
    assert len(deletes) == 1
    assert info.value.request_id == deletes[0]["request_id"]
    assert deletes[0]["request_id"] in str(info.value)
    assert "data: false" in str(info.value)
    assert rig.time.sleeps == []
    assert rig.sim.stage_pairs(*TARGET_KEY) == pairs(ASSETS, POINTS)


def test_data_false_in_a_multi_batch_reset_stops_later_batches(rig: Rig) -> None:
    assets = bulk_ids("wtg", 6)
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, POINTS)
    rig.sim.answer_data_false(count=1)

    with pytest.raises(DeletionRejectedError) as info:
        rig.client(max_pairs=4).delete_stage_state(TARGET, assets, POINTS)

    assert len(rig.log("delete")) == 1
    assert "0 of 3 requests had succeeded" in str(info.value)
    assert rig.sim.stage_pairs(*TARGET_KEY) == pairs(assets, POINTS)


def test_every_request_gets_one_progress_event_even_when_it_fails(rig: Rig) -> None:
    client = rig.client(deadline=3)
    with pytest.raises(PipelineAccessError):
        client.delete_stage_state(StageTarget(SIM_ORG_ID, "pl-nope", SIM_STAGE), ASSETS, POINTS)
    rig.sim.html_error(502, op="delete")
    with pytest.raises(ServerError):
        client.delete_stage_state(TARGET, ASSETS, POINTS)

    deletes = rig.log("delete")
    events = [e for e in rig.events if e.operation == "Delete Stage State"]
    assert len(events) == len(deletes)
    assert [e.outcome for e in events].count("failed") == 2
    assert events[0].request_id == deletes[0]["request_id"]


def test_a_rejected_deletion_is_not_reported_as_ok(rig: Rig) -> None:
    rig.sim.answer_data_false()

    with pytest.raises(DeletionRejectedError) as info:
        rig.client().delete_stage_state(TARGET, ASSETS, POINTS)

    about_it = [e for e in rig.events if e.request_id == info.value.request_id]
    assert about_it and all(e.outcome != "ok" for e in about_it)


@pytest.mark.parametrize(
    ("org_id", "pipeline_id"),
    [
        (SIM_ORG_ID, "pl-does-not-exist"),
        (SIM_ORG_ID, SIM_OTHER_PIPELINE),  # exists, but in another organization
        (SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE),  # the app has no privilege on that organization
    ],
)
def test_61106_is_a_pipeline_access_error_after_one_call(rig: Rig, org_id: str, pipeline_id: str) -> None:
    rig.sim.set_pairs(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE, ASSETS, POINTS)

    with pytest.raises(PipelineAccessError) as info:
        rig.client().delete_stage_state(StageTarget(org_id, pipeline_id, SIM_STAGE), ASSETS, POINTS)

    deletes = rig.log("delete")
    assert len(deletes) == 1
    error = info.value
    assert error.code == 61106 and error.request_id == deletes[0]["request_id"]
    assert "61106" in str(error) and deletes[0]["request_id"] in str(error)
    assert pipeline_id in str(error) and f"org {org_id}" in str(error)
    assert rig.time.sleeps == []
    assert rig.sim.stage_pairs(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, SIM_STAGE) == pairs(ASSETS, POINTS)


@pytest.mark.parametrize("operation", ["delete", "get"])
def test_61107_for_an_unsupported_stage_is_an_unsupported_stage_error(rig: Rig, operation: str) -> None:
    target = StageTarget(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "Filter_1")
    client = rig.client()

    with pytest.raises(UnsupportedStageError) as info:
        if operation == "delete":
            client.delete_stage_state(target, ASSETS, POINTS)
        else:
            client.get_stage_state(target, ASSETS, POINTS)

    calls = rig.log(operation)
    assert len(calls) == 1
    assert info.value.code == 61107 and info.value.request_id == calls[0]["request_id"]
    assert "61107" in str(info.value) and "stage_instance_name" in str(info.value)
    assert rig.time.sleeps == []


def test_deleting_on_a_running_pipeline_is_rejected(rig: Rig) -> None:
    target = StageTarget(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE)
    rig.sim.set_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    client = rig.client()

    assert client.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    with pytest.raises(DeletionRejectedError) as info:
        client.delete_stage_state(target, ASSETS, POINTS)

    deletes = rig.log("delete")
    assert len(deletes) == 1 and info.value.request_id == deletes[0]["request_id"]
    assert "paused" in str(info.value)
    assert rig.sim.stage_pairs(SIM_ORG_ID, SIM_RUNNING_PIPELINE, SIM_STAGE) == pairs(ASSETS, POINTS)


def test_a_wrong_secret_key_is_an_authentication_error_without_the_secret(rig: Rig) -> None:
    wrong = "wrong-secret-Zq81xK"
    client = rig.client(secret_key=wrong)

    with pytest.raises(AuthenticationError) as info:
        client.delete_stage_state(TARGET, ASSETS, POINTS)

    error = info.value
    assert error.code == 1003
    assert "1003" in str(error) and "Invalid encryption" in str(error)
    for secret in (wrong, SIM_SECRET_KEY):
        assert secret not in str(error) and secret not in repr(error)
        assert secret not in repr(client)
        assert all(secret not in event.describe() for event in rig.events)
    assert [e["operation"] for e in rig.log()] == ["token"]
    assert rig.sim.tokens_issued == 0
    assert rig.time.sleeps == []


def test_an_unknown_access_key_is_an_authentication_error(rig: Rig) -> None:
    with pytest.raises(AuthenticationError) as info:
        rig.client(access_key="no-such-app").pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE)

    assert info.value.code == 1002
    assert [e["operation"] for e in rig.log()] == ["token"]
    assert rig.time.sleeps == []


# -- reads -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("get_format", ["list", "items"])
@pytest.mark.parametrize("max_pairs", [100_000, 2])
def test_get_stage_state_returns_the_items_in_either_format(
    rig: Rig, get_format: str, max_pairs: int
) -> None:
    sim = rig.sim
    sim.get_format = get_format
    for i, asset in enumerate(ASSETS):
        for j, point in enumerate(POINTS):
            sim.set_state(
                SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, asset, point, i * 10 + j, 1_700_000_000_000
            )
    sim.set_state(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, "not-asked", POINTS[0], 99)

    items, request_ids = rig.client(max_pairs=max_pairs).get_stage_state(
        TARGET, [*ASSETS, "no-state"], POINTS
    )

    got = {(item["assetId"], item["pointId"], item["value"], item["time"]) for item in items}
    expected = {
        (a, p, i * 10 + j, 1_700_000_000_000) for i, a in enumerate(ASSETS) for j, p in enumerate(POINTS)
    }
    assert got == expected and len(items) == len(expected)
    gets = rig.log("get")
    assert sorted(request_ids) == sorted(e["request_id"] for e in gets)
    assert ok_pairs(gets) == 4 * 2
    assert len(gets) == (1 if max_pairs > 8 else 4)
    assert rig.log("delete") == []
    assert len(sim.stage_pairs(*TARGET_KEY)) == 7  # reading changed nothing


def test_pipeline_status_pages_through_the_list(rig: Rig) -> None:
    sim = rig.sim
    for i in range(250):
        sim.add_pipeline(SIM_ORG_ID, f"pl-bulk-{i:03d}", status="RUNNING")
    sim.add_pipeline(SIM_ORG_ID, "pl-late-paused", status="PAUSED")
    sim.add_pipeline(SIM_ORG_ID, "pl-late-running", status="RUNNING")
    sim.add_pipeline(SIM_ORG_ID, "pl-late-stopped", status="STOPPED")
    client = rig.client()

    def pages_for(call: Callable[[], object]) -> tuple[object, list[str]]:
        sim.clear_log()
        result = call()
        return result, [e["query"]["pageNo"] for e in rig.log("list")]

    assert pages_for(lambda: client.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE)) == ("PAUSED", ["1"])
    assert pages_for(lambda: client.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE)) == ("RUNNING", ["1"])
    assert pages_for(lambda: client.pipeline_status(SIM_ORG_ID, "pl-late-paused")) == (
        "PAUSED",
        ["1", "2", "3"],
    )
    assert pages_for(lambda: client.pipeline_status(SIM_ORG_ID, "pl-late-running"))[0] == "RUNNING"
    assert pages_for(lambda: client.pipeline_status(SIM_ORG_ID, "pl-late-stopped"))[0] == "STOPPED"
    assert pages_for(lambda: client.pipeline_status(SIM_ORG_ID, "pl-unknown")) == (None, ["1", "2", "3"])
    # Another organization's pipeline is not among ours; and that organization lists nothing for this app.
    assert client.pipeline_status(SIM_ORG_ID, SIM_OTHER_PIPELINE) is None
    assert client.pipeline_status(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE) is None
    sim.add_pipeline(SIM_ORG_ID, "pl-draft", status="PAUSED", released=False)
    assert client.pipeline_status(SIM_ORG_ID, "pl-draft") is None  # only released pipelines count

    listed = [p["pipelineId"] for p in client.list_pipelines(SIM_ORG_ID)]
    assert len(listed) == len(set(listed)) == 2 + 250 + 3
    assert "pl-draft" not in listed
    assert all(e["query"]["pageSize"] == "100" for e in rig.log("list"))
    assert all(e["status"] == 200 and e["code"] == 0 for e in rig.log("list"))


def test_operate_pipeline_changes_status_and_reports_refusals(rig: Rig) -> None:
    client = rig.client()

    client.operate_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "pause")
    assert client.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "PAUSED"
    with pytest.raises(PipelineStatusError) as info:
        client.operate_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "pause")
    assert info.value.code == 61152
    client.operate_pipeline(
        SIM_ORG_ID, SIM_RUNNING_PIPELINE, "start", {"executionMode": 0, "kafkaRate": 1000}
    )
    assert client.pipeline_status(SIM_ORG_ID, SIM_RUNNING_PIPELINE) == "RUNNING"
    with pytest.raises(PipelineNotFoundError) as missing:
        client.operate_pipeline(SIM_ORG_ID, "pl-nope", "pause")
    assert missing.value.code == 61108

    assert [e["code"] for e in rig.log() if e["operation"] in ("pause", "start")] == [0, 61152, 0, 61108]
    assert rig.time.sleeps == []


# -- tokens, connections, signatures ------------------------------------------------------------------------


def test_one_token_and_reused_connections_for_many_calls(rig: Rig) -> None:
    sim = rig.sim
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ASSETS, POINTS)
    first, second = rig.client(), rig.client()  # two clients of one run share the cache and the pool

    for client in (first, second):
        for _ in range(3):
            assert client.pipeline_status(SIM_ORG_ID, SIM_PAUSED_PIPELINE) == "PAUSED"
            client.get_stage_state(TARGET, ASSETS, POINTS)
            client.delete_stage_state(TARGET, ASSETS, POINTS)

    api_calls = [e for e in rig.log() if e["operation"] != "token"]
    assert len(api_calls) == 18
    assert sim.tokens_issued == 1 and len(rig.log("token")) == 1
    assert sim.connections_opened == 1
    assert {e["connection"] for e in rig.log()} == {1}


def test_parallel_batches_share_one_token_and_a_few_connections(rig: Rig) -> None:
    assets, points = bulk_ids("wtg", 40), bulk_ids("pt", 5)
    rig.sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, assets, points)
    client = rig.client(parallel=4, max_pairs=10)

    first = client.delete_stage_state(TARGET, assets, points)
    second = client.delete_stage_state(TARGET, assets, points)

    assert first.request_count == second.request_count == 20
    assert rig.sim.tokens_issued == 1
    assert rig.sim.connections_opened <= 4  # one per worker at most, kept across both resets
    assert len(rig.log()) == 41


def test_every_signed_request_is_accepted_across_query_orders_and_non_ascii_ids(rig: Rig) -> None:
    sim = rig.sim
    org = "组织 A&b=c+d%/é"  # must be URL-encoded in the query, and signed decoded
    pipeline = "管线 1"
    stage = "LatestRecordMerger_风机"
    sim.add_app("sig-app", "sig-secret-ümlaut", orgs=[org])
    sim.add_pipeline(org, pipeline, status="PAUSED")
    sim.add_pipeline(org, "管线-running", status="RUNNING")
    assets = ["风机-01", "风机-02", "Ünïcødé", "a+b", "x=y&z", "emoji-😀", "quote\"'"]
    points = ["测点.温度", "INV.Temp", "pt/ä"]
    target = StageTarget(org, pipeline, stage)
    sim.set_pairs(org, pipeline, stage, assets, points, value="旧值")
    client = rig.client(access_key="sig-app", secret_key="sig-secret-ümlaut", max_pairs=8, parallel=2)

    assert client.pipeline_status(org, pipeline) == "PAUSED"
    items, _ = client.get_stage_state(target, assets, points)
    assert {(i["assetId"], i["pointId"], i["value"]) for i in items} == {
        (a, p, "旧值") for a in assets for p in points
    }
    body = {"pipelineId": pipeline, "stageInstanceName": stage, "assetIds": assets[0], "pointIds": points[0]}
    orders: list[dict[str, str]] = [
        {"action": "get", "orgId": org},
        {"orgId": org, "action": "get"},
        {"zeta": "z", "orgId": org, "Alpha": "大写", "action": "get", "_x": ""},
    ]
    for query in orders:
        envelope = client.call(
            "POST", "/streaming/v2.0/stage-state", query, body, operation="Get Stage State", target="t"
        )
        assert [(i["assetId"], i["pointId"]) for i in envelope["data"]] == [(assets[0], points[0])]
    client.operate_pipeline(org, "管线-running", "pause")
    assert sim.pipeline_status(org, "管线-running") == "PAUSED"
    report = client.delete_stage_state(target, assets, points)

    assert report.pairs == 21
    assert sim.stage_pairs(org, pipeline, stage) == set()
    log = rig.log()
    assert len(log) > 10
    assert [e for e in log if e["status"] != 200] == []  # in particular, no 401 for a signature
    assert all(e["code"] == 0 for e in log)
    assert Counter(e["operation"] for e in log)["token"] == 1
