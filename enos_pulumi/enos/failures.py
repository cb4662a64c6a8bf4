"""What a failed attempt was: the HTTP stack's exception read into a :class:`TransportError` in our words.

The HTTP stack's texts can quote header values (a token), so they are never copied; the chain of
low-level causes is searched for what happened, then dropped (the Pulumi host prints whole tracebacks).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests
from urllib3.exceptions import NameResolutionError

from .errors import TransportError, TransportKind
from .timeouts import Timeouts

__all__ = ["Failure", "printable", "transport_error"]


@dataclass(frozen=True)
class Failure:
    """One failed attempt: the exception, what the attempt's watch saw, and where it went."""

    exc: Exception
    #: The attempt's wall-clock bound cut it.
    expired: bool
    #: The request went out: a failure from here on is the answer's (or the connection's), not ours.
    sent: bool
    host: str
    port: int
    timeouts: Timeouts
    #: The connection stood (TLS handshake done) when it failed: part of the request may have gone out.
    connected: bool = False


@dataclass(frozen=True)
class _Cause:
    """A failure the table recognizes: how to tell it, its kind, and our wording (a format string over
    the fields of :func:`_words`)."""

    found: Callable[[Failure], bool]
    kind: TransportKind
    text: str
    retryable: bool = True


def _caused_by(*kinds: type[BaseException]) -> Callable[[Failure], bool]:
    return lambda f: any(isinstance(e, kinds) for e in _chain(f.exc))


def _is(*kinds: type[BaseException]) -> Callable[[Failure], bool]:
    return lambda f: isinstance(f.exc, kinds)


def _tls(f: Failure) -> bool:
    return isinstance(f.exc, requests.exceptions.SSLError) or _caused_by(ssl.SSLError)(f)


def _certificate(f: Failure) -> bool:
    return _tls(f) and _cert_error(f.exc) is not None


#: First match wins, so the order matters: a connect timeout is also a Timeout, a certificate error also
#: a TLS error, and after a failure of the connection itself, what is left is the answer's fault once the
#: request went out, ours before.
_CAUSES: tuple[_Cause, ...] = (
    _Cause(
        lambda f: f.expired,
        TransportKind.TIMEOUT,
        "no complete answer from {where} within {attempt:g} s (enos:attemptTimeoutSeconds)",
    ),
    _Cause(
        _caused_by(NameResolutionError, socket.gaierror),
        TransportKind.DNS,
        "cannot resolve host {host} — check enos:apiGateway / ENOS_API_GATEWAY and this machine's DNS",
    ),
    _Cause(
        _caused_by(ConnectionRefusedError),
        TransportKind.REFUSED,
        "cannot connect to {where}: connection refused — check enos:apiGateway / ENOS_API_GATEWAY and "
        "that the gateway is reachable from this machine",
    ),
    _Cause(
        _is(requests.exceptions.ConnectTimeout),
        TransportKind.CONNECT_TIMEOUT,
        "cannot connect to {where} within {connect:g} s — check enos:apiGateway and the network path "
        "(proxy, firewall)",
    ),
    _Cause(
        _certificate,
        TransportKind.TLS,
        "TLS certificate verify failed for {host} ({cert}) — if the gateway uses a corporate or "
        "self-signed CA, set enos:caBundle / ENOS_CA_BUNDLE to its PEM file",
        retryable=False,
    ),
    # A TLS error once the request went out is no handshake failure: EnOS may have acted on the request.
    _Cause(
        lambda f: f.sent and _tls(f),
        TransportKind.CLOSED,
        "the TLS connection to {where} broke after the request was sent",
    ),
    # Once the handshake is done, a TLS error is the connection breaking while the request was going out:
    # how much of it the gateway got is unknown, so it counts as a connection cut (it may have landed).
    _Cause(
        lambda f: f.connected and _tls(f),
        TransportKind.CLOSED,
        "the TLS connection to {where} broke while the request was being sent",
    ),
    _Cause(_tls, TransportKind.TLS, "TLS handshake with {where} failed"),
    _Cause(_is(requests.exceptions.Timeout), TransportKind.TIMEOUT, "no data from {where} for {read:g} s"),
    _Cause(
        _is(
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            ConnectionError,
        ),
        TransportKind.CLOSED,
        "the connection to {where} failed before a complete answer",
    ),
    # The request went out; what failed is the answer (a malformed head, say): the gateway's doing, and
    # worth another attempt.
    _Cause(lambda f: f.sent, TransportKind.BAD_ANSWER, "the answer from {where} could not be read ({error})"),
    # Anything else (an invalid header value, a URL the stack refuses) will fail the same way again.
    _Cause(
        lambda f: True,
        TransportKind.INVALID,
        "the request to {where} could not be made ({error})",
        retryable=False,
    ),
)


def transport_error(failure: Failure, operation: str, target: str) -> TransportError:
    """The :class:`TransportError` for a failed attempt: the first cause in the table that fits."""
    cause = next(c for c in _CAUSES if c.found(failure))
    text = cause.text.format_map(_words(failure))
    return TransportError(operation, text, target, retryable=cause.retryable, kind=cause.kind)


def _words(f: Failure) -> dict[str, object]:
    return {
        "host": f.host,
        "where": f"{f.host}:{f.port}",
        "attempt": f.timeouts.attempt,
        "connect": f.timeouts.connect,
        "read": f.timeouts.socket[1],
        "cert": _cert_error(f.exc) or "",
        "error": type(f.exc).__name__,
    }


def printable(text: str | None) -> str:
    """``text`` without non-printable characters (not cut short: what is shown is cut by
    ``answers.clean``, after any echoed secret is hidden)."""
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


def _cert_error(exc: BaseException) -> str | None:
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            # OpenSSL's reason (e.g. "self-signed certificate"): safe to show, it quotes nothing of ours.
            reason = getattr(e, "verify_message", None) or (str(e.args[-1]) if e.args else "")
            return printable(reason.replace("certificate verify failed: ", "")) or "not trusted"
    return None
