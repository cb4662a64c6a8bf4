"""The simulator's HTTP layer under hostile input, over raw sockets: every malformed request is answered
4xx (no handler thread dies silently), slow and idle clients are cut off by the request timeout, and the
admin endpoint cannot be driven from a web page (foreign Origin or Host, non-JSON writes)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from enos_pulumi.enos.auth import params_data, request_signature
from enos_pulumi.simulator import Simulator
from tests.support.fixtures_simulator import (
    LIST_PATH,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_STAGE,
    STATE_PATH,
    TOKEN_PATH,
    SimApi,
)

Factory = Callable[..., Simulator]
GUARD_S = 10.0  # a client-side bound, so a server that never answers fails the test instead of hanging it


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def read_answer(sock: socket.socket) -> Answer | None:
    """One HTTP answer from ``sock``; None if the server closed the connection without answering."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(int(lines[0].split()[1]), headers, rest[:length])


def exchange(sim: Simulator, data: bytes) -> Answer | None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=GUARD_S) as sock:
        sock.sendall(data)
        return read_answer(sock)


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def admin_post(sim: Simulator, name: str, payload: bytes, **headers: str) -> Answer | None:
    sent = {"Host": f"127.0.0.1:{sim.port}", "Content-Length": str(len(payload)), **headers}
    return exchange(sim, request("POST", f"/__admin/{name}", sent, payload))


def still_serves(sim: Simulator) -> bool:
    answer = exchange(sim, request("GET", "/__admin/health", {"Host": "127.0.0.1"}))
    return answer is not None and answer.status == 200


# -- the admin endpoint is not reachable from a web page ------------------------------------------------

FAULT = b'{"spec": "status=503"}'


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},
        {"Content-Type": "application/json", "Origin": "http://evil.example"},
        {"Content-Type": "application/json", "Origin": "null"},
        {"Content-Type": "application/json", "Origin": "http://127.0.0.1.evil.example:80"},
        {"Content-Type": "application/json", "Host": "evil.example:8765"},  # DNS rebinding
        {"Content-Type": "application/json", "Host": "127.0.0.2.nip.io"},
    ],
    ids=[
        "text-plain-cross-site",
        "json-cross-site",
        "null-origin",
        "lookalike-origin",
        "rebound-host",
        "nip",
    ],
)
def test_cross_site_admin_writes_are_refused(simulator: Simulator, headers: dict[str, str]) -> None:
    answer = admin_post(simulator, "faults", FAULT, **headers)
    assert answer is not None and answer.status == 403
    assert simulator.faults == []


def test_admin_writes_need_json(simulator: Simulator) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        answer = admin_post(simulator, "faults", FAULT, **{"Content-Type": content_type})
        assert answer is not None and answer.status == 415
    answer = exchange(simulator, request("DELETE", "/__admin/requests", {"Host": "localhost"}))
    assert answer is not None and answer.status == 415
    assert simulator.faults == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json; charset=utf-8", "Origin": "http://127.0.0.1:1234"},
        {"Content-Type": "application/json", "Origin": "http://localhost", "Host": "localhost"},
        {"Content-Type": "application/json", "Origin": "http://[::1]:80", "Host": "[::1]:80"},
    ],
)
def test_local_admin_writes_are_served(simulator: Simulator, headers: dict[str, str]) -> None:
    answer = admin_post(simulator, "faults", FAULT, **headers)
    assert answer is not None and answer.status == 200
    assert [f.status for f in simulator.faults] == [503]


def test_a_browser_preflight_gets_no_permission(simulator: Simulator) -> None:
    sent = {"Host": "127.0.0.1", "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    answer = exchange(simulator, request("OPTIONS", "/__admin/faults", sent))
    assert answer is not None and answer.status >= 400
    assert not any(name.startswith("access-control-") for name in answer.headers)


# -- every malformed request is answered ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        # "²" (0xB2 in Latin-1, as headers are read) is a digit to str.isdigit but not to int().
        b"POST /__admin/faults HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: \xb2\r\n\r\n{}",
        b"POST " + STATE_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \xb2\r\n\r\n{}",
        b"POST " + STATE_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
        b"POST "
        + STATE_PATH.encode()
        + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST "
        + STATE_PATH.encode()
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        b"POST "
        + STATE_PATH.encode()
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\xb2\r\n{}\r\n0\r\n\r\n",
        b"POST "
        + STATE_PATH.encode()
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        b"POST " + STATE_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 7\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        b"POST " + STATE_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"this is not http\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
    ],
    ids=[
        "admin-superscript-length",
        "api-superscript-length",
        "negative-length",
        "conflicting-lengths",
        "bad-chunk-size",
        "superscript-chunk-size",
        "chunk-without-crlf",
        "chunked-and-length",
        "unsupported-coding",
        "garbage-request-line",
        "http-0.9",
        "bad-header-line",
    ],
)
def test_malformed_requests_get_a_4xx_answer(
    simulator: Simulator, data: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    answer = exchange(simulator, data)
    assert answer is not None, "the connection closed without an answer"
    assert 400 <= answer.status < 500, answer
    assert still_serves(simulator)
    assert "Traceback" not in capfd.readouterr().err


def test_a_refused_api_request_is_logged(simulator: Simulator) -> None:
    data = (
        b"POST " + STATE_PATH.encode() + b"?action=delete&orgId=o1 HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n"
    )
    answer = exchange(simulator, data)
    assert answer is not None and answer.status == 400
    entry = simulator.requests[-1]
    assert (entry["operation"], entry["status"], entry["msg"], entry["org_id"]) == (
        "delete",
        400,
        "invalid Content-Length",
        "o1",
    )


def test_other_methods_get_405(simulator: Simulator) -> None:
    answer = exchange(simulator, request("FOO", LIST_PATH, {"Host": "x"}))
    assert answer is not None and answer.status == 405 and "POST" in answer.headers["allow"]
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=GUARD_S) as sock:
        sock.sendall(request("HEAD", LIST_PATH, {"Host": "x"}))
        head = read_answer(sock)
        assert head is not None and head.status == 405 and head.body == b""  # a HEAD answer has no body


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (b'{"pair_limit": 1e400}', "pair_limit"),
        (b'{"pair_limit": 2.5}', "pair_limit"),
        (b'{"pair_limit": true}', "pair_limit"),
        (b'{"token_lifetime": NaN}', None),
        (b'{"token_lifetime": 0}', "token_lifetime"),
        (b'{"latency_ms": -1}', "latency_ms"),
        (b'{"latency_ms": 1e400}', "latency_ms"),
        (b'{"pause_seconds": "5"}', "pause_seconds"),
        (b'{"auth": "basic"}', "auth"),
        (b'{"request_timeout": 0}', "request_timeout"),
        (b"[" * 100_000 + b"]" * 100_000, None),
    ],
)
def test_unusable_config_values_are_refused(simulator: Simulator, payload: bytes, key: str | None) -> None:
    before = simulator.config()
    answer = admin_post(simulator, "config", payload, **{"Content-Type": "application/json"})
    assert answer is not None and answer.status == 400
    error = answer.json()
    assert isinstance(error, dict)
    assert key is None or key in error["error"]
    assert simulator.config() == before


@pytest.mark.parametrize(
    "fault",
    [
        b'{"kind": "status", "count": 1e400}',
        b'{"kind": "latency", "latency_ms": 1e400}',
        b'{"kind": "status", "retry_after": 1e400}',
        b'{"kind": "status", "count": 1.5}',
        b'[{"kind": "drop"}, {"kind": "bogus"}]',
    ],
)
def test_unusable_faults_are_refused_whole(simulator: Simulator, fault: bytes) -> None:
    answer = admin_post(simulator, "faults", fault, **{"Content-Type": "application/json"})
    assert answer is not None and answer.status == 400
    assert simulator.faults == []


def signed_headers(api: SimApi, query: list[tuple[str, str]], body: bytes) -> dict[str, str]:
    ts = api.now_ms()
    signature = request_signature(api.token, params_data(query, body), ts, api.secret)
    return {
        "Host": "127.0.0.1",
        "apim-accesstoken": api.token,
        "apim-timestamp": str(ts),
        "apim-signature": signature,
    }


def test_hostile_values_inside_api_requests_get_enos_answers(simulator: Simulator, sim_api: SimApi) -> None:
    query = [("action", "delete"), ("orgId", SIM_ORG_ID)]
    path = STATE_PATH + "?action=delete&orgId=" + SIM_ORG_ID
    deep = b"[" * 100_000 + b"]" * 100_000
    headers = {**signed_headers(sim_api, query, deep), "Content-Length": str(len(deep))}
    answer = exchange(simulator, request("POST", path, headers, deep))
    assert answer is not None and answer.status == 200 and answer.json()["code"] == 61102  # type: ignore[index]

    headers = {**signed_headers(sim_api, query, b"{}"), "Content-Length": "2"}
    headers["apim-timestamp"] = "\xb2"
    answer = exchange(simulator, request("POST", path, headers, b"{}"))
    assert answer is not None and answer.status == 401
    assert answer.json() == {
        "msg": "invalid apim-timestamp",
        "requestId": simulator.requests[-1]["request_id"],
    }

    list_path = LIST_PATH + "?orgId=" + SIM_ORG_ID + "&pageNo=%C2%B2"  # pageNo "²"
    list_headers = signed_headers(sim_api, [("orgId", SIM_ORG_ID), ("pageNo", "²")], b"")
    answer = exchange(simulator, request("GET", list_path, list_headers))
    assert answer is not None and answer.status == 200 and answer.json()["code"] == 61102  # type: ignore[index]

    token_body = json.dumps({**sim_api.token_body(), "timestamp": "²"}).encode()
    answer = exchange(
        simulator,
        request("POST", TOKEN_PATH, {"Host": "x", "Content-Length": str(len(token_body))}, token_body),
    )
    assert answer is not None and answer.json()["status"] == 1004  # type: ignore[index]


def test_a_chunked_request_is_read_whole(simulator: Simulator, sim_api: SimApi) -> None:
    simulator.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a", "b"], ["p"])
    body = json.dumps(
        {
            "pipelineId": SIM_PAUSED_PIPELINE,
            "stageInstanceName": SIM_STAGE,
            "assetIds": "a,b",
            "pointIds": "p",
        }
    ).encode()
    query = [("action", "delete"), ("orgId", SIM_ORG_ID)]
    headers = {**signed_headers(sim_api, query, body), "Transfer-Encoding": "chunked"}
    chunked = (
        b"".join(b"%x;ext=1\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    )
    answer = exchange(
        simulator, request("POST", STATE_PATH + "?action=delete&orgId=" + SIM_ORG_ID, headers, chunked)
    )
    assert answer is not None and answer.json()["data"] is True  # type: ignore[index]
    assert simulator.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == set()


# -- slow and idle clients ------------------------------------------------------------------------------


def test_an_idle_connection_is_closed(simulator_factory: Factory) -> None:
    sim = simulator_factory(request_timeout=0.3)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=GUARD_S) as sock:
        assert sock.recv(1) == b""  # closed by the server, not by our guard (that would raise)


def test_an_idle_keep_alive_connection_is_closed(simulator_factory: Factory) -> None:
    sim = simulator_factory(request_timeout=0.3)
    with socket.create_connection(("127.0.0.1", sim.port), timeout=GUARD_S) as sock:
        sock.sendall(request("GET", "/__admin/health", {"Host": "127.0.0.1"}))
        answer = read_answer(sock)
        assert (
            answer is not None
            and answer.status == 200
            and "close" not in answer.headers.get("connection", "")
        )
        assert sock.recv(1) == b""


def test_a_stalled_body_gets_408(simulator_factory: Factory) -> None:
    sim = simulator_factory(request_timeout=0.3)
    path = STATE_PATH + "?action=delete&orgId=" + SIM_ORG_ID
    answer = exchange(sim, request("POST", path, {"Host": "x", "Content-Length": "100"}, b'{"pipe'))
    assert answer is not None and answer.status == 408
    assert answer.headers["connection"] == "close"
    assert (sim.requests[-1]["operation"], sim.requests[-1]["status"]) == ("delete", 408)


def test_a_trickled_request_cannot_hold_a_thread(simulator_factory: Factory) -> None:
    # One header byte every 20 ms keeps every single read well inside the timeout: only a bound on the
    # whole request stops it.
    sim = simulator_factory(request_timeout=0.5)
    stop = threading.Event()
    with socket.create_connection(("127.0.0.1", sim.port), timeout=GUARD_S) as sock:

        def trickle() -> None:
            sock.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            deadline = time.monotonic() + GUARD_S
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    sock.sendall(b"a")
                except OSError:
                    return
                time.sleep(0.02)

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            answer = read_answer(sock)
        finally:
            stop.set()
            sender.join()
    assert answer is not None and answer.status == 408


def test_a_client_that_stops_mid_request_does_not_stop_the_server(
    simulator_factory: Factory, capfd: pytest.CaptureFixture[str]
) -> None:
    sim = simulator_factory(request_timeout=0.3)
    for cut in (b"{", b"3\r\n{"):
        with socket.create_connection(("127.0.0.1", sim.port), timeout=GUARD_S) as sock:
            framing = b"Content-Length: 50" if cut == b"{" else b"Transfer-Encoding: chunked"
            sock.sendall(b"POST " + STATE_PATH.encode() + b" HTTP/1.1\r\n" + framing + b"\r\n\r\n" + cut)
    assert still_serves(sim)
    api = SimApi(sim)
    try:
        assert api.list().json()["code"] == 0
    finally:
        api.close()
    assert "Traceback" not in capfd.readouterr().err
