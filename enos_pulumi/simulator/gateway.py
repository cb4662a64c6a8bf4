"""The API gateway in front of the services: the token service, request authentication and the replies
of a misbehaving proxy (status bursts, HTML pages).

Authentication follows the configured scheme (``settings.auth``):

- ``apim-signature`` (default): ``apim-accesstoken``, ``apim-timestamp`` and ``apim-signature`` headers,
  the signature recomputed from the request exactly as received (raw query and body bytes) by this
  module's own implementation of the documented rule, not the client's;
- ``bearer``: ``Authorization: Bearer <accessToken>`` with a token from the same token service, no
  signature headers;
- ``any``: either; a request carrying all three signature headers is checked as signed, else as bearer.

Every rejection is HTTP 401 with ``{"msg", "requestId"}``; an expired token adds ``"code": 1203``.
"""

from __future__ import annotations

import hashlib
import hmac
import http
from typing import Any

from .context import Context
from .faults import Fault
from .store import App
from .wire import TOKEN_MESSAGES, Call, Reply, ascii_int, parse_json

__all__ = [
    "authenticate",
    "expected_signature",
    "gateway_reply",
    "sha256_hex",
    "token_refusal",
    "token_service",
]

TIMESTAMP_WINDOW_MS = 15 * 60 * 1000
SIGNATURE_HEADERS = ("apim-accesstoken", "apim-timestamp", "apim-signature")
GATEWAY_MESSAGES = {429: "API rate limit exceeded"}
HTML_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_signature(
    token: str, query: list[tuple[str, str]], body: bytes, timestamp: int, secret: str
) -> str:
    """The documented APIM rule, written here on its own rather than imported from the client's auth
    module, so that a signing bug in the client fails against the simulator instead of being mirrored:
    sha256(accessToken + name1value1name2value2... (query sorted by name, decoded) + body + timestamp +
    secret)."""
    ordered = "".join(name + value for name, value in sorted(query, key=lambda pair: pair[0]))
    return sha256_hex(token.encode() + ordered.encode() + body + str(timestamp).encode() + secret.encode())


def gateway_reply(fault: Fault, request_id: str) -> Reply:
    """A proxy's answer for a ``status`` or ``html`` fault."""
    status = fault.status or 503
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.kind == "html":
        page = HTML_PAGE.format(status=status, phrase=phrase).encode()
        return Reply(status, raw=page, content_type="text/html", headers=headers, msg=phrase)
    msg = fault.msg or GATEWAY_MESSAGES.get(status, phrase)
    return Reply(status, {"msg": msg, "requestId": request_id}, headers=headers, msg=msg)


# -- token service -------------------------------------------------------------------------------------


def token_refusal(code: int, detail: str = "") -> Reply:
    """The token service's refusal: HTTP 200 with ``status`` ``code`` (its documented message)."""
    text = TOKEN_MESSAGES.get(code, "Error") + (f": {detail}" if detail else "")
    payload = {"status": code, "msg": text, "business": "apim-token-service", "data": None}
    return Reply(200, payload, code=code, msg=text)


def token_service(ctx: Context, call: Call) -> Reply:
    """``token/get`` and ``token/refresh``: the documented ``{"status", "msg", "business", "data"}``."""
    body = _token_body(call)
    if isinstance(body, Reply):
        return body
    app_key, encryption, timestamp = body["appKey"], body["encryption"], body["timestamp"]
    store, lifetime = ctx.store, ctx.settings.token_lifetime
    with store.lock:
        app = store.apps.get(app_key)
        if app is None:
            return token_refusal(1002)
        expected = sha256_hex(f"{app_key}{timestamp}{app.secret_key}".encode())
        if not hmac.compare_digest(expected.encode(), encryption.encode("utf-8", "replace")):
            return token_refusal(1003)
        if not store.use_encryption(encryption):
            return token_refusal(1001)
        if call.op == "refresh":
            old_app, _ = store.token_app(body["accessToken"])
            if old_app is None or old_app.access_key != app_key:
                return token_refusal(1204)
            store.revoke_token(body["accessToken"])
        token = store.issue_token(app_key, lifetime)
    expire: float = int(lifetime) if float(lifetime).is_integer() else lifetime
    payload = {
        "status": 0,
        "msg": "SUCCESS",
        "business": "apim-token-service",
        "data": {"accessToken": token, "expire": expire},
    }
    return Reply(200, payload, code=0, msg="SUCCESS")


def _token_body(call: Call) -> dict[str, Any] | Reply:
    """A token request's body, checked (``timestamp`` made an int), or the refusal."""
    try:
        body = parse_json(call.body)
    except ValueError:
        return token_refusal(1004, "body is not JSON")
    if not isinstance(body, dict):
        return token_refusal(1004, "body is not a JSON object")
    names = ["appKey", "encryption", "timestamp"] + (["accessToken"] if call.op == "refresh" else [])
    missing = [n for n in names if body.get(n) in (None, "")]
    if missing:
        return token_refusal(1202, ", ".join(missing))
    if not isinstance(body["appKey"], str) or not isinstance(body["encryption"], str):
        return token_refusal(1004, "appKey and encryption must be strings")
    if call.op == "refresh" and not isinstance(body["accessToken"], str):
        return token_refusal(1004, "accessToken must be a string")
    timestamp = ascii_int(body["timestamp"])
    if timestamp is None:
        return token_refusal(1004, "timestamp must be an integer (Unix ms)")
    return {**body, "timestamp": timestamp}


# -- authentication ------------------------------------------------------------------------------------


def _reject(call: Call, msg: str, code: int | None = None) -> Reply:
    payload: dict[str, Any] = {"msg": msg, "requestId": call.request_id}
    if code is not None:
        payload = {"code": code, **payload}
    return Reply(401, payload, code=code, msg=msg)


def authenticate(ctx: Context, call: Call) -> App | Reply:
    """The app a request acts for, or the 401 that refuses it."""
    scheme = ctx.settings.auth
    signed = all(call.headers.get(name) for name in SIGNATURE_HEADERS)
    if scheme == "bearer" or (scheme == "any" and not signed and "authorization" in call.headers):
        return _bearer(ctx, call)
    if scheme == "any" and not signed:
        return _reject(call, "missing credentials: Authorization: Bearer, or apim-* signature headers")
    return _signed(ctx, call)


def _live_app(ctx: Context, call: Call, token: str) -> App | Reply:
    app, live = ctx.store.token_app(token)
    if app is None:
        return _reject(call, "unknown access token")
    if not live:
        return _reject(call, "access token expired", 1203)
    return app


def _bearer(ctx: Context, call: Call) -> App | Reply:
    scheme, _, token = call.headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _reject(call, "missing or malformed Authorization: Bearer header")
    app = _live_app(ctx, call, token)
    if isinstance(app, App):
        call.auth = "bearer"
    return app


def _signed(ctx: Context, call: Call) -> App | Reply:
    token = call.headers.get("apim-accesstoken")
    raw_ts = call.headers.get("apim-timestamp")
    signature = call.headers.get("apim-signature")
    if not token or not raw_ts or not signature:
        return _reject(call, "missing apim-accesstoken, apim-timestamp or apim-signature header")
    app = _live_app(ctx, call, token)
    if not isinstance(app, App):
        return app
    timestamp = ascii_int(raw_ts)
    if timestamp is None:
        return _reject(call, "invalid apim-timestamp")
    if abs(int(ctx.clock() * 1000) - timestamp) > TIMESTAMP_WINDOW_MS:
        return _reject(call, "timestamp out of range")
    expected = expected_signature(token, call.query_pairs, call.body, timestamp, app.secret_key)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return _reject(call, "signature mismatch")
    call.auth = "apim-signature"
    return app
