"""The request log: every API request the simulator served, oldest first, bounded in size.

A client flooding the simulator, or a long ``enos-simulator`` session, cannot grow it without bound:
the log keeps the newest ``limit`` entries (older ones are dropped and counted), and whatever an entry
copies from a request (method, path, query, IDs, message, start's body) is cut to a few hundred
characters, marked where it was cut (``...[64000 chars]``; a query's parameters past the budget give way
to one ``"(cut)"`` key saying how many). The log holds no secret: no header, no token request body.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from .config import LOG_LIMIT, check_log_limit
from .wire import Call, Reply

__all__ = ["MAX_BODY_CHARS", "MAX_QUERY_CHARS", "MAX_TEXT", "RequestLog"]

#: Characters kept of any text an entry copies from a request.
MAX_TEXT = 200
#: Characters (names and values) kept of a query; the parameters past it are left out.
MAX_QUERY_CHARS = 1000
#: Characters of start's JSON body kept; a longer body is logged as its cut JSON text.
MAX_BODY_CHARS = 500

Observer = Callable[[dict[str, Any]], None]


class RequestLog:
    """Thread-safe. ``on_request`` sees every entry (a copy) as it is recorded, whatever the limit."""

    def __init__(
        self,
        limit: int = LOG_LIMIT,
        clock: Callable[[], float] = time.time,
        on_request: Observer | None = None,
    ) -> None:
        self.limit = check_log_limit(limit)
        self.clock = clock
        self.on_request = on_request
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=self.limit)
        self._dropped = 0

    def record(self, call: Call, reply: Reply, started: float, connection: int) -> None:
        """Log a served request; ``started`` is its ``time.perf_counter()`` when it arrived whole."""
        entry = _entry(call, reply, connection)
        entry["sim_time"] = self.clock()
        entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        with self._lock:
            if len(self._entries) == self.limit:
                self._dropped += 1
            self._entries.append(entry)
        if self.on_request is not None:
            try:
                self.on_request(dict(entry))
            except Exception:  # a broken observer must not break serving
                traceback.print_exc(file=sys.stderr)

    def entries(self) -> list[dict[str, Any]]:
        """Copies of the entries, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    @property
    def dropped(self) -> int:
        """Entries dropped to keep within the limit since the last :meth:`clear`."""
        return self._dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._dropped = 0


def _text(value: str | None) -> str | None:
    if value is None or len(value) <= MAX_TEXT:
        return value
    return f"{value[:MAX_TEXT]}...[{len(value)} chars]"


def _query(query: dict[str, str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    used = 0
    for name, value in query.items():
        short_name, short_value = _text(name) or "", _text(value) or ""
        used += len(short_name) + len(short_value)
        if used > MAX_QUERY_CHARS:
            kept["(cut)"] = f"{len(query) - len(kept)} more parameter(s)"
            break
        kept[short_name] = short_value
    return kept


def _body(body: Any) -> Any:
    if body is None:
        return None
    text = json.dumps(body, separators=(",", ":"))
    return body if len(text) <= MAX_BODY_CHARS else f"{text[:MAX_BODY_CHARS]}...[{len(text)} chars]"


def _entry(call: Call, reply: Reply, connection: int) -> dict[str, Any]:
    return {
        "time": time.time(),
        "sim_time": None,
        "method": _text(call.method),
        "path": _text(call.path),
        "operation": call.op,
        "action": _text(call.action),
        "query": _query(call.query),
        "status": None if reply.drop else reply.status,
        "code": reply.code,
        "msg": _text(reply.msg),
        "request_id": call.request_id,
        "org_id": _text(call.org_id),
        "pipeline_id": _text(call.pipeline_id),
        "stage_instance_name": _text(call.stage),
        "asset_count": call.asset_count,
        "point_count": call.point_count,
        "pipeline_status": call.pipeline_status,
        "deleted": call.deleted,
        "operate_body": _body(call.operate_body),
        "auth": call.auth,
        "connection": connection,
        "duration_ms": None,
        "fault": call.fault,
    }
