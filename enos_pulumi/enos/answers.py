"""Reading an answer: the HTTP status first, then the JSON envelope; anything else is a clear error.

Every text taken from an answer (``msg``, an error page, a requestId) is cleaned before it reaches an
error or a progress line: control characters dropped, cut to a readable length, and any secret of the
call (the token, the signature, the secret key) hidden, for a gateway may echo request headers back.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from .errors import ApiError, TransportError, TransportKind, UnexpectedAnswerError, api_error_class
from .request import Request
from .transport import Answer

__all__ = ["Redactor", "clean", "decode", "request_id_of", "retry_after"]

_TAGS = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
#: Retry-After beyond a day is a broken gateway, not advice to follow.
_MAX_RETRY_AFTER = 86400.0
#: How much of an error body is looked at to summarize it (the whole of it is redacted first).
_SHOWN_SOURCE = 64 * 1024


class Redactor:
    """Hides the given secrets in a text (secrets shorter than 4 characters cannot be told from text)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def with_more(self, secrets: Iterable[str | None]) -> Redactor:
        return Redactor([*self._secrets, *secrets])

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "(hidden)")
        return text

    def tail(self, text: str) -> str:
        """``text`` (already cut short) without a trailing start of a secret, which the cut may have
        left too short to be recognized whole."""
        for secret in self._secrets:
            for k in range(min(len(secret) - 1, len(text)), 3, -1):
                if text.endswith(secret[:k]):
                    return text[:-k] + "(hidden)"
        return text


def _cut(text: str, limit: int, redact: Callable[[str], str]) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit * 0.7 else cut
    if isinstance(redact, Redactor):
        cut = redact.tail(cut)
    return cut + " ..."


def clean(text: str, redact: Callable[[str], str], limit: int = 300) -> str:
    """``text`` fit for an error message: secrets hidden (before anything is cut), whitespace runs
    collapsed, no control or non-printable characters, at most ``limit`` characters (cut at a word where
    one is near)."""
    text = redact(text)
    text = "".join(ch if ch.isprintable() else " " for ch in _SPACES.sub(" ", text)).strip()
    return _cut(text, limit, redact)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, AttributeError):
        return None
    return min(max(when - time.time(), 0.0), _MAX_RETRY_AFTER)


def request_id_of(
    envelope: Mapping[str, Any] | None, headers: Mapping[str, str], redact: Callable[[str], str] = str
) -> str | None:
    """The envelope's requestId, else the gateway's ``x-request-id`` header, if it looks like an ID and
    is no secret of the call (a gateway echoing the token as requestId must not put it into state)."""
    candidates = (envelope.get("requestId") if envelope is not None else None, headers.get("x-request-id"))
    for value in candidates:
        if isinstance(value, str) and _REQUEST_ID.fullmatch(value.strip()):
            rid = value.strip()
            if redact(rid) == rid:
                return rid
    return None


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')


def value_count(body: bytes) -> int:
    """About how many JSON values ``body`` holds: its containers and separators, outside strings (a
    description full of commas is one value). C-speed scans."""
    bare = _STRINGS.sub(b'""', body) if b'"' in body else body
    return bare.count(b"{") + bare.count(b"[") + bare.count(b",")


def _head(text: str, redact: Callable[[str], str]) -> str:
    """The start of ``text`` to summarize, secrets hidden in all of it first (a cut could leave part of
    one too short to be recognized)."""
    head = redact(text)[:_SHOWN_SOURCE]
    return redact.tail(head) if isinstance(redact, Redactor) else head


def _cut_short(body: bytes) -> bool:
    start = body.lstrip()[:1]
    return not start or start in (b"{", b"[")


def _parse(body: bytes) -> tuple[bool, Any]:
    if not body.strip():
        return False, None
    try:
        return True, json.loads(body)
    except (ValueError, RecursionError):  # malformed, not UTF-8, or nested past the parser's depth
        return False, None


@dataclass(frozen=True)
class _Body:
    """An answer's body as far as it could be read, and how it may be quoted."""

    answer: Answer
    parsed: bool
    payload: Any
    redact: Redactor
    #: The token service's: its JSON may hold a token in any shape, so it is described, never quoted.
    private: bool

    @property
    def envelope(self) -> dict[str, Any] | None:
        return self.payload if isinstance(self.payload, dict) else None

    def summary(self) -> str:
        """A short, readable trace of an answer that is not a usable envelope (secrets hidden in the whole
        text before it is cut: a cut could leave a secret too short to be recognized)."""
        redact, payload = self.redact, self.payload
        reason = clean(self.answer.reason, redact, 60) or "error"
        if self.parsed and self.private:
            return f"{reason}; a JSON {type(payload).__name__} (not shown: it may hold a token)"
        if self.parsed:
            try:
                text = json.dumps(payload, ensure_ascii=False)
            except (ValueError, RecursionError):
                text = type(payload).__name__
            return f"{reason}; JSON body {clean(_head(text, redact), redact, 160)}"
        text = _head(self.answer.body.decode("utf-8", errors="replace"), redact)
        text = clean(_TAGS.sub(" ", text), redact, 120)
        return f"{reason}; non-JSON body: {text!r}" if text else f"{reason}; empty body"


def _int_code(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ok(status: int) -> bool:
    return 200 <= status < 300


def decode(answer: Answer, request: Request, *, code_key: str, redact: Redactor) -> dict[str, Any]:
    """The envelope of a successful answer (its ``requestId`` normalized), or the matching
    :class:`ApiError`.

    ``code_key`` is ``"code"`` for the services and ``"status"`` for the token service. An answer of
    more than the request's ``max_values`` JSON values is refused unparsed (see :func:`value_count`).
    """
    _refuse_oversized(answer, request)
    body = _read(answer, request, code_key, redact)
    envelope = body.envelope
    code = _int_code(envelope.get(code_key, envelope.get("code"))) if envelope is not None else None
    request_id = request_id_of(envelope, answer.headers, body.redact)
    common: dict[str, Any] = {
        "operation": request.operation,
        "request_id": request_id,
        "http_status": answer.status,
        "target": request.target,
        "context": dict(request.context),
    }
    raw_message = envelope.get("msg", envelope.get("message")) if envelope is not None else None
    message = clean(raw_message, body.redact) if isinstance(raw_message, str) else ""
    if not _ok(answer.status):
        raise _refusal(body, code, message, common)
    if envelope is None:
        raise UnexpectedAnswerError(message=f"not a JSON object: {body.summary()}", **common)
    if code is None:
        shown = clean(repr(envelope.get(code_key, envelope.get("code"))), body.redact, 40)
        raise UnexpectedAnswerError(message=f"the answer's {code_key!r} is {shown}, not an integer", **common)
    if code != 0:
        raise api_error_class(code, None)(message=message or "(no message)", code=code, **common)
    envelope["requestId"] = request_id  # normalized: the gateway's header when EnOS gave none
    return envelope


def _refuse_oversized(answer: Answer, request: Request) -> None:
    values = value_count(answer.body)
    if values <= request.max_values:
        return
    cls = api_error_class(None, answer.status) if not _ok(answer.status) else UnexpectedAnswerError
    raise cls(
        operation=request.operation,
        message=f"the answer holds about {values:,} JSON values, more than the {request.max_values:,} this "
        f"operation can need; it was not parsed",
        http_status=answer.status,
        target=request.target,
        context=dict(request.context),
    )


def _read(answer: Answer, request: Request, code_key: str, redact: Redactor) -> _Body:
    parsed, payload = _parse(answer.body)
    if not answer.framed and _ok(answer.status) and not parsed and _cut_short(answer.body):
        # Only the connection closing ended this body: empty, or JSON that stops short. Asking again
        # will most likely get all of it.
        raise TransportError(
            request.operation,
            "the answer ended when the connection closed, before a complete envelope",
            request.target,
            kind=TransportKind.CLOSED,
        )
    private = code_key == "status"
    if private:
        # A token-service answer refused for its status may still carry a token: never show it.
        data = payload.get("data") if isinstance(payload, dict) else None
        token = data.get("accessToken") if isinstance(data, dict) else None
        redact = redact.with_more([token if isinstance(token, str) else None])
    return _Body(answer, parsed, payload, redact, private)


def _refusal(body: _Body, code: int | None, message: str, common: dict[str, Any]) -> ApiError:
    """The error for an answer refused by its HTTP status: the code's class, else the status's."""
    status = body.answer.status
    cls = api_error_class(code, status)
    if cls is ApiError and 300 <= status < 400:
        message = message or f"redirected ({clean(body.answer.reason, body.redact, 60) or 'no reason'})"
        cls = UnexpectedAnswerError
    return cls(
        message=message or body.summary(),
        code=code if code is not None and code != status else None,
        retry_after=retry_after(body.answer.headers.get("Retry-After")),
        **common,
    )
