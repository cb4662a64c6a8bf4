"""APIM token scheme: token ``encryption``, request signing and a process-wide token cache.

Everything here is pure or in-memory; the HTTP call that fetches a token lives in
:mod:`enos_pulumi.enos.tokens`.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Token",
    "TokenCache",
    "params_data",
    "request_signature",
    "signed_headers",
    "token_encryption",
]


def token_encryption(app_key: str, timestamp_ms: int, app_secret: str) -> str:
    """The ``encryption`` field of a token request: sha256(appKey + timestamp + appSecret), lowercase hex."""
    return hashlib.sha256(f"{app_key}{timestamp_ms}{app_secret}".encode()).hexdigest()


def params_data(query: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    """The signed ``paramsData``: query parameters sorted by name as name+value, then the raw body bytes.

    Sorting is by the parameter name in code-point (ASCII) order, as the gateway does; a repeated name
    keeps its values in the order given (Python's sort is stable).
    """
    pairs = query.items() if isinstance(query, Mapping) else query
    ordered = sorted(pairs, key=lambda kv: kv[0])
    return "".join(f"{name}{value}" for name, value in ordered).encode() + body


def request_signature(access_token: str, params: bytes, timestamp_ms: int, app_secret: str) -> str:
    """``apim-signature``: sha256(accessToken + paramsData + timestamp + appSecret), lowercase hex.

    Works on bytes so that the body is hashed exactly as it is sent, whatever its encoding.
    """
    digest = hashlib.sha256()
    digest.update(access_token.encode())
    digest.update(params)
    digest.update(str(timestamp_ms).encode())
    digest.update(app_secret.encode())
    return digest.hexdigest()


def signed_headers(
    access_token: str,
    query: Mapping[str, str],
    body: bytes,
    app_secret: str,
    timestamp_ms: int,
) -> dict[str, str]:
    """The three APIM headers for one attempt; call again for every retry (the timestamp must be fresh)."""
    signature = request_signature(access_token, params_data(query, body), timestamp_ms, app_secret)
    return {
        "apim-accesstoken": access_token,
        "apim-timestamp": str(timestamp_ms),
        "apim-signature": signature,
    }


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it (``time.monotonic`` seconds)."""

    value: str = field(repr=False)
    renew_at: float

    def __repr__(self) -> str:
        return f"Token(value=<hidden>, renew_at={self.renew_at:.1f})"


def renew_time(now: float, lifetime_s: float) -> float:
    """When to renew a token that lives ``lifetime_s`` from ``now``.

    Renews at 80% of the lifetime, and at least a minute early when the lifetime allows it, so that a
    token is never used in the last moments of its life (a request may take a while to arrive).
    """
    margin = max(lifetime_s * 0.2, min(60.0, lifetime_s * 0.5))
    return now + max(lifetime_s - margin, 0.0)


class TokenCache:
    """Thread-safe tokens keyed by (gateway, access key), shared by every client in the process.

    One fetch per key at a time: threads asking for the same key while it is being fetched wait for that
    fetch instead of starting their own (the token service rejects a replayed ``encryption``, and one
    ``pulumi up`` of many resets should fetch one token). When the fetch they waited for fails, they fail
    with (a copy of) its error instead of each trying in turn: a token service that hangs then costs
    every waiting request one fetch's time, not one per thread ahead of it.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._guard = threading.Lock()
        self._tokens: dict[tuple[str, str], Token] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._failures: dict[tuple[str, str], tuple[int, Exception]] = {}

    def now(self) -> float:
        """The cache's clock: renewal times are on this scale."""
        return self._clock()

    def _key_lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: tuple[str, str], fetch: Callable[[], Token]) -> Token:
        """The cached token for ``key``, fetched with ``fetch`` if absent or due for renewal."""
        with self._guard:
            failures_seen = self._failures.get(key, (0, None))[0]
        with self._key_lock(key):
            token = self._tokens.get(key)
            if token is None or self._clock() >= token.renew_at:
                count, error = self._failures.get(key, (0, None))
                if count != failures_seen and error is not None:
                    raise copy.copy(error)  # the fetch this thread waited for failed just now
                try:
                    token = fetch()
                except Exception as exc:
                    with self._guard:
                        # A copy taken now: the original gains notes as its own caller's retries go on.
                        self._failures[key] = (count + 1, copy.copy(exc))
                    raise
                self._tokens[key] = token
            return token

    def peek(self, key: tuple[str, str]) -> Token | None:
        """The cached token for ``key``, if any, without fetching (to hide it in texts)."""
        with self._guard:
            return self._tokens.get(key)

    def invalidate(self, key: tuple[str, str], stale: Token) -> None:
        """Forget ``stale`` after the server called it expired, unless another thread already replaced it."""
        with self._key_lock(key):
            if self._tokens.get(key) is stale:
                del self._tokens[key]

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()
            self._failures.clear()


# The provider is unpickled once per resource by the host; this cache outlives those copies so that all
# resets of one `pulumi up` share one token.
TOKENS = TokenCache()
