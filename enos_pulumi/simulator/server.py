"""The simulator's HTTP side: a threaded loopback server that behaves like the EnOS API gateway.

Requests go through the same stages as on EnOS: gateway faults (latency, status bursts, dropped
connections, HTML pages), then the token service or the APIM signature check, then the service, which
answers with the ``{"code", "msg", "requestId", "data"}`` envelope. The signature is recomputed from the
request exactly as received (raw query string and body bytes) by the simulator's own implementation of
the documented rule, not the client's.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http
import json
import selectors
import socket
import socketserver
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .store import STAGE_PREFIXES, Fault, Pipeline, SeedError, Store, load_seed_file, parse_fault

__all__ = ["Simulator"]

JSON_TYPE = "application/json;charset=UTF-8"
TOKEN_PATH = "/apim-token-service/v2.0/token/get"
REFRESH_PATH = "/apim-token-service/v2.0/token/refresh"
STAGE_STATE_PATH = "/streaming/v2.0/stage-state"
LIST_PATH = "/streaming/v2.0/streaming/pipelines"
OPERATE_PREFIX = "/streaming/v2.0/streaming/pipeline/"
ADMIN_PREFIX = "/__admin/"
TIMESTAMP_WINDOW_MS = 15 * 60 * 1000
MAX_BODY_BYTES = 32 * 1024 * 1024
OK_MSG = " OK"  # sic: the documented samples have the leading space

SERVICE_MESSAGES = {
    61102: "Missing or invalid parameter",
    61105: "Too many points",
    61106: "Wrong pipelineId or OU has no privilege",
    61107: "Stage type not supported",
    61108: "Pipeline does not exist",
    61121: "Another start operation is in progress, please retry later",
    61152: "Illegal pipeline status transition",
    61165: "Pipeline cannot be started from its current status",
    61199: "Other error",
}
TOKEN_MESSAGES = {
    1001: "Duplicated encryption",
    1002: "appKey does not exist",
    1003: "Invalid encryption",
    1004: "Invalid parameter",
    1005: "Internal error",
    1202: "Empty parameter",
    1203: "Access token expired",
    1204: "Refresh token failed",
}
GATEWAY_MESSAGES = {429: "API rate limit exceeded"}
HTML_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class _Reply:
    status: int
    payload: Any = None
    raw: bytes | None = None
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    code: int | None = None
    msg: str | None = None
    drop: bool = False

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass
class _Call:
    """One API request as received, plus what the log wants to know about it."""

    method: str
    path: str
    query_pairs: list[tuple[str, str]]
    body: bytes
    headers: Mapping[str, str]
    op: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    org_id: str | None = None
    pipeline_id: str | None = None
    stage: str | None = None
    asset_count: int | None = None
    point_count: int | None = None
    fault: str | None = None

    @property
    def query(self) -> dict[str, str]:
        # First value wins, as most gateways read a repeated parameter.
        out: dict[str, str] = {}
        for name, value in self.query_pairs:
            out.setdefault(name, value)
        return out


def operation_for(method: str, path: str, query: Mapping[str, str]) -> str:
    """The log/fault name of a request: token, refresh, delete, get, list, operate or unknown."""
    if method == "POST" and path == TOKEN_PATH:
        return "token"
    if method == "POST" and path == REFRESH_PATH:
        return "refresh"
    if method == "POST" and path == STAGE_STATE_PATH:
        action = query.get("action", "")
        return action if action in ("delete", "get") else "unknown"
    if method == "GET" and path == LIST_PATH:
        return "list"
    if method == "POST" and path.startswith(OPERATE_PREFIX):
        return "operate"
    return "unknown"


def _known_route(method: str, path: str) -> bool:
    if method == "POST" and path in (TOKEN_PATH, REFRESH_PATH, STAGE_STATE_PATH):
        return True
    if method == "GET" and path == LIST_PATH:
        return True
    rest = path[len(OPERATE_PREFIX) :]
    return method == "POST" and path.startswith(OPERATE_PREFIX) and bool(rest) and "/" not in rest


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _expected_signature(
    token: str, query: list[tuple[str, str]], body: bytes, timestamp: int, secret: str
) -> str:
    """The documented APIM rule, written here on its own rather than imported from the client's auth
    module, so that a signing bug in the client fails against the simulator instead of being mirrored:
    sha256(accessToken + name1value1name2value2... (query sorted by name, decoded) + body + timestamp +
    secret)."""
    ordered = "".join(name + value for name, value in sorted(query, key=lambda pair: pair[0]))
    return _sha256_hex(token.encode() + ordered.encode() + body + str(timestamp).encode() + secret.encode())


class _ParamError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Simulator:
    """A local EnOS API gateway on 127.0.0.1 with an in-memory store and fault injection.

    Configuration attributes (``token_lifetime``, ``pair_limit``, ``require_paused``, ``get_format``,
    ``latency_ms``) may be changed while it runs; they apply to the next request. ``clock`` (seconds, like
    ``time.time``) drives token expiry, the 15-minute timestamp window and default state times, so a test
    can move time without sleeping.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        token_lifetime: float = 7200.0,
        pair_limit: int = 100_000,
        require_paused: bool = True,
        get_format: str = "list",
        latency_ms: float = 0.0,
        clock: Callable[[], float] = time.time,
        seed: Mapping[str, Any] | str | Path | None = None,
        on_request: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if get_format not in ("list", "items"):
            raise ValueError("get_format must be 'list' or 'items'")
        self.port = port
        self.token_lifetime = token_lifetime
        self.pair_limit = pair_limit
        self.require_paused = require_paused
        self.get_format = get_format
        self.latency_ms = latency_ms
        self.clock = clock
        self.on_request = on_request
        self._store = Store(clock)
        self._baseline: Mapping[str, Any] | None = (
            load_seed_file(seed) if isinstance(seed, (str, Path)) else seed
        )
        if self._baseline is not None:
            self._store.seed(self._baseline)
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve in a background (daemon) thread; returns self."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        server = _HTTPServer(("127.0.0.1", self.port), self)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_until_stopped, name="enos-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idle keep-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        server.close_connections()
        server.server_close()

    def __enter__(self) -> Simulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://127.0.0.1:{self.port}"

    # -- model -----------------------------------------------------------------------------------------

    def add_app(self, access_key: str, secret_key: str, orgs: Iterable[str] | None = None) -> None:
        """Register an application; ``orgs`` limits the organizations it may act on (None: any)."""
        self._store.add_app(access_key, secret_key, orgs)

    def add_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        status: str = "PAUSED",
        name: str | None = None,
        released: bool = True,
    ) -> None:
        """Add (or update) a pipeline; pipeline IDs are unique across organizations."""
        self._store.add_pipeline(org_id, pipeline_id, status, name, released)

    def pipeline_status(self, org_id: str, pipeline_id: str) -> str:
        pipeline = self._store.pipeline(org_id, pipeline_id)
        if pipeline is None:
            raise KeyError(f"no pipeline {pipeline_id} in org {org_id}")
        return pipeline.status

    def set_pipeline_status(self, org_id: str, pipeline_id: str, status: str) -> None:
        with self._store.lock:
            pipeline = self._store.pipeline(org_id, pipeline_id)
            if pipeline is None:
                raise KeyError(f"no pipeline {pipeline_id} in org {org_id}")
            pipeline.status = status

    def set_state(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        asset_id: str,
        point_id: str,
        value: Any = 0.0,
        time: int | None = None,
    ) -> None:
        """Give one (asset, point) pair state; ``time`` is Unix ms (default: the clock's now)."""
        self._store.set_pairs(org_id, pipeline_id, stage, [asset_id], [point_id], value, time)

    def set_pairs(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        asset_ids: Iterable[str],
        point_ids: Sequence[str],
        value: Any = 0.0,
        time: int | None = None,
    ) -> int:
        """Give every pair of ``asset_ids`` x ``point_ids`` state; returns the number of pairs."""
        return self._store.set_pairs(org_id, pipeline_id, stage, asset_ids, point_ids, value, time)

    def stage_pairs(self, org_id: str, pipeline_id: str, stage: str) -> set[tuple[str, str]]:
        """The (asset, point) pairs that currently have state in one stage."""
        return self._store.stage_pairs(org_id, pipeline_id, stage)

    def pair_count(self) -> int:
        """The number of pairs with state, over every org, pipeline and stage."""
        return self._store.pair_count()

    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        """Add apps, pipelines and state from a mapping; returns counts of apps, pipelines and pairs."""
        return self._store.seed(seed)

    def load_seed(self, path: str | Path) -> dict[str, int]:
        """Like :meth:`seed`, from a JSON (``.json``) or YAML file."""
        return self._store.seed(load_seed_file(path))

    def reset(self) -> None:
        """Forget apps, tokens, pipelines, state, faults, the log and the token count, then re-apply
        the ``seed`` given to the constructor, if any."""
        with self._store.lock:
            self._store.clear()
            self._store.tokens_issued = 0
            if self._baseline is not None:
                self._store.seed(self._baseline)

    # -- observation -----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log (admin calls excluded). Each entry: time, method, path, operation,
        query, status (None for a dropped connection), code, msg, request_id, org_id, pipeline_id,
        stage_instance_name, asset_count, point_count, connection, duration_ms, fault."""
        with self._store.lock:
            return [dict(entry) for entry in self._store.log]

    def clear_log(self) -> None:
        with self._store.lock:
            self._store.log.clear()

    @property
    def tokens_issued(self) -> int:
        """Tokens handed out by token/get and token/refresh."""
        return self._store.tokens_issued

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since start (shows whether clients reuse keep-alive connections)."""
        return self._store.connections_opened

    # -- faults ----------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault | str | Mapping[str, Any]) -> Fault:
        """Inject a fault: a :class:`Fault`, a spec string (``"status=503,count=2"``) or a mapping."""
        if isinstance(fault, str):
            fault = parse_fault(fault)
        elif not isinstance(fault, Fault):
            fault = Fault.from_mapping(fault)
        return self._store.add_fault(fault)

    @property
    def faults(self) -> list[Fault]:
        """The active faults (copies; counts show what is left)."""
        with self._store.lock:
            return [Fault(**vars(f)) for f in self._store.faults]

    def clear_faults(self) -> None:
        with self._store.lock:
            self._store.faults.clear()

    def add_latency(self, ms: float, *, op: str | None = None, count: int | None = None) -> Fault:
        """Delay matching requests by ``ms`` (on top of the global ``latency_ms``)."""
        return self.add_fault(Fault("latency", op=op, count=count, latency_ms=ms))

    def fail_with_status(
        self,
        status: int = 503,
        *,
        op: str | None = None,
        count: int | None = None,
        retry_after: float | None = None,
    ) -> Fault:
        """Answer matching requests with an HTTP error (e.g. 429/503) and optional ``Retry-After``."""
        return self.add_fault(
            Fault("status", op=op, count=count, status=status, retry_after=_format_seconds(retry_after))
        )

    def drop_connections(self, *, op: str | None = None, count: int | None = None) -> Fault:
        """Read matching requests, then close the connection without answering."""
        return self.add_fault(Fault("drop", op=op, count=count))

    def answer_data_false(self, *, op: str = "delete", count: int | None = None) -> Fault:
        """Answer ``code 0, data false`` without doing anything."""
        return self.add_fault(Fault("data-false", op=op, count=count))

    def html_error(self, status: int = 502, *, op: str | None = None, count: int | None = None) -> Fault:
        """Answer with a non-JSON HTML error page, as a proxy in front of EnOS would."""
        return self.add_fault(Fault("html", op=op, count=count, status=status))

    def error_code(
        self, code: int, *, op: str | None = None, count: int | None = None, msg: str | None = None
    ) -> Fault:
        """Answer an authenticated request with EnOS ``code`` (HTTP 200 envelope, ``status`` for tokens)."""
        return self.add_fault(Fault("code", op=op, count=count, code=code, msg=msg))

    def start_in_progress(self, *, count: int | None = None) -> Fault:
        """Answer Operate Pipeline with 61121 (another start in progress)."""
        return self.error_code(61121, op="operate", count=count)

    def expire_tokens(self) -> int:
        """Expire every token now; returns how many were live. Later calls with them get the 1203 401."""
        return self._store.expire_tokens()

    # -- request handling (called from the HTTP handler threads) ---------------------------------------

    def _handle(self, call: _Call) -> _Reply:
        _describe(call)
        delay_ms, fault = self._store.take_faults(call.op, gateway=True)
        if delay_ms > 0:
            call.fault = "latency"
        delay_ms += self.latency_ms
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)
        if fault is not None:
            call.fault = fault.kind
            if fault.kind == "drop":
                return _Reply(0, drop=True)
            if fault.kind in ("status", "html"):
                return _gateway_reply(fault, call.request_id)
            if fault.kind == "expire":
                self._store.expire_tokens()
        if not _known_route(call.method, call.path):
            return _Reply(404, {"msg": "not found", "requestId": call.request_id}, msg="not found")
        if call.op in ("token", "refresh"):
            return self._token(call)
        app_or_reply = self._authenticate(call)
        if isinstance(app_or_reply, _Reply):
            return app_or_reply
        _, fault = self._store.take_faults(call.op, gateway=False)
        if fault is not None:
            call.fault = fault.kind
            if fault.kind == "data-false":
                return self._envelope(call, 0, False)
            assert fault.code is not None
            return self._envelope(
                call, fault.code, None, fault.msg or SERVICE_MESSAGES.get(fault.code, "Error")
            )
        _, orgs = app_or_reply
        try:
            if call.path == STAGE_STATE_PATH:
                return self._stage_state(call, orgs)
            if call.path == LIST_PATH:
                return self._list(call, orgs)
            return self._operate(call, orgs)
        except _ParamError as exc:
            return self._envelope(call, 61102, None, f"{SERVICE_MESSAGES[61102]}: {exc.detail}")

    def _envelope(self, call: _Call, code: int, data: Any, msg: str | None = None) -> _Reply:
        text = msg if msg is not None else (OK_MSG if code == 0 else SERVICE_MESSAGES.get(code, "Error"))
        payload = {"code": code, "msg": text, "requestId": call.request_id, "data": data}
        return _Reply(200, payload, code=code, msg=text)

    def _token(self, call: _Call) -> _Reply:
        def refuse(code: int, detail: str = "") -> _Reply:
            text = TOKEN_MESSAGES.get(code, "Error") + (f": {detail}" if detail else "")
            payload = {"status": code, "msg": text, "business": "apim-token-service", "data": None}
            return _Reply(200, payload, code=code, msg=text)

        _, fault = self._store.take_faults(call.op, gateway=False)
        if fault is not None and fault.kind == "code":
            call.fault = fault.kind
            assert fault.code is not None
            return refuse(fault.code) if fault.msg is None else refuse(fault.code, fault.msg)
        try:
            body = json.loads(call.body)
        except (ValueError, UnicodeDecodeError):
            return refuse(1004, "body is not JSON")
        if not isinstance(body, dict):
            return refuse(1004, "body is not a JSON object")
        names = ["appKey", "encryption", "timestamp"] + (["accessToken"] if call.op == "refresh" else [])
        missing = [n for n in names if body.get(n) in (None, "")]
        if missing:
            return refuse(1202, ", ".join(missing))
        app_key, encryption, raw_ts = body["appKey"], body["encryption"], body["timestamp"]
        if not isinstance(app_key, str) or not isinstance(encryption, str):
            return refuse(1004, "appKey and encryption must be strings")
        if call.op == "refresh" and not isinstance(body["accessToken"], str):
            return refuse(1004, "accessToken must be a string")
        timestamp = _int_or_none(raw_ts)
        if timestamp is None:
            return refuse(1004, "timestamp must be an integer (Unix ms)")
        with self._store.lock:
            app = self._store.apps.get(app_key)
            if app is None:
                return refuse(1002)
            expected = _sha256_hex(f"{app_key}{timestamp}{app.secret_key}".encode())
            if not hmac.compare_digest(expected.encode(), encryption.encode()):
                return refuse(1003)
            if not self._store.use_encryption(encryption):
                return refuse(1001)
            if call.op == "refresh":
                old_app, _ = self._store.token_app(body["accessToken"])
                if old_app is None or old_app.access_key != app_key:
                    return refuse(1204)
                self._store.revoke_token(body["accessToken"])
            token = self._store.issue_token(app_key, self.token_lifetime)
        lifetime = self.token_lifetime
        expire: float = int(lifetime) if float(lifetime).is_integer() else lifetime
        payload = {
            "status": 0,
            "msg": "SUCCESS",
            "business": "apim-token-service",
            "data": {"accessToken": token, "expire": expire},
        }
        return _Reply(200, payload, code=0, msg="SUCCESS")

    def _authenticate(self, call: _Call) -> tuple[str, frozenset[str] | None] | _Reply:
        def reject(msg: str, code: int | None = None) -> _Reply:
            payload: dict[str, Any] = {"msg": msg, "requestId": call.request_id}
            if code is not None:
                payload = {"code": code, **payload}
            return _Reply(401, payload, code=code, msg=msg)

        token = call.headers.get("apim-accesstoken")
        raw_ts = call.headers.get("apim-timestamp")
        signature = call.headers.get("apim-signature")
        if not token or not raw_ts or not signature:
            return reject("missing apim-accesstoken, apim-timestamp or apim-signature header")
        app, live = self._store.token_app(token)
        if app is None:
            return reject("unknown access token")
        if not live:
            return reject("access token expired", 1203)
        timestamp = _int_or_none(raw_ts)
        if timestamp is None:
            return reject("invalid apim-timestamp")
        if abs(int(self.clock() * 1000) - timestamp) > TIMESTAMP_WINDOW_MS:
            return reject("timestamp out of range")
        expected = _expected_signature(token, call.query_pairs, call.body, timestamp, app.secret_key)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return reject("signature mismatch")
        return app.access_key, app.orgs

    def _org(self, call: _Call) -> str:
        org_id = call.query.get("orgId", "")
        if not org_id:
            raise _ParamError("orgId")
        call.org_id = org_id
        return org_id

    def _stage_state(self, call: _Call, orgs: frozenset[str] | None) -> _Reply:
        if call.op not in ("delete", "get"):
            raise _ParamError("action must be delete or get")
        org_id = self._org(call)
        body = _json_object(call.body)
        fields = {}
        for name in ("pipelineId", "stageInstanceName", "assetIds", "pointIds"):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip():
                raise _ParamError(name)
            fields[name] = value
        pipeline_id, stage = fields["pipelineId"], fields["stageInstanceName"]
        assets = _id_list(fields["assetIds"], "assetIds")
        points = _id_list(fields["pointIds"], "pointIds")
        call.pipeline_id, call.stage = pipeline_id, stage
        call.asset_count, call.point_count = len(assets), len(points)
        with self._store.lock:
            pipeline = self._store.pipeline(org_id, pipeline_id)
            if pipeline is None or (orgs is not None and org_id not in orgs):
                return self._envelope(call, 61106, None)
            if not stage.startswith(STAGE_PREFIXES):
                return self._envelope(call, 61107, None)
            if len(assets) * len(points) > self.pair_limit:
                return self._envelope(call, 61105, None)
            if call.op == "get":
                items = self._store.get_pairs(org_id, pipeline_id, stage, assets, points)
                return self._envelope(call, 0, items if self.get_format == "list" else {"items": items})
            if self.require_paused and pipeline.status != "PAUSED":
                return self._envelope(call, 0, False)
            self._store.delete_pairs(org_id, pipeline_id, stage, assets, points)
            return self._envelope(call, 0, True)

    def _list(self, call: _Call, orgs: frozenset[str] | None) -> _Reply:
        org_id = self._org(call)
        query = call.query
        page_no = _positive_int(query.get("pageNo", "1"), "pageNo")
        page_size = _positive_int(query.get("pageSize", "10"), "pageSize")
        released = query.get("ifReleased", "false").lower()
        if released not in ("true", "false"):
            raise _ParamError("ifReleased must be true or false")
        page: list[Pipeline] = []
        if orgs is not None and org_id not in orgs:
            count = 0
        else:
            count, page = self._store.list_pipelines(org_id, released == "true", page_no, page_size)
        pipelines = [_pipeline_json(p) for p in page]
        return self._envelope(call, 0, {"count": count, "pipelines": pipelines})

    def _operate(self, call: _Call, orgs: frozenset[str] | None) -> _Reply:
        pipeline_id = unquote(call.path[len(OPERATE_PREFIX) :])
        call.pipeline_id = pipeline_id
        action = call.query.get("action", "")
        if action not in ("pause", "start", "stop"):
            raise _ParamError("action must be pause, start or stop (release/save are not simulated)")
        org_id = self._org(call)
        if action == "start":
            body = _json_object(call.body)
            mode, rate = body.get("executionMode"), body.get("kafkaRate")
            if mode not in (0, 1) or isinstance(mode, bool):
                raise _ParamError("executionMode must be 0 or 1")
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
                raise _ParamError("kafkaRate must be a positive number")
        with self._store.lock:
            pipeline = self._store.pipeline(org_id, pipeline_id)
            if pipeline is None or (orgs is not None and org_id not in orgs):
                return self._envelope(call, 61108, None)
            allowed, target, refusal = {
                "pause": (("RUNNING",), "PAUSED", 61152),
                "start": (("PAUSED", "STOPPED", "PUBLISHED"), "RUNNING", 61165),
                "stop": (("RUNNING", "PAUSED"), "STOPPED", 61152),
            }[action]
            if pipeline.status not in allowed:
                return self._envelope(call, refusal, None, f"{SERVICE_MESSAGES[refusal]}: {pipeline.status}")
            pipeline.status = target
        return self._envelope(call, 0, None)

    # -- admin endpoint --------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        name = path[len(ADMIN_PREFIX) :].strip("/")
        try:
            payload: Any = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "body is not JSON"}
        try:
            if (method, name) == ("GET", "health"):
                return 200, {"ok": True}
            if name == "requests" and method in ("GET", "DELETE"):
                if method == "DELETE":
                    self.clear_log()
                return 200, {"requests": self.requests if method == "GET" else []}
            if name == "faults" and method in ("GET", "POST", "DELETE"):
                if method == "DELETE":
                    self.clear_faults()
                elif method == "POST":
                    for raw in payload if isinstance(payload, list) else [payload]:
                        if not isinstance(raw, Mapping):
                            return 400, {"error": "a fault is an object: {kind, ...} or {spec}"}
                        self.add_fault(raw)
                return 200, {"faults": [f.to_dict() for f in self.faults]}
            if (method, name) == ("POST", "expire-tokens"):
                return 200, {"expired": self.expire_tokens()}
            if (method, name) == ("POST", "seed"):
                return 200, self.seed(payload)
            if (method, name) == ("POST", "reset"):
                self.reset()
                return 200, {"ok": True}
            if name == "config" and method in ("GET", "POST"):
                if method == "POST":
                    self._configure(payload)
                return 200, self._config()
            if (method, name) == ("GET", "state"):
                return 200, self.summary()
        except (SeedError, ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": f"no admin endpoint {method} {path}"}

    def _config(self) -> dict[str, Any]:
        return {
            "token_lifetime": self.token_lifetime,
            "pair_limit": self.pair_limit,
            "require_paused": self.require_paused,
            "get_format": self.get_format,
            "latency_ms": self.latency_ms,
        }

    def _configure(self, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            raise ValueError("config must be an object")
        unknown = set(raw) - set(self._config())
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(sorted(unknown))}")
        if "get_format" in raw and raw["get_format"] not in ("list", "items"):
            raise ValueError("get_format must be 'list' or 'items'")
        if "require_paused" in raw and not isinstance(raw["require_paused"], bool):
            raise ValueError("require_paused must be true or false")
        for key in ("token_lifetime", "latency_ms"):
            if key in raw:
                setattr(self, key, float(raw[key]))
        if "pair_limit" in raw:
            self.pair_limit = int(raw["pair_limit"])
        for key in ("require_paused", "get_format"):
            if key in raw:
                setattr(self, key, raw[key])

    def summary(self) -> dict[str, Any]:
        """Apps (access keys only), pipelines with status and pair counts per stage, faults, counters."""
        with self._store.lock:
            pipelines = []
            for p in self._store.pipelines.values():
                stages = {
                    stage: sum(len(per_asset) for per_asset in state.values())
                    for (org, pid, stage), state in self._store.state.items()
                    if org == p.org_id and pid == p.pipeline_id
                }
                pipelines.append(
                    {**_pipeline_json(p), "orgId": p.org_id, "released": p.released, "stages": stages}
                )
            return {
                "apps": sorted(self._store.apps),
                "pipelines": pipelines,
                "faults": [f.to_dict() for f in self._store.faults],
                "tokens_issued": self._store.tokens_issued,
                "connections_opened": self._store.connections_opened,
            }

    def _record(self, call: _Call, reply: _Reply, started: float, connection: int) -> None:
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": call.method,
            "path": call.path,
            "operation": call.op,
            "query": call.query,
            "status": None if reply.drop else reply.status,
            "code": reply.code,
            "msg": reply.msg,
            "request_id": call.request_id,
            "org_id": call.org_id,
            "pipeline_id": call.pipeline_id,
            "stage_instance_name": call.stage,
            "asset_count": call.asset_count,
            "point_count": call.point_count,
            "connection": connection,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "fault": call.fault,
        }
        self._store.record(entry)
        if self.on_request is not None:
            try:
                self.on_request(dict(entry))
            except Exception:  # a broken observer must not break serving
                traceback.print_exc(file=sys.stderr)


def _describe(call: _Call) -> None:
    """Fill the log fields from the request, best effort, so that even a faulted or refused request
    shows which pipeline and how many pairs it named."""
    call.org_id = call.query.get("orgId") or None
    if call.path.startswith(OPERATE_PREFIX):
        call.pipeline_id = unquote(call.path[len(OPERATE_PREFIX) :]) or None
    if call.path != STAGE_STATE_PATH:
        return
    try:
        body = json.loads(call.body)
    except (ValueError, UnicodeDecodeError):
        return
    if not isinstance(body, dict):
        return
    for attr, name in (("pipeline_id", "pipelineId"), ("stage", "stageInstanceName")):
        if isinstance(body.get(name), str):
            setattr(call, attr, body[name])
    for attr, name in (("asset_count", "assetIds"), ("point_count", "pointIds")):
        if isinstance(body.get(name), str):
            setattr(call, attr, len(body[name].split(",")))


def _gateway_reply(fault: Fault, request_id: str) -> _Reply:
    status = fault.status or 503
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.kind == "html":
        page = HTML_PAGE.format(status=status, phrase=phrase).encode()
        return _Reply(status, raw=page, content_type="text/html", headers=headers, msg=phrase)
    msg = fault.msg or GATEWAY_MESSAGES.get(status, phrase)
    return _Reply(status, {"msg": msg, "requestId": request_id}, headers=headers, msg=msg)


def _pipeline_json(p: Pipeline) -> dict[str, Any]:
    return {"pipelineId": p.pipeline_id, "pipelineName": p.name, "status": p.status}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _ParamError("body is not JSON") from None
    if not isinstance(parsed, dict):
        raise _ParamError("body is not a JSON object")
    return parsed


def _id_list(raw: str, name: str) -> list[str]:
    ids = [part.strip() for part in raw.split(",")]
    if any(not part for part in ids):
        raise _ParamError(f"{name} contains an empty ID")
    return ids


def _positive_int(raw: str, name: str) -> int:
    value = _int_or_none(raw)
    if value is None or value < 1:
        raise _ParamError(f"{name} must be a positive integer")
    return value


def _int_or_none(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw)
    return None


def _format_seconds(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._next_connection = 0
        self._stopping = threading.Event()
        self._wake_recv, self._wake_send = socket.socketpair()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall on a bad resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def serve_until_stopped(self) -> None:
        """Accept connections until :meth:`request_stop`.

        Replaces ``serve_forever``, whose shutdown waits for a polling interval: here a socket pair wakes
        the loop at once, so a simulator per test costs no teardown time and an idle one no CPU.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_recv, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stopping.is_set():
                        self._accept_one()

    def _accept_one(self) -> None:
        try:
            request, client_address = self.get_request()
        except OSError:
            return  # the client gave up between select and accept
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def request_stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_send.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_send.close()
        self._wake_recv.close()

    def register(self, conn: socket.socket) -> int:
        with self._open_lock:
            self._open.add(conn)
            self._next_connection += 1
            number = self._next_connection
        with self.sim._store.lock:
            self.sim._store.connections_opened += 1
        return number

    def unregister(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(conn)

    def close_connections(self) -> None:
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections as they would with EnOS
    server_version = "EnOS-Simulator"
    sys_version = ""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; with Nagle on, the second waits for the client's delayed
        # ACK (~40 ms a request), which would make every simulated call look slow.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_id = self.server.register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the simulator keeps its own log (Simulator.requests / on_request), free of secrets

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        sim = self.server.sim
        if split.path.startswith(ADMIN_PREFIX):
            if self.client_address[0] not in ("127.0.0.1", "::1"):
                self._send(_Reply(403, {"error": "admin endpoint is loopback only"}))
                return
            status, payload = sim._admin(self.command, split.path, body)
            self._send(_Reply(status, payload))
            return
        pairs = parse_qsl(split.query, keep_blank_values=True)
        call = _Call(
            method=self.command,
            path=split.path,
            query_pairs=pairs,
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            op="unknown",
        )
        call.op = operation_for(call.method, call.path, call.query)
        try:
            reply = sim._handle(call)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            reply = _Reply(500, {"msg": "internal simulator error", "requestId": call.request_id})
        # Log before answering: a client that reads Simulator.requests right after its reply must see it.
        sim._record(call, reply, started, self.connection_id)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(reply)

    def _read_body(self) -> bytes | None:
        """The request body exactly as sent; None after answering a malformed or oversized one."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        length = _int_or_none(raw_length)
        if length is None:
            self.close_connection = True
            self._send(_Reply(400, {"msg": "invalid Content-Length"}))
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would be parsed as the next request
            self._send(_Reply(413, {"msg": "request entity too large"}))
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise ConnectionError("chunked body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, reply: _Reply) -> None:
        body = reply.body()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
