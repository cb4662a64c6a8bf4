"""The simulator's HTTP/1.1 server: keep-alive connections on 127.0.0.1, one thread each, bounded in time.

Every request gets an answer or a closed connection, never a dead thread: a malformed request line,
header, ``Content-Length`` or chunk is answered 4xx (and the connection closed, since what follows can
no longer be framed), an unexpected error 500. Time is bounded by ``Simulator.request_timeout``: an idle
connection is closed after that long, and a request must arrive whole (line, headers and body) within
that long of its first byte — a client trickling one byte a second cannot hold a thread, whatever the
per-read timeout (``408`` then). Requests to API paths refused here are still logged.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import selectors
import socket
import socketserver
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from . import admin
from .wire import ADMIN_PREFIX, Call, Reply, ascii_int, operation_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from .server import Simulator

__all__ = ["SimHTTPServer"]

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_CHUNK_LINE = 1024
MAX_TRAILERS = 64
API_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _BadRequest(Exception):
    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.msg = status, msg


class _DeadlineReader(io.RawIOBase):
    """The connection's read side: each read waits at most the request timeout, and once a request has
    begun (its first byte arrived) all its reads together at most that long too."""

    def __init__(self, sock: socket.socket, timeout: Callable[[], float]) -> None:
        super().__init__()
        self._sock, self._timeout = sock, timeout
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        self.deadline = None

    def readinto(self, buffer: Any) -> int:
        limit = self._timeout()
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request not received in time")
            limit = min(limit, remaining)
        self._sock.settimeout(limit)
        count = self._sock.recv_into(buffer)
        if count and self.deadline is None:
            self.deadline = time.monotonic() + self._timeout()
        return count


class SimHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self._open: set[socket.socket] = set()
        self._next_connection = 0
        self._stopping = False
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
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stopping:
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
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_send.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_send.close()
        self._wake_recv.close()

    def register(self, conn: socket.socket) -> int:
        with self.sim._store.lock:
            self._open.add(conn)
            self._next_connection += 1
            self.sim._store.connections_opened += 1
            return self._next_connection

    def unregister(self, conn: socket.socket) -> None:
        with self.sim._store.lock:
            self._open.discard(conn)

    def close_connections(self) -> None:
        with self.sim._store.lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by the peer
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections as they would with EnOS
    server_version = "EnOS-Simulator"
    sys_version = ""
    server: SimHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; with Nagle on, the second waits for the client's delayed
        # ACK (~40 ms a request), which would make every simulated call look slow.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile.close()
        self.reader = _DeadlineReader(self.connection, lambda: self.server.sim.request_timeout)
        self.rfile = io.BufferedReader(self.reader)
        self.connection_id = self.server.register(self.connection)
        self.answered = False

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.server.unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the simulator keeps its own log (Simulator.requests / on_request), free of secrets

    def handle(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the peer went away: nobody left to answer
            self.handle_one_request()
            while not self.close_connection:
                self.handle_one_request()

    def handle_one_request(self) -> None:
        self.reader.next_request()
        self.answered = False
        self.command, self.path, self.request_version = "", "", "HTTP/1.1"
        self.headers = http.client.HTTPMessage()
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.parse_request():
                return  # parse_request answered (through send_error)
            if self.request_version == "HTTP/0.9":
                self.send_error(400, "HTTP/0.9 requests are not supported")
            elif self.command not in API_METHODS:
                self._refuse(405, f"method {self.command} not allowed", {"Allow": ", ".join(API_METHODS)})
            else:
                self._dispatch()
        except TimeoutError:
            self.close_connection = True
            if self.reader.deadline is not None and not self.answered:
                # The request began but did not arrive whole in time; an idle connection just closes.
                with contextlib.suppress(OSError):
                    self._refuse(408, "request not received in time")
        except OSError:
            self.close_connection = True  # the peer went away mid-request: nobody left to answer
        except Exception:  # a bug here must still answer, not leave the client waiting on a dead thread
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            if not self.answered:
                with contextlib.suppress(OSError):
                    self._refuse(500, "internal simulator error")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's error answers (bad request line or headers), as JSON, closing the connection."""
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # answer with a status line: nobody speaks HTTP/0.9 now
        text = message or self.responses.get(code, ("Error",))[0]
        self._refuse(code, text)

    # -- dispatch --------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        started = time.perf_counter()
        sim = self.server.sim
        try:
            split = urlsplit(self.path)
        except ValueError:
            self._refuse(400, "invalid request target")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        if split.path.startswith(ADMIN_PREFIX):
            why = admin.refusal(self.command, headers, self.client_address[0])
            if why is not None:
                self._refuse(*why)
                return
        try:
            body = self._read_body()
        except _BadRequest as bad:
            self._refuse(bad.status, bad.msg)
            return
        if split.path.startswith(ADMIN_PREFIX):
            try:
                status, payload = admin.admin(sim, self.command, split.path, body)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                status, payload = 500, {"error": "internal simulator error"}
            self._send(Reply(status, payload))
            return
        call = self._call(split.path, split.query, body)
        try:
            reply = sim._handle(call)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            reply = Reply(500, {"msg": "internal simulator error", "requestId": call.request_id})
        # Log before answering: a client that reads Simulator.requests right after its reply must see it.
        sim._record(call, reply, started, self.connection_id)
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(reply)

    def _call(self, path: str, query: str, body: bytes) -> Call:
        pairs = parse_qsl(query, keep_blank_values=True)
        call = Call(
            method=self.command,
            path=path,
            query_pairs=pairs,
            body=body,
            headers={k.lower(): v for k, v in self.headers.items()},
            op="unknown",
        )
        call.op = operation_for(call.method, call.path, call.query)
        return call

    def _refuse(self, status: int, msg: str, headers: dict[str, str] | None = None) -> None:
        """Answer a request that cannot be served and close the connection; log it if it named an API
        path (admin requests are not logged)."""
        self.close_connection = True
        started = time.perf_counter()
        reply = Reply(status, {"msg": msg}, headers=headers or {}, msg=msg)
        path = ""
        with contextlib.suppress(ValueError):
            path = urlsplit(self.path).path
        if path.startswith("/") and not path.startswith(ADMIN_PREFIX):
            call = self._call(path, urlsplit(self.path).query, b"")
            reply.payload["requestId"] = call.request_id
            call.org_id = call.query.get("orgId") or None
            self.server.sim._record(call, reply, started, self.connection_id)
        self._send(reply)

    # -- body ------------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        """The request body exactly as sent; _BadRequest for one that cannot be framed or is too big."""
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            if lengths:
                raise _BadRequest(400, "both Transfer-Encoding and Content-Length")
            codings = [c.strip().lower() for value in encodings for c in value.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise _BadRequest(400, "unsupported Transfer-Encoding (only chunked)")
            return self._read_chunked()
        if not lengths:
            return b""
        if len({value.strip() for value in lengths}) != 1:
            raise _BadRequest(400, "conflicting Content-Length headers")
        length = ascii_int(lengths[0], max_digits=18)
        if length is None:
            raise _BadRequest(400, "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            raise _BadRequest(413, "request entity too large")
        return self._read_exactly(length)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionError("the client closed the connection mid-body")
        return data

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(MAX_CHUNK_LINE)
            if not line.endswith(b"\n"):
                if len(line) < MAX_CHUNK_LINE:
                    raise ConnectionError("the client closed the connection mid-body")
                raise _BadRequest(400, "chunk size line too long")
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
                raise _BadRequest(400, "invalid chunk size")
            size = int(size_text, 16)
            if size == 0:
                self._skip_trailers()
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest(413, "request entity too large")
            chunks.append(self._read_exactly(size))
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadRequest(400, "chunk data not followed by CRLF")

    def _skip_trailers(self) -> None:
        for _ in range(MAX_TRAILERS):
            line = self.rfile.readline(MAX_CHUNK_LINE)
            if line in (b"\r\n", b"\n"):
                return
            if not line.endswith(b"\n"):
                raise _BadRequest(400, "invalid chunked trailer")
        raise _BadRequest(400, "too many chunked trailers")

    # -- answer ----------------------------------------------------------------------------------------

    def _send(self, reply: Reply) -> None:
        body = reply.body()  # before anything is written: if this fails, a 500 can still be sent
        self.answered = True
        self.connection.settimeout(self.server.sim.request_timeout)  # bounds a client that never reads
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
