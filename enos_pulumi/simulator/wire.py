"""What travels over the wire: routes, messages, one request as received (:class:`Call`), one answer
(:class:`Reply`), and strict parsers for the values requests carry.

The parsers accept exactly what the documented API sends and refuse the rest with a reason, never an
exception the HTTP layer would not expect: ``str.isdigit`` is true for ``"²"``, ``json.loads`` accepts
``NaN`` and raises ``RecursionError`` on deep nesting, ``float("1e400")`` is infinite.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from .faults import OPERATE_ACTIONS

__all__ = [
    "JSON_TYPE",
    "Call",
    "ParamError",
    "Reply",
    "ascii_int",
    "finite_number",
    "make_call",
    "operation_for",
    "parse_json",
]

JSON_TYPE = "application/json;charset=UTF-8"
TOKEN_PATH = "/apim-token-service/v2.0/token/get"
REFRESH_PATH = "/apim-token-service/v2.0/token/refresh"
STAGE_STATE_PATH = "/streaming/v2.0/stage-state"
LIST_PATH = "/streaming/v2.0/streaming/pipelines"
OPERATE_PREFIX = "/streaming/v2.0/streaming/pipeline/"
ADMIN_PREFIX = "/__admin/"
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


@dataclass
class Reply:
    """One answer: ``payload`` as JSON, or ``raw`` bytes. ``drop``: close the connection unanswered;
    ``close``: answer, then close (what follows a refused request cannot be trusted). ``code`` and
    ``msg`` are for the log."""

    status: int
    payload: Any = None
    raw: bytes | None = None
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    code: int | None = None
    msg: str | None = None
    drop: bool = False
    close: bool = False

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass
class Call:
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
    pipeline_status: str | None = None
    deleted: bool | None = None
    operate_body: Any = None
    auth: str | None = None
    fault: str | None = None

    @property
    def query(self) -> dict[str, str]:
        # First value wins, as most gateways read a repeated parameter.
        out: dict[str, str] = {}
        for name, value in self.query_pairs:
            out.setdefault(name, value)
        return out

    @property
    def action(self) -> str | None:
        """The ``action`` query parameter of a stage-state or Operate Pipeline request."""
        if self.path == STAGE_STATE_PATH or self.path.startswith(OPERATE_PREFIX):
            return self.query.get("action")
        return None


def make_call(method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> Call:
    """The :class:`Call` for a request to ``path`` with raw ``query`` (``headers`` lower-cased)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    call = Call(method=method, path=path, query_pairs=pairs, body=body, headers=headers, op="unknown")
    call.op = operation_for(method, path, call.query)
    return call


class ParamError(Exception):
    """A request parameter is missing or invalid (EnOS 61102); ``detail`` names it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def operation_for(method: str, path: str, query: Mapping[str, str]) -> str:
    """The log/fault name of a request: token, refresh, delete, get, list, pause, start, stop, operate
    (another Operate Pipeline action) or unknown."""
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
        action = query.get("action", "")
        return action if action in OPERATE_ACTIONS else "operate"
    return "unknown"


def known_route(method: str, path: str) -> bool:
    if method == "POST" and path in (TOKEN_PATH, REFRESH_PATH, STAGE_STATE_PATH):
        return True
    if method == "GET" and path == LIST_PATH:
        return True
    rest = path[len(OPERATE_PREFIX) :]
    return method == "POST" and path.startswith(OPERATE_PREFIX) and bool(rest) and "/" not in rest


def describe(call: Call) -> None:
    """Fill the log fields from the request, best effort, so that even a faulted or refused request
    shows which pipeline and how many pairs it named."""
    call.org_id = call.query.get("orgId") or None
    if call.path.startswith(OPERATE_PREFIX):
        call.pipeline_id = unquote(call.path[len(OPERATE_PREFIX) :]) or None
    if call.path != STAGE_STATE_PATH:
        return
    try:
        body = parse_json(call.body)
    except ValueError:
        return
    if not isinstance(body, dict):
        return
    for attr, name in (("pipeline_id", "pipelineId"), ("stage", "stageInstanceName")):
        if isinstance(body.get(name), str):
            setattr(call, attr, body[name])
    for attr, name in (("asset_count", "assetIds"), ("point_count", "pointIds")):
        if isinstance(body.get(name), str):
            setattr(call, attr, len(body[name].split(",")))


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> Any:
    """Parse a JSON body; any failure (bad bytes, NaN/Infinity, nesting too deep) is a ValueError."""
    try:
        return json.loads(body, parse_constant=_no_constants)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = parse_json(body)
    except ValueError:
        raise ParamError("body is not JSON") from None
    if not isinstance(parsed, dict):
        raise ParamError("body is not a JSON object")
    return parsed


def id_list(raw: str, name: str) -> list[str]:
    ids = [part.strip() for part in raw.split(",")]
    if any(not part for part in ids):
        raise ParamError(f"{name} contains an empty ID")
    return ids


def ascii_int(raw: Any, max_digits: int = 19) -> int | None:
    """An int, or a string of ASCII digits (surrounding spaces allowed), else None. Never raises."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        text = raw.strip()
        if text.isascii() and text.isdigit() and len(text) <= max_digits:
            return int(text)
    return None


def positive_int(raw: str, name: str) -> int:
    value = ascii_int(raw)
    if value is None or value < 1:
        raise ParamError(f"{name} must be a positive integer")
    return value


def finite_number(raw: Any) -> float | None:
    """A JSON number (not a bool) that is finite, else None."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    try:
        value = float(raw)
    except OverflowError:  # an int too large for a float
        return None
    return value if math.isfinite(value) else None


def format_seconds(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)
