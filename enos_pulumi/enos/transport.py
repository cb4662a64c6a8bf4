"""One bounded HTTP attempt: connect, send, read the whole answer within a wall-clock bound and a size cap.

Every attempt is watched (:mod:`.watchdog`), so a gateway that trickles or stalls cannot hold it past
``attempt_timeout``. Bodies are streamed and capped at ``max_answer_bytes``. Failures become
:class:`TransportError` in our own words: the HTTP stack's texts can quote header values (a token), so
they are never copied, and the chain of low-level causes is not attached (the Pulumi host prints whole
tracebacks).
"""

from __future__ import annotations

import queue
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlencode, urlsplit

import requests
from urllib3.exceptions import NameResolutionError

from .errors import TransportError
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
        parts = urlsplit(settings.api_gateway)
        self.host = parts.hostname or settings.api_gateway
        self.port = parts.port or (443 if parts.scheme == "https" else 80)

    def send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes | None,
        headers: Mapping[str, str],
        operation: str,
        target: str,
    ) -> Answer:
        s = self.settings
        url = s.api_gateway + path + ("?" + urlencode(query) if query else "")
        all_headers = {**headers, "Accept": "application/json", "Accept-Encoding": "identity"}
        if body is not None:
            all_headers["Content-Type"] = CONTENT_TYPE
        status = 0
        # The watch ends before the session (and its kept-alive connection) goes back to the pool.
        with self._sessions.session(s.api_gateway) as session, watched(s.attempt_timeout) as watch:
            try:
                response = session.request(
                    method,
                    url,
                    data=body,
                    headers=all_headers,
                    timeout=(
                        min(s.connect_timeout, s.attempt_timeout),
                        min(s.read_timeout, s.attempt_timeout),
                    ),
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
                return Answer(status, _printable(response.reason), response.headers, content, framed)
            except _TooLarge:
                raise TransportError(
                    operation,
                    f"the answer (HTTP {status}) is larger than {s.max_answer_bytes // (1024 * 1024)} MiB; "
                    f"it was not read further",
                    target,
                    retryable=status in _TRANSIENT,
                    kind="too-large",
                ) from None
            except Exception as exc:  # every failure of the HTTP stack is worded here
                raise self._error(exc, watch.expired, watch.sent, operation, target) from None

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

    def _error(
        self, exc: Exception, expired: bool, sent: bool, operation: str, target: str
    ) -> TransportError:
        s = self.settings
        where = f"{self.host}:{self.port}"
        if expired:
            return TransportError(
                operation,
                f"no complete answer from {where} within {s.attempt_timeout:g} s "
                f"(enos:attemptTimeoutSeconds)",
                target,
                kind="timeout",
            )
        if _caused_by(exc, NameResolutionError) or _caused_by(exc, socket.gaierror):
            return TransportError(
                operation,
                f"cannot resolve host {self.host} — check enos:apiGateway / ENOS_API_GATEWAY and this "
                f"machine's DNS",
                target,
                kind="dns",
            )
        if _caused_by(exc, ConnectionRefusedError):
            return TransportError(
                operation,
                f"cannot connect to {where}: connection refused — check enos:apiGateway / ENOS_API_GATEWAY "
                f"and that the gateway is reachable from this machine",
                target,
                kind="refused",
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return TransportError(
                operation,
                f"cannot connect to {where} within {s.connect_timeout:g} s — check enos:apiGateway and "
                f"the network path (proxy, firewall)",
                target,
                kind="connect-timeout",
            )
        if isinstance(exc, requests.exceptions.SSLError) or _caused_by(exc, ssl.SSLError):
            cert = _cert_error(exc)
            if cert is not None:
                return TransportError(
                    operation,
                    f"TLS certificate verify failed for {self.host} ({cert}) — if the gateway uses a "
                    f"corporate or self-signed CA, set enos:caBundle / ENOS_CA_BUNDLE to its PEM file",
                    target,
                    retryable=False,
                    kind="tls",
                )
            if sent:  # no handshake failure: the request went out, and EnOS may have acted on it
                detail = f"the TLS connection to {where} broke after the request was sent"
                return TransportError(operation, detail, target, kind="closed")
            return TransportError(operation, f"TLS handshake with {where} failed", target, kind="tls")
        if isinstance(exc, requests.exceptions.Timeout):
            return TransportError(
                operation,
                f"no data from {where} for {min(s.read_timeout, s.attempt_timeout):g} s",
                target,
                kind="timeout",
            )
        if isinstance(
            exc,
            (
                requests.exceptions.ConnectionError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
                ConnectionError,
            ),
        ):
            return TransportError(
                operation, f"the connection to {where} failed before a complete answer", target, kind="closed"
            )
        if sent:
            # The request went out; what failed is the answer (a malformed head, say): the gateway's
            # doing, and worth another attempt.
            return TransportError(
                operation,
                f"the answer from {where} could not be read ({type(exc).__name__})",
                target,
                kind="bad-answer",
            )
        # Anything else (an invalid header value, a URL the stack refuses) will fail the same way again.
        return TransportError(
            operation,
            f"the request to {where} could not be made ({type(exc).__name__})",
            target,
            retryable=False,
            kind="invalid",
        )


_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


class _TooLarge(Exception):
    pass


class _Expired(Exception):
    pass


def _printable(text: str | None) -> str:
    # Not cut short here: what is shown is cut by answers.clean, after any echoed secret is hidden.
    return "".join(ch for ch in (text or "")[:4000] if ch.isprintable())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exceptions held in their args (urllib3 nests them)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 20:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(e, kind) for e in _chain(exc))


def _cert_error(exc: BaseException) -> str | None:
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            # OpenSSL's reason (e.g. "self-signed certificate"): safe to show, it quotes nothing of ours.
            reason = getattr(e, "verify_message", None) or (str(e.args[-1]) if e.args else "")
            return _printable(reason.replace("certificate verify failed: ", "")) or "not trusted"
    return None
