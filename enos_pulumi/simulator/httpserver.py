"""The simulator's HTTP/1.1 server: keep-alive connections on 127.0.0.1, one thread each, bounded in time.

It knows nothing of EnOS: it reads requests, hands each to one plain callable (``handle``, an
:class:`HttpRequest` in, a :class:`.wire.Reply` out) and sends the answer. Every request gets an answer
or a closed connection, never a dead thread: a malformed request line, header, ``Content-Length`` or
chunk is answered 4xx (and the connection closed, since what follows can no longer be framed), an
unexpected error 500. Time is bounded by the ``request_timeout`` callable: an idle connection is closed
after that long, and a request must arrive whole (line, headers and body) within that long of its first
byte — a client trickling one byte a second cannot hold a thread, whatever the per-read timeout
(``408`` then). Requests the server refuses itself still go to ``handle``, marked with the
:class:`Refusal`, so that it can log them; it answers them as it likes, and the connection closes.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import selectors
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .httpread import BadRequest, DeadlineReader, read_body
from .wire import Reply

__all__ = ["API_METHODS", "Handle", "HttpRequest", "Refusal", "SimHTTPServer"]

API_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


@dataclass(frozen=True)
class Refusal:
    """Why the HTTP layer refuses a request (status, message, extra headers such as ``Allow``)."""

    status: int
    msg: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def reply(self) -> Reply:
        return Reply(self.status, {"msg": self.msg}, headers=dict(self.headers), msg=self.msg, close=True)


@dataclass
class HttpRequest:
    """One request as read: ``target`` as sent (path and query), header names lower-cased, the body
    whole. ``connection`` numbers the connection (from 1, per server); ``started`` is the
    ``time.perf_counter()`` at which its head had arrived. ``refusal``: the server refuses it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    client_host: str
    connection: int
    started: float
    refusal: Refusal | None = None


Handle = Callable[[HttpRequest], Reply]


class SimHTTPServer(ThreadingHTTPServer):
    """Serves ``handle`` on ``address``; ``request_timeout`` (seconds) is read for every connection and
    answer; ``on_connect`` is told of every accepted connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handle: Handle,
        request_timeout: Callable[[], float],
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.app, self.request_timeout, self.on_connect = handle, request_timeout, on_connect
        self._lock = threading.Lock()
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
        with self._lock:
            self._open.add(conn)
            self._next_connection += 1
            number = self._next_connection
        if self.on_connect is not None:
            self.on_connect()
        return number

    def unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)

    def close_connections(self) -> None:
        with self._lock:
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
        self.reader = DeadlineReader(self.connection, self.server.request_timeout)
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
        pass  # the callable served keeps its own log, free of secrets

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
                self._serve()
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

    # -- serving ---------------------------------------------------------------------------------------

    def _serve(self) -> None:
        started = time.perf_counter()
        try:
            body = read_body(self.headers, self.rfile)
        except BadRequest as bad:
            self._refuse(bad.status, bad.msg, started=started)
            return
        try:
            reply = self.server.app(self._request(body, started))
        except Exception:  # a bug in the handler: answer, and trust nothing more on this connection
            traceback.print_exc(file=sys.stderr)
            reply = Refusal(500, "internal simulator error").reply()
        if reply.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.close_connection = self.close_connection or reply.close
        self._send(reply)

    def _request(self, body: bytes, started: float, refusal: Refusal | None = None) -> HttpRequest:
        return HttpRequest(
            method=self.command or "",
            target=self.path or "",
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_host=str(self.client_address[0]),
            connection=self.connection_id,
            started=started,
            refusal=refusal,
        )

    def _refuse(
        self, status: int, msg: str, headers: dict[str, str] | None = None, started: float | None = None
    ) -> None:
        """Answer a request that cannot be served (the handler is told, to log it) and close."""
        self.close_connection = True
        refusal = Refusal(status, msg, headers or {})
        try:
            reply = self.server.app(self._request(b"", started or time.perf_counter(), refusal))
        except Exception:
            traceback.print_exc(file=sys.stderr)
            reply = refusal.reply()
        self._send(reply)

    # -- answer ----------------------------------------------------------------------------------------

    def _send(self, reply: Reply) -> None:
        body = reply.body()  # before anything is written: if this fails, a 500 can still be sent
        self.answered = True
        self.connection.settimeout(self.server.request_timeout())  # bounds a client that never reads
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
