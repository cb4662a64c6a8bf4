"""One bounded HTTP attempt: connect, send, read the whole answer within a wall-clock bound and a size cap.

Every attempt is watched (:mod:`.watchdog`), so a gateway that trickles or stalls cannot hold it past
``attempt_timeout``. Bodies are streamed and capped at ``max_answer_bytes``. Failures become
:class:`TransportError` in our own words (:mod:`.failures`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlencode, urlsplit

import requests

from .errors import TransportError, TransportKind
from .failures import Failure, printable, transport_error
from .request import Request
from .settings import Settings
from .watchdog import WatchedAdapter, watched

__all__ = ["SESSIONS", "Answer", "SessionPool", "Transport"]

CONTENT_TYPE = "application/json;charset=UTF-8"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read whole (within the cap): status, reason phrase, headers and body bytes."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    #: False when nothing but the connection closing ended the body (no Content-Length, not chunked):
    #: such a body may have been cut anywhere, and cannot be told from a complete one.
    framed: bool = True


# -- sessions --------------------------------------------------------------------------------------------


def _keep_headers(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class SessionPool:
    """Sessions per gateway, each used by one thread at a time and returned for reuse (keep-alive)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, queue.LifoQueue[requests.Session]] = {}

    @contextmanager
    def session(self, gateway: str) -> Iterator[requests.Session]:
        with self._lock:
            idle = self._idle.setdefault(gateway, queue.LifoQueue())
        try:
            session = idle.get_nowait()
        except queue.Empty:
            session = requests.Session()
            # No cookies: nothing EnOS needs, and a gateway could pile them up across requests and keys.
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            # Our Authorization header (bearer) must not be replaced by a ~/.netrc entry for the host.
            session.auth = _keep_headers
            adapter = WatchedAdapter()
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            if gateway.startswith("http://"):
                session.trust_env = False  # loopback only: never through an environment proxy
        try:
            yield session
        finally:
            idle.put(session)

    def clear(self) -> None:
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            while not idle.empty():
                idle.get_nowait().close()


SESSIONS = SessionPool()


# -- one attempt -----------------------------------------------------------------------------------------


class Transport:
    """Sends one request and returns its whole :class:`Answer`, or raises :class:`TransportError`."""

    def __init__(self, settings: Settings, sessions: SessionPool = SESSIONS) -> None:
        self.settings = settings
        self._sessions = sessions
        self.timeouts = settings.timeouts
        parts = urlsplit(settings.api_gateway)
        self.host = parts.hostname or settings.api_gateway
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    def send(self, request: Request, headers: Mapping[str, str]) -> Answer:
        s = self.settings
        url = s.api_gateway + request.path + ("?" + urlencode(request.query) if request.query else "")
        all_headers = {**headers, "Accept": "application/json", "Accept-Encoding": "identity"}
        if request.body is not None:
            all_headers["Content-Type"] = CONTENT_TYPE
        status = 0
        # The watch ends before the session (and its kept-alive connection) goes back to the pool.
        with self._sessions.session(s.api_gateway) as session, watched(self.timeouts.attempt) as watch:
            try:
                response = session.request(
                    request.method,
                    url,
                    data=request.body,
                    headers=all_headers,
                    timeout=self.timeouts.socket,
                    allow_redirects=False,
                    stream=True,
                    verify=s.ca_bundle or True,
                )
                status = response.status_code
                with response:
                    content = self._read(response)
                if watch.expired:
                    # A shutdown may look like the normal end of a body read until close: never trust it.
                    raise _Expired
                framed = (
                    "Content-Length" in response.headers
                    or "chunked" in response.headers.get("Transfer-Encoding", "").lower()
                )
                return Answer(status, printable(response.reason), response.headers, content, framed)
            except _TooLarge:
                raise TransportError(
                    request.operation,
                    f"the answer (HTTP {status}) is larger than {s.max_answer_bytes // (1024 * 1024)} MiB; "
                    f"it was not read further",
                    request.target,
                    retryable=status in _TRANSIENT,
                    kind=TransportKind.TOO_LARGE,
                ) from None
            except Exception as exc:  # every failure of the HTTP stack is worded by the failure table
                failure = Failure(
                    exc, watch.expired, watch.sent, self.host, self.port, self.timeouts, watch.connected
                )
                raise transport_error(failure, request.operation, request.target) from None

    def _read(self, response: requests.Response) -> bytes:
        cap = self.settings.max_answer_bytes
        length = response.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > cap:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(_CHUNK):
            size += len(chunk)
            if size > cap:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)


_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


class _TooLarge(Exception):
    pass


class _Expired(Exception):
    pass
