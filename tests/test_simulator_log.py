"""The simulator's request log stays bounded: it keeps the newest ``request_log_limit`` requests (and
transitions), and cuts whatever an entry copies from a request, while still recording what tests read.

(What an entry holds, and that it holds no secret, is in test_simulator.py; the memory a flood of
hostile requests costs, before and after the bound, is measured in benchmarks/bench_simlog.py.)
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests

from enos_pulumi.simulator import Simulator
from enos_pulumi.simulator.requestlog import MAX_BODY_CHARS, MAX_QUERY_CHARS, MAX_TEXT
from tests.support.fixtures_simulator import (
    LIST_PATH,
    OPERATE_PATH,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_STAGE,
    START_BODY,
    STATE_PATH,
    FakeClock,
    SimApi,
)

Factory = Callable[..., Simulator]
#: Generous for one cut entry (every text at most MAX_TEXT plus its mark, the query its budget).
ENTRY_BYTES = 4 * MAX_TEXT + 2 * MAX_QUERY_CHARS + MAX_BODY_CHARS + 1500


def unauthenticated(sim: Simulator, target: str, body: bytes = b"{}") -> int:
    """Send one request without credentials on a raw socket (GET for List Pipelines, else POST); the
    HTTP status of the answer."""
    method = "GET" if target.startswith(LIST_PATH) else "POST"
    head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_the_log_keeps_the_newest_requests_up_to_its_limit(simulator_factory: Factory) -> None:
    sim = simulator_factory(request_log_limit=3)
    api = SimApi(sim)
    try:
        ids = [api.list().json()["requestId"] for _ in range(5)]  # after the token request
    finally:
        api.close()
    assert [e["request_id"] for e in sim.requests] == ids[-3:]
    assert sim.request_log_limit == 3 and sim.requests_dropped == 3  # the token request and two lists
    sim.clear_log()
    assert sim.requests == [] and sim.requests_dropped == 0


def test_the_admin_endpoint_shows_the_limit_and_what_was_dropped(simulator_factory: Factory) -> None:
    sim = simulator_factory(request_log_limit=2)
    for _ in range(3):
        assert unauthenticated(sim, LIST_PATH + "?orgId=" + SIM_ORG_ID) == 401
    with requests.Session() as session:
        session.trust_env = False
        logged = session.get(sim.base_url + "/__admin/requests", timeout=5).json()
    assert (len(logged["requests"]), logged["limit"], logged["dropped"]) == (2, 2, 1)


def test_the_observer_still_sees_every_request(simulator_factory: Factory) -> None:
    seen: list[dict[str, Any]] = []
    sim = simulator_factory(request_log_limit=1, on_request=seen.append)
    for _ in range(4):
        unauthenticated(sim, LIST_PATH)
    assert len(seen) == 4 and len(sim.requests) == 1
    assert sim.requests[0]["request_id"] == seen[-1]["request_id"]


def test_transitions_are_kept_up_to_the_same_limit(simulator_factory: Factory) -> None:
    sim = simulator_factory(request_log_limit=2)
    api = SimApi(sim)
    try:
        assert api.pause()["code"] == 0
        assert api.start()["code"] == 0
        assert api.pause()["code"] == 0
    finally:
        api.close()
    assert [(t["action"], t["to"]) for t in sim.transitions] == [("start", "RUNNING"), ("pause", "PAUSED")]


def test_texts_copied_from_a_request_are_cut(simulator: Simulator) -> None:
    long_value = "v" * 64_000
    assert unauthenticated(simulator, f"{STATE_PATH}?action=delete&orgId={SIM_ORG_ID}&x={long_value}") == 401
    entry = simulator.requests[-1]
    assert (entry["operation"], entry["status"], entry["org_id"]) == ("delete", 401, SIM_ORG_ID)
    assert entry["query"]["x"] == "v" * MAX_TEXT + "...[64000 chars]"
    assert entry["query"]["action"] == "delete"

    long_id = "p" * 10_000
    assert unauthenticated(simulator, f"{OPERATE_PATH}{long_id}?action=pause&orgId={SIM_ORG_ID}") == 401
    entry = simulator.requests[-1]
    assert entry["operation"] == "pause" and entry["pipeline_id"] == "p" * MAX_TEXT + "...[10000 chars]"
    assert entry["path"].endswith("...[10035 chars]") and len(entry["path"]) < MAX_TEXT + 20

    many = "&".join(f"p{i}={i}" for i in range(5_000))
    assert unauthenticated(simulator, f"{LIST_PATH}?orgId={SIM_ORG_ID}&{many}") == 401
    query = simulator.requests[-1]["query"]
    assert query["orgId"] == SIM_ORG_ID and query["p0"] == "0"
    kept = len(query) - 1
    assert query["(cut)"] == f"{5_001 - kept} more parameter(s)"
    for entry in simulator.requests:
        assert len(json.dumps(entry)) < ENTRY_BYTES


def test_a_huge_start_body_is_logged_cut(simulator: Simulator, sim_api: SimApi) -> None:
    body = {**START_BODY, "resourceConfig": {"notes": "n" * 100_000}}
    assert sim_api.start(SIM_PAUSED_PIPELINE, body=body)["code"] == 0
    logged = simulator.requests[-1]["operate_body"]
    assert isinstance(logged, str) and logged.startswith('{"executionMode":1,"kafkaRate":1000')
    assert logged.endswith(f"...[{len(json.dumps(body, separators=(',', ':')))} chars]")
    assert len(logged) < MAX_BODY_CHARS + 20


def test_ordinary_requests_are_logged_whole(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1", "a2"], ["p1"])
    sim_api.state("delete", "a1,a2", "p1")
    body = {**START_BODY, "resourceConfig": {"cpu": 2, "memory": 4096}}
    sim_api.pause(SIM_RUNNING_PIPELINE)
    sim_api.start(SIM_RUNNING_PIPELINE, body=body)
    delete, _, start = [e for e in simulator.requests if e["operation"] != "token"]
    assert delete["query"] == {"action": "delete", "orgId": SIM_ORG_ID}
    assert (delete["pipeline_id"], delete["stage_instance_name"]) == (SIM_PAUSED_PIPELINE, SIM_STAGE)
    assert delete["path"] == STATE_PATH and delete["deleted"] is True
    assert start["operate_body"] == body and start["path"] == OPERATE_PATH + SIM_RUNNING_PIPELINE


@pytest.mark.parametrize("limit", [0, -1, True, 2.5, "10"])
def test_an_unusable_log_limit_is_refused(limit: Any) -> None:
    with pytest.raises(ValueError, match="request_log_limit"):
        Simulator(request_log_limit=limit)


def test_reset_clears_the_log_but_keeps_its_limit(simulator_factory: Factory) -> None:
    sim = simulator_factory(request_log_limit=1, clock=FakeClock())
    unauthenticated(sim, LIST_PATH)
    unauthenticated(sim, LIST_PATH)
    sim.reset()
    assert sim.requests == [] and sim.requests_dropped == 0 and sim.request_log_limit == 1
