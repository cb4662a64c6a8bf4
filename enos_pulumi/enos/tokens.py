"""The APIM token service: one token request, and its answer checked before the token is ever used."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from . import auth
from .answers import Redactor, decode
from .errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidTokenError,
    ServerError,
    UnexpectedAnswerError,
)
from .request import Request
from .settings import Settings
from .transport import Transport

__all__ = ["TOKEN_OPERATION", "TOKEN_PATH", "fetch_token"]

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
TOKEN_OPERATION = "Get access token"
_DUPLICATED_ENCRYPTION = 1001
# A header value: visible ASCII only. Anything else would be refused by the HTTP stack (whose error
# quotes it) or, worse, split a header (CR/LF).
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]{1,8192}")
#: Tokens said to live longer than a day are renewed after a day anyway.
_MAX_TOKEN_LIFETIME = 86400.0


def fetch_token(
    settings: Settings, transport: Transport, timestamp_ms: int, now: float, target: str
) -> auth.Token:
    """One token request (no retries: the caller's request retries as a whole, with a new timestamp);
    ``now`` is the token cache's clock, on which the renewal time is set."""
    s = settings
    try:
        body = json.dumps(
            {
                "appKey": s.access_key,
                "encryption": auth.token_encryption(s.access_key, timestamp_ms, s.secret_key),
                "timestamp": timestamp_ms,
            },
            separators=(",", ":"),
        ).encode()
    except UnicodeEncodeError:
        # Its text would quote the key; resolve_settings refuses such keys, a hand-made Settings may not.
        raise ConfigurationError(
            "the access key or secret key holds characters that cannot be encoded as UTF-8 (not shown)"
        ) from None
    request = Request("POST", TOKEN_PATH, {}, body, TOKEN_OPERATION, target)
    answer = transport.send(request, {})
    try:
        envelope = decode(answer, request, code_key="status", redact=Redactor((s.secret_key,)))
    except AuthenticationError as exc:
        if exc.code == _DUPLICATED_ENCRYPTION:
            # A replayed timestamp: the next attempt has a new one, so this one is worth retrying.
            raise ServerError(**exc._kwargs()) from None
        raise
    return _read_token(envelope, answer.status, target, now)


def _read_token(envelope: Mapping[str, Any], status: int, target: str, now: float) -> auth.Token:
    data = envelope.get("data")
    value = data.get("accessToken") if isinstance(data, dict) else None
    expire = data.get("expire") if isinstance(data, dict) else None
    common: dict[str, Any] = {"operation": TOKEN_OPERATION, "http_status": status, "target": target}
    if not isinstance(value, str) or not value:
        raise UnexpectedAnswerError(message="the token answer has no accessToken", code=0, **common)
    if not _TOKEN_CHARS.fullmatch(value):
        # Never echoed: it is a credential, however malformed.
        raise InvalidTokenError(
            message=f"the token service returned an access token ({len(value)} characters, not shown) "
            f"that is not a valid HTTP header value",
            code=0,
            **common,
        )
    if isinstance(expire, bool) or not isinstance(expire, (int, float)) or not math.isfinite(expire):
        raise UnexpectedAnswerError(message="the token answer has no numeric expire", code=0, **common)
    if expire <= 0:
        raise UnexpectedAnswerError(
            message=f"the token answer says the token expires in {expire:g} s", code=0, **common
        )
    return auth.Token(value, auth.renew_time(now, min(float(expire), _MAX_TOKEN_LIFETIME)))
