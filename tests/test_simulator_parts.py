"""The simulator's parts on their own, without a ``Simulator``: the HTTP server serving a plain callable,
the request handlers on a store, settings and clock of a test's making, and the front door between.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from enos_pulumi.enos.auth import params_data, request_signature, token_encryption
from enos_pulumi.simulator import dispatch, services
from enos_pulumi.simulator.config import Settings
from enos_pulumi.simulator.context import Context
from enos_pulumi.simulator.faults import Fault
from enos_pulumi.simulator.frontdoor import FrontDoor
from enos_pulumi.simulator.httpserver import HttpRequest, Refusal, SimHTTPServer
from enos_pulumi.simulator.requestlog import RequestLog
from enos_pulumi.simulator.store import Store
from enos_pulumi.simulator.wire import Call, Reply, make_call
from tests.support.fixtures_simulator import (
    LIST_PATH,
    OPERATE_PATH,
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_RUNNING_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
    STATE_PATH,
    TOKEN_PATH,
    FakeClock,
)

# -- the HTTP server, serving a plain callable ----------------------------------------------------------


@contextmanager
def serving(
    handle: Callable[[HttpRequest], Reply], on_connect: Callable[[], None] | None = None
) -> Iterator[str]:
    server = SimHTTPServer(("127.0.0.1", 0), handle, lambda: 5.0, on_connect)
    thread = threading.Thread(target=server.serve_until_stopped, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.request_stop()
        thread.join(timeout=5)
        server.close_connections()
        server.server_close()


def raw_exchange(base: str, data: bytes) -> bytes:
    """Send ``data``; everything the server sends until it closes the connection."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_the_http_server_hands_each_request_to_the_callable_and_sends_its_reply() -> None:
    seen: list[HttpRequest] = []
    connects: list[int] = []

    def echo(request: HttpRequest) -> Reply:
        seen.append(request)
        return Reply(201, {"got": request.body.decode()}, headers={"X-Echo": request.headers["x-test"]})

    with serving(echo, on_connect=lambda: connects.append(1)) as base, requests.Session() as session:
        session.trust_env = False
        first = session.post(base + "/any/path?q=1", data=b"hello", headers={"X-Test": "yes"}, timeout=5)
        second = session.get(base + "/other", headers={"X-Test": "again"}, timeout=5)
    assert (first.status_code, first.json(), first.headers["X-Echo"]) == (201, {"got": "hello"}, "yes")
    assert second.json() == {"got": ""}
    assert [(r.method, r.target, r.body, r.refusal) for r in seen] == [
        ("POST", "/any/path?q=1", b"hello", None),
        ("GET", "/other", b"", None),
    ]
    assert seen[0].headers["x-test"] == "yes" and seen[0].client_host == "127.0.0.1"
    assert [r.connection for r in seen] == [1, 1] and connects == [1]  # one keep-alive connection


def test_a_request_the_server_refuses_still_reaches_the_callable_marked() -> None:
    seen: list[HttpRequest] = []

    def handle(request: HttpRequest) -> Reply:
        seen.append(request)
        return Reply(400, {"msg": "logged it"}) if request.refusal else Reply(200, {})

    with serving(handle) as base:
        answer = raw_exchange(base, b"POST /x?orgId=o HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in answer
    assert answer.endswith(b'{"msg":"logged it"}')
    assert seen[0].refusal == Refusal(400, "invalid Content-Length")
    assert (seen[0].method, seen[0].target) == ("POST", "/x?orgId=o")


def test_a_failing_callable_gets_a_500_and_the_server_serves_on(capfd: pytest.CaptureFixture[str]) -> None:
    def handle(request: HttpRequest) -> Reply:
        if request.target == "/boom":
            raise RuntimeError("a bug")
        if request.target == "/drop":
            return Reply(0, drop=True)
        return Reply(200, {"ok": True})

    with serving(handle) as base:
        boom = raw_exchange(base, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        dropped = raw_exchange(base, b"GET /drop HTTP/1.1\r\nHost: x\r\n\r\n")
        after = requests.get(base + "/fine", timeout=5)
    assert boom.startswith(b"HTTP/1.1 500 ") and boom.endswith(b'{"msg":"internal simulator error"}')
    assert b"Connection: close" in boom and "RuntimeError: a bug" in capfd.readouterr().err
    assert dropped == b""  # closed unanswered
    assert after.json() == {"ok": True}


# -- handlers on a Context: a store, settings and a clock of the test's own -----------------------------


class Parts:
    """A store on a fake clock with the standard test app and pipelines, and a context whose sleep only
    records."""

    def __init__(self, **settings: Any) -> None:
        self.clock = FakeClock()
        self.store = Store(self.clock)
        self.store.add_app(SIM_ACCESS_KEY, SIM_SECRET_KEY, [SIM_ORG_ID])
        self.store.pipelines.add(SIM_ORG_ID, SIM_PAUSED_PIPELINE, "PAUSED")
        self.store.pipelines.add(SIM_ORG_ID, SIM_RUNNING_PIPELINE, "RUNNING")
        self.slept: list[float] = []
        self.ctx = Context(self.store, Settings(settings), sleep=self.slept.append)
        self._token: str | None = None

    def token(self) -> str:
        """A token from the token service (one: the fake clock gives every request the same timestamp)."""
        if self._token is not None:
            return self._token
        ts = int(self.clock() * 1000)
        body = {"appKey": SIM_ACCESS_KEY, "encryption": token_encryption(SIM_ACCESS_KEY, ts, SIM_SECRET_KEY)}
        reply = dispatch.handle(self.ctx, self.call("POST", TOKEN_PATH, [], {**body, "timestamp": ts}, {}))
        assert reply.payload["status"] == 0, reply.payload
        self._token = str(reply.payload["data"]["accessToken"])
        return self._token

    def status(self, pipeline_id: str) -> str | None:
        pipeline = self.store.pipelines.get(SIM_ORG_ID, pipeline_id)
        return None if pipeline is None else pipeline.status

    def call(
        self, method: str, path: str, query: list[tuple[str, str]], body: Any, headers: dict[str, str]
    ) -> Call:
        raw = b"" if body is None else json.dumps(body).encode()
        return make_call(method, path, urlencode(query), raw, headers)

    def signed(self, method: str, path: str, query: list[tuple[str, str]], body: Any = None) -> Call:
        token, ts = self.token(), int(self.clock() * 1000)
        raw = b"" if body is None else json.dumps(body).encode()
        signature = request_signature(token, params_data(query, raw), ts, SIM_SECRET_KEY)
        headers = {"apim-accesstoken": token, "apim-timestamp": str(ts), "apim-signature": signature}
        return self.call(method, path, query, body, headers)


def test_the_request_pipeline_runs_on_a_context_alone() -> None:
    parts = Parts(latency_ms=20)
    parts.store.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1", "a2"], ["p1"])
    body = {
        "pipelineId": SIM_PAUSED_PIPELINE,
        "stageInstanceName": SIM_STAGE,
        "assetIds": "a1",
        "pointIds": "p1",
    }
    call = parts.signed("POST", STATE_PATH, [("action", "delete"), ("orgId", SIM_ORG_ID)], body)
    parts.store.faults.add(Fault("latency", op="delete", count=1, latency_ms=100))
    reply = dispatch.handle(parts.ctx, call)
    assert (reply.payload["code"], reply.payload["data"], call.deleted, call.fault) == (
        0,
        True,
        True,
        "latency",
    )
    assert parts.store.state.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == {("a2", "p1")}
    assert parts.slept == [0.02, 0.12]  # the token request, then the delete: waited through ctx.sleep

    stale = parts.signed("GET", LIST_PATH, [("orgId", SIM_ORG_ID)])
    parts.clock.now += parts.ctx.settings.token_lifetime  # the fake clock expires the token
    expired = dispatch.handle(parts.ctx, stale)
    assert (expired.status, expired.payload["code"]) == (401, 1203)


def test_operate_pipeline_takes_time_on_the_contexts_clock() -> None:
    parts = Parts(pause_seconds=5)
    app = parts.store.apps[SIM_ACCESS_KEY]
    pause = parts.call(
        "POST", OPERATE_PATH + SIM_RUNNING_PIPELINE, [("action", "pause"), ("orgId", SIM_ORG_ID)], None, {}
    )
    assert pause.op == "pause"
    assert services.serve(parts.ctx, pause, app).payload["code"] == 0  # no gateway, no authentication
    assert parts.status(SIM_RUNNING_PIPELINE) == "RUNNING"
    parts.clock.now += 5
    assert parts.status(SIM_RUNNING_PIPELINE) == "PAUSED"
    [transition] = parts.store.pipelines.transitions
    assert transition["effective_at"] - transition["requested_at"] == 5 and parts.slept == []


def test_a_no_effect_operation_is_answered_and_changes_nothing() -> None:
    parts = Parts()
    parts.store.faults.add(Fault("no-effect", op="pause"))
    call = parts.signed(
        "POST", OPERATE_PATH + SIM_RUNNING_PIPELINE, [("action", "pause"), ("orgId", SIM_ORG_ID)]
    )
    reply = dispatch.handle(parts.ctx, call)
    assert (reply.payload["code"], call.fault) == (0, "no-effect")
    assert parts.status(SIM_RUNNING_PIPELINE) == "RUNNING"


# -- the front door: admin or API, and the log ----------------------------------------------------------


class NoControl:
    """Nothing to steer: the health check needs no simulator."""


def request(
    target: str, method: str = "GET", *, client_host: str = "127.0.0.1", refusal: Refusal | None = None
) -> HttpRequest:
    return HttpRequest(method, target, {"host": "127.0.0.1"}, b"", client_host, 7, 0.0, refusal)


def test_the_front_door_routes_logs_and_refuses() -> None:
    answered: list[Call] = []

    def api(call: Call) -> Reply:
        answered.append(call)
        return Reply(200, {"code": 0}, code=0)

    log = RequestLog(limit=10)
    door = FrontDoor(api, NoControl(), log)
    assert door(request(f"{LIST_PATH}?orgId={SIM_ORG_ID}")).payload == {"code": 0}
    assert [(c.op, c.query) for c in answered] == [("list", {"orgId": SIM_ORG_ID})]
    assert door(request("/__admin/health")).payload == {"ok": True}
    refused = door(request("/__admin/health", client_host="10.0.0.8"))
    assert (refused.status, refused.close) == (403, True)
    timed_out = door(
        request(f"{STATE_PATH}?action=delete&orgId=o1", "POST", refusal=Refusal(408, "too slow"))
    )
    assert (timed_out.status, timed_out.close) == (408, True)
    logged = log.entries()
    assert [(e["operation"], e["status"], e["connection"]) for e in logged] == [
        ("list", 200, 7),
        ("delete", 408, 7),
    ]
    assert timed_out.payload == {"msg": "too slow", "requestId": logged[-1]["request_id"]}
    assert (
        logged[-1]["org_id"] == "o1" and len(answered) == 1
    )  # admin and refused requests never reach the API
