"""Watched connections: every HTTP attempt gets a wall-clock bound that ends it wherever it is blocked.

Socket timeouts bound each read, not an attempt: a gateway that trickles a byte a second would keep an
attempt alive forever. An attempt registers its bound with the watchdog; the connections it opens or
reuses register their sockets; when the bound passes, the watchdog shuts those sockets down, which ends
any read or write blocked on them (the TLS handshake included).
"""

from __future__ import annotations

import heapq
import socket
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["WatchedAdapter", "watched"]


@dataclass(eq=False)
class _Watch:
    deadline: float
    #: Duplicates of the attempt's socket descriptors: a shutdown through them reaches that connection
    #: even if its own descriptor was closed and its number reused by an unrelated socket meanwhile.
    dups: list[socket.socket] = field(default_factory=list)
    expired: bool = False
    done: bool = False
    #: The connection (TLS handshake included) stands: what is sent from here on may reach the gateway.
    connected: bool = False
    #: The request went out: a failure from here on is the answer's (or the connection's), not ours.
    sent: bool = False

    def left(self) -> float:
        return self.deadline - time.monotonic()


class _Watchdog:
    """One daemon thread that shuts down the sockets of attempts that outlive their bound."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = 0
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float) -> _Watch:
        watch = _Watch(time.monotonic() + seconds)
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (watch.deadline, self._seq, watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="enos-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
        return watch

    def attach(self, watch: _Watch, sock: socket.socket) -> None:
        with self._cond:
            if watch.done:
                return
            try:
                dup = (
                    sock.dup()
                    if type(sock) is socket.socket
                    else socket.socket(fileno=socket.dup(sock.fileno()))
                )
            except OSError:
                return
            watch.dups.append(dup)
            if watch.expired:
                _shutdown(dup)  # the bound passed while connecting

    def finish(self, watch: _Watch) -> None:
        with self._cond:
            watch.done = True  # from here on its sockets belong to the pool again
            dups, watch.dups = watch.dups, []
        for dup in dups:
            with suppress(OSError):
                dup.close()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(60)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, _, watch = heapq.heappop(self._heap)
                watch.expired = True
                for dup in watch.dups:
                    _shutdown(dup)


def _shutdown(dup: socket.socket) -> None:
    # Shutdown acts on the connection itself, so the blocked read in the attempt's thread returns at
    # once, while the socket object (plain or TLS) stays its owner's to close.
    with suppress(OSError):
        dup.shutdown(socket.SHUT_RDWR)


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()  # the watch of the attempt running in this thread, if any


def _current() -> _Watch | None:
    return getattr(_CURRENT, "watch", None)


def _attach(sock: socket.socket | None) -> None:
    watch = _current()
    if watch is not None and sock is not None:
        _WATCHDOG.attach(watch, sock)


class _Watched:
    """What both connection classes add: the bound covers connecting (each address tried within what
    is left of it), the TLS handshake, sending and the answer; and the attempt knows when it was sent."""

    timeout: Any
    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        watch = _current()
        if watch is not None and isinstance(self.timeout, (int, float)):
            self.timeout = max(min(float(self.timeout), watch.left()), 0.001)
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        _attach(sock)  # before the TLS handshake: the same connection, so the bound covers it
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watch = _current()
        if watch is not None:
            watch.connected = True

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _current()
        if watch is not None and self.sock is not None:
            watch.connected = True  # a kept-alive connection, reused by this attempt
        _attach(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]
        if watch is not None:
            watch.sent = True


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOL_CLASSES = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class WatchedAdapter(HTTPAdapter):
    """No retries behind our back, one connection, and watched connections (direct or via a proxy)."""

    def __init__(self) -> None:
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


class watched:
    """``with watched(seconds) as watch:`` bounds the HTTP attempt made in this thread by ``seconds``;
    ``watch.expired`` tells afterwards whether the bound cut it short."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._watch: _Watch | None = None

    def __enter__(self) -> _Watch:
        self._watch = _WATCHDOG.watch(self._seconds)
        _CURRENT.watch = self._watch
        return self._watch

    def __exit__(self, *exc_info: object) -> None:
        _CURRENT.watch = None
        if self._watch is not None:
            _WATCHDOG.finish(self._watch)
