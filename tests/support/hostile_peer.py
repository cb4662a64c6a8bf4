"""A hostile HTTP/1.1 peer: raw sockets on 127.0.0.1 that answer the EnOS endpoints with scripted behaviours.

Unlike the simulator (a well-behaved EnOS), this peer is what a broken proxy or a malicious gateway does:
it trickles, stalls, sends huge, truncated or malformed answers and closes at any byte. Each endpoint
(``token``, ``delete``, ``get``, ``list``) plays a script of :class:`Behaviour` s, one per request, the
last one repeating. Everything received is recorded (headers included) so tests can search every text a
user sees for the signatures and tokens that crossed the wire.

Every misbehaviour is finite (stalls and trickles end after ``LONG`` seconds at most) so that a client
without a total bound makes a test fail slowly instead of hanging the suite, and :meth:`HostilePeer.stop`
closes every socket and ends every thread.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "LONG",
    "PIPELINE",
    "WELL_FORMED",
    "Behaviour",
    "Exchange",
    "HostilePeer",
    "PeerGone",
    "Received",
    "default_payload",
    "encode_json",
    "http_answer",
]

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
STAGE_STATE_PATH = "/streaming/v2.0/stage-state"
PIPELINES_PATH = "/streaming/v2.0/streaming/pipelines"
#: The pipeline the default List Pipelines answer reports as PAUSED.
PIPELINE = "pl-hostile"
#: How long a stall or a trickle lasts at most: longer than any bound the tests assert (so a client
#: without a total bound fails the test), short enough that it fails in seconds, not minutes.
LONG = 8.0
_MAX_REQUEST_HEAD = 1 << 20


class PeerGone(Exception):
    """The peer is stopping or the client went away: the behaviour ends here."""


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    endpoint: str  # token, delete, get, list or other
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))


class Exchange:
    """One request and the socket to answer it on; behaviours write through it."""

    def __init__(self, peer: HostilePeer, conn: socket.socket, request: Received, number: int) -> None:
        self.peer = peer
        self.request = request
        #: 1 for the first request this endpoint received, 2 for the second...
        self.number = number
        self._conn = conn

    def send(self, data: bytes | memoryview) -> None:
        if self.peer.stopping:
            raise PeerGone
        try:
            self._conn.sendall(data)
        except OSError as exc:
            raise PeerGone from exc

    def pause(self, seconds: float) -> None:
        if seconds > 0 and self.peer.wait_stop(seconds):
            raise PeerGone

    def trickle(self, data: bytes, interval: float, budget: float = LONG) -> None:
        """One byte every ``interval`` seconds; after ``budget`` seconds the rest goes at once."""
        spent = 0.0
        for i in range(len(data)):
            if spent >= budget:
                self.send(data[i:])
                return
            self.send(data[i : i + 1])
            self.pause(interval)
            spent += interval

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN (SO_LINGER 0)."""
        with contextlib.suppress(OSError):
            self._conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raise PeerGone


@dataclass(frozen=True)
class Behaviour:
    """A named way of answering one request; ``act`` returns True to keep the connection for another."""

    name: str
    act: Callable[[Exchange], bool] = field(repr=False)

    def __call__(self, exchange: Exchange) -> bool:
        return self.act(exchange)

    def __str__(self) -> str:
        return self.name


def encode_json(value: Any) -> bytes:
    # allow_nan: NaN and Infinity are part of what a hostile peer sends.
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


def http_answer(
    status: int,
    body: bytes,
    *,
    reason: str | bytes = "X",
    headers: Iterable[tuple[str, str] | bytes] = (),
    content_length: bool = True,
    close: bool = False,
) -> bytes:
    """A well-formed HTTP/1.1 answer; a ``bytes`` header is sent as that raw line.

    ``close`` says ``Connection: close``: an answer after which the peer closes must say so, or the client
    may reuse the connection before it sees the close, and fail (and retry) a request at random.
    """
    if isinstance(reason, str):
        reason = reason.encode("latin-1")
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    names = set()
    for header in headers:
        if isinstance(header, bytes):
            lines.append(header)
        else:
            names.add(header[0].lower())
            lines.append(f"{header[0]}: {header[1]}".encode("latin-1"))
    if "content-type" not in names:
        lines.append(b"Content-Type: application/json;charset=UTF-8")
    if content_length and "content-length" not in names:
        lines.append(b"Content-Length: %d" % len(body))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def default_payload(exchange: Exchange) -> dict[str, Any]:
    """The well-formed success answer for the request's endpoint (a token answer issues a new token)."""
    endpoint = exchange.request.endpoint
    if endpoint == "token":
        return {
            "status": 0,
            "msg": "SUCCESS",
            "business": "apim-token-service",
            "data": {"accessToken": exchange.peer.issue_token(), "expire": 7200},
        }
    rid = f"r-{endpoint}-{exchange.number}"
    if endpoint == "delete":
        return {"code": 0, "msg": " OK", "requestId": rid, "data": True}
    if endpoint == "get":
        return {"code": 0, "msg": " OK", "requestId": rid, "data": []}
    if endpoint == "list":
        pipelines = [{"pipelineId": PIPELINE, "pipelineName": "hostile", "status": "PAUSED"}]
        return {"code": 0, "msg": " OK", "requestId": rid, "data": {"count": 1, "pipelines": pipelines}}
    return {"code": 404, "msg": "no such endpoint", "requestId": rid}


def _well_formed(exchange: Exchange) -> bool:
    exchange.send(http_answer(200, encode_json(default_payload(exchange))))
    return True


WELL_FORMED = Behaviour("well-formed", _well_formed)


def _endpoint(method: str, target: str) -> str:
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query))
    if method == "POST" and parts.path == TOKEN_PATH:
        return "token"
    if method == "POST" and parts.path == STAGE_STATE_PATH and query.get("action") in ("delete", "get"):
        return query["action"]
    if method == "GET" and parts.path == PIPELINES_PATH:
        return "list"
    return "other"


class HostilePeer:
    """The peer: ``script(endpoint, *behaviours)`` sets how an endpoint answers; ``url`` reaches it."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        # accept() is not woken by a close from another thread: poll, so that stop() ends it at once.
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Behaviour]] = {}
        self._counts: dict[str, int] = {}
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.received: list[Received] = []
        #: Every token this peer issued (for a hostile token, its distinctive core).
        self.issued_tokens: list[str] = []
        self.connections = 0
        self._acceptor = threading.Thread(target=self._accept, name="hostile-accept", daemon=True)

    def __enter__(self) -> HostilePeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control ---------------------------------------------------------------------------------------

    def start(self) -> HostilePeer:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            # shutdown wakes a thread blocked in recv on this socket; close alone does not.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                conn.close()
        self._acceptor.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=5)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wait_stop(self, seconds: float) -> bool:
        return self._stop.wait(seconds)

    def script(self, endpoint: str, *behaviours: Behaviour) -> None:
        """Answer ``endpoint``'s requests with these behaviours in order, repeating the last one."""
        with self._lock:
            self._scripts[endpoint] = list(behaviours)

    def issue_token(self, core: str | None = None) -> str:
        core = core or "tok" + secrets.token_hex(12)
        with self._lock:
            self.issued_tokens.append(core)
        return core

    # -- what was received -----------------------------------------------------------------------------

    def requests_to(self, endpoint: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.endpoint == endpoint]

    def secrets(self) -> set[str]:
        """Every secret value that crossed the wire: tokens issued and sent, signatures, encryptions."""
        found = set(self.issued_tokens)
        with self._lock:
            received = list(self.received)
        for request in received:
            for name in ("apim-signature", "apim-accesstoken"):
                value = request.header(name)
                if value:
                    found.add(value.strip())
            if request.endpoint == "token":
                try:
                    encryption = json.loads(request.body).get("encryption")
                except (ValueError, AttributeError):
                    encryption = None
                if isinstance(encryption, str):
                    found.add(encryption)
        return {value for value in found if len(value) >= 8}

    # -- serving ---------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)  # accepted sockets inherit the listener's timeout
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return
                self._conns.add(conn)
                self.connections += 1
                thread = threading.Thread(target=self._serve, args=(conn,), name="hostile-conn", daemon=True)
                self._threads.append(thread)
            thread.start()

    def _next(self, endpoint: str) -> tuple[Behaviour, int]:
        with self._lock:
            number = self._counts.get(endpoint, 0) + 1
            self._counts[endpoint] = number
            script = self._scripts.get(endpoint) or [WELL_FORMED]
        return script[min(number, len(script)) - 1], number

    def _serve(self, conn: socket.socket) -> None:
        pending = b""
        try:
            while not self._stop.is_set():
                request, pending = self._read_request(conn, pending)
                if request is None:
                    return
                with self._lock:
                    self.received.append(request)
                behaviour, number = self._next(request.endpoint)
                if not behaviour(Exchange(self, conn, request, number)):
                    return
        except (PeerGone, OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    @staticmethod
    def _read_request(conn: socket.socket, pending: bytes) -> tuple[Received | None, bytes]:
        while b"\r\n\r\n" not in pending:
            if len(pending) > _MAX_REQUEST_HEAD:
                return None, b""
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            pending += chunk
        head, _, rest = pending.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = tuple(
            (name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines[1:])
        )
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        request = Received(_endpoint(method, target), method, target, headers, rest[:length])
        return request, rest[length:]
