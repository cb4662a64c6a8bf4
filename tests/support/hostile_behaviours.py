"""The hostile peer's behaviours: a factory for each kind of misbehaviour (the catalogue lists the cases).

A :class:`Case` is a behaviour plus what a correct client must make of it when every request to that
endpoint gets it: ``"ok"`` (a success), ``"error"`` (an ``EnosError``) or ``"any"`` (either; the other
invariants still hold).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.support.hostile_peer import (
    LONG,
    PIPELINE,
    Behaviour,
    Exchange,
    default_payload,
    encode_json,
    http_answer,
)

__all__ = [
    "CUT_PHASES",
    "MIB",
    "STATUS_BODIES",
    "Case",
    "answer",
    "cut",
    "cut_at",
    "delayed",
    "echo_credentials",
    "echo_headers_page",
    "envelope",
    "gzip_bomb",
    "huge",
    "interim_flood",
    "json_answer",
    "pipeline",
    "pipelines_page",
    "raw",
    "slow_chunks",
    "stall",
    "status_answer",
    "token",
    "token_answer",
    "trickle",
    "well_formed_bytes",
    "with_data",
]

MIB = 1 << 20
Payload = Callable[[Exchange], Any]


@dataclass(frozen=True)
class Case:
    behaviour: Behaviour
    expect: str  # "ok", "error" or "any"

    @property
    def id(self) -> str:
        return self.behaviour.name


# -- building blocks -------------------------------------------------------------------------------------


def answer(
    name: str,
    body: bytes | Callable[[Exchange], bytes],
    status: int = 200,
    *,
    headers: tuple[tuple[str, str] | bytes, ...] = (),
    reason: str | bytes = "X",
    content_length: bool = True,
    keep: bool = False,
) -> Behaviour:
    """A well-formed HTTP answer with this body (bytes, or made from the exchange)."""

    def act(ex: Exchange) -> bool:
        data = body(ex) if callable(body) else body
        ex.send(
            http_answer(
                status, data, reason=reason, headers=headers, content_length=content_length, close=not keep
            )
        )
        return keep

    return Behaviour(name, act)


def json_answer(name: str, value: Any | Payload, status: int = 200, **options: Any) -> Behaviour:
    """A JSON answer; ``value`` may be a function of the exchange."""

    def body(ex: Exchange) -> bytes:
        return encode_json(value(ex) if callable(value) else value)

    return answer(name, body, status, **options)


def envelope(
    name: str,
    status: int = 200,
    drop: tuple[str, ...] = (),
    headers: tuple[tuple[str, str] | bytes, ...] = (),
    **fields: Any,
) -> Behaviour:
    """The endpoint's well-formed success answer with some fields replaced or dropped, and extra headers."""

    def value(ex: Exchange) -> Any:
        payload = default_payload(ex)
        payload.update(fields)
        for key in drop:
            payload.pop(key, None)
        return payload

    return json_answer(name, value, status, headers=headers)


def with_data(name: str, data: Any) -> Behaviour:
    return envelope(name, data=data)


def token(name: str, shape: Callable[[str], Any] = lambda core: core, expire: Any = 7200) -> Behaviour:
    """A token answer whose accessToken is ``shape(core)``; the core is recorded as issued (a secret)."""

    def value(ex: Exchange) -> Any:
        core = ex.peer.issue_token()
        return {"status": 0, "msg": "SUCCESS", "data": {"accessToken": shape(core), "expire": expire}}

    return json_answer(name, value)


def token_answer(name: str, make: Callable[[str], Any]) -> Behaviour:
    """A token-service answer of any shape, built around a fresh token core."""
    return json_answer(name, lambda ex: make(ex.peer.issue_token()))


def closing_head(status: int, *lines: str) -> bytes:
    """A status line and these header lines, then ``Connection: close`` and the blank line."""
    return "".join(
        f"{line}\r\n" for line in (f"HTTP/1.1 {status} X", *lines, "Connection: close", "")
    ).encode()


def well_formed_bytes(
    ex: Exchange, *, reason: bytes = b"OK", pad_headers: int = 0, pad_body: int = 0
) -> bytes:
    """The endpoint's success answer as bytes, padded where asked, saying the connection will close."""
    body = encode_json(default_payload(ex)) + b" " * pad_body  # trailing whitespace is valid JSON
    headers: tuple[tuple[str, str], ...] = (("X-Pad", "p" * pad_headers),) if pad_headers else ()
    return http_answer(200, body, reason=reason, headers=headers, close=True)


def delayed(behaviour: Behaviour, seconds: float) -> Behaviour:
    def act(ex: Exchange) -> bool:
        ex.pause(seconds)
        return behaviour(ex)

    return Behaviour(f"{behaviour.name}-after-{seconds:g}s", act)


def raw(name: str, data: bytes, *, then: str = "close") -> Behaviour:
    """Send raw bytes, then close, reset (RST) or stall for ``LONG`` and close."""

    def act(ex: Exchange) -> bool:
        ex.send(data)
        if then == "reset":
            ex.reset()
        if then == "stall":
            ex.pause(LONG)
        return False

    return Behaviour(name, act)


# -- time ------------------------------------------------------------------------------------------------

TRICKLE_INTERVAL = 0.05
TRICKLE_BYTES = int(LONG / TRICKLE_INTERVAL)


def trickle(phase: str) -> Behaviour:
    """A well-formed answer whose status line, headers or body arrives one byte every 50 ms (for ~8 s)."""

    def act(ex: Exchange) -> bool:
        pad = TRICKLE_BYTES
        if phase == "status":
            data = well_formed_bytes(ex, reason=b"O" * pad)
            start, end = 0, data.index(b"\r\n")
        elif phase == "headers":
            data = well_formed_bytes(ex, pad_headers=pad)
            start, end = data.index(b"\r\n") + 2, data.index(b"\r\n\r\n")
        else:
            data = well_formed_bytes(ex, pad_body=pad)
            start, end = data.index(b"\r\n\r\n") + 4, len(data)
        ex.send(data[:start])
        ex.trickle(data[start:end], TRICKLE_INTERVAL)
        ex.send(data[end:])
        return False

    return Behaviour(f"trickle-{phase}", act)


def stall(phase: str) -> Behaviour:
    """Stop answering for ``LONG`` seconds before the status line, after the headers or mid-body; close."""

    def act(ex: Exchange) -> bool:
        data = well_formed_bytes(ex, pad_body=64)
        upto = {
            "before-status": 0,
            "after-headers": data.index(b"\r\n\r\n") + 4,
            "mid-body": data.index(b"\r\n\r\n") + 20,
        }[phase]
        ex.send(data[:upto])
        ex.pause(LONG)
        return False

    return Behaviour(f"stall-{phase}", act)


def interim_flood(interval: float = 0.2) -> Behaviour:
    """``100 Continue`` after ``100 Continue`` (each well inside a read timeout) for ``LONG`` seconds."""

    def act(ex: Exchange) -> bool:
        spent = 0.0
        while spent < LONG:
            ex.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            ex.pause(interval)
            spent += interval
        ex.send(well_formed_bytes(ex))
        return False

    return Behaviour("interim-100-flood", act)


def slow_chunks(interval: float = 0.1) -> Behaviour:
    """A chunked answer that never ends: a small chunk every ``interval`` until ``LONG``, then close."""

    def act(ex: Exchange) -> bool:
        ex.send(closing_head(200, "Content-Type: application/json", "Transfer-Encoding: chunked"))
        ex.send(b"1\r\n[\r\n")
        spent = 0.0
        while spent < LONG:
            ex.send(b"2\r\n1,\r\n")
            ex.pause(interval)
            spent += interval
        return False

    return Behaviour("chunked-endless-slow", act)


# -- cuts ------------------------------------------------------------------------------------------------

CUT_PHASES = ("before-status", "mid-status", "after-status", "mid-headers", "after-headers", "mid-body")


def cut_offset(data: bytes, phase: str) -> int:
    head_end = data.index(b"\r\n\r\n") + 4
    status_end = data.index(b"\r\n") + 2
    return {
        "before-status": 0,
        "mid-status": 5,
        "after-status": status_end,
        "mid-headers": status_end + 6,
        "after-headers": head_end,
        "mid-body": head_end + (len(data) - head_end) // 2,
    }[phase]


def cut(phase: str, how: str = "close") -> Behaviour:
    """The well-formed answer up to a phase, then the connection is closed (FIN) or reset (RST)."""

    def act(ex: Exchange) -> bool:
        data = well_formed_bytes(ex)
        ex.send(data[: cut_offset(data, phase)])
        if how == "reset":
            ex.reset()
        return False

    return Behaviour(f"cut-{phase}-{how}", act)


def cut_at(offset: int, how: str = "close") -> Behaviour:
    """The well-formed answer's first ``offset`` bytes (all of it if longer), then close or reset."""

    def act(ex: Exchange) -> bool:
        data = well_formed_bytes(ex)
        ex.send(data[:offset])
        if how == "reset":
            ex.reset()
        return offset >= len(data)

    return Behaviour(f"cut-at-{offset}-{how}", act)


# -- size ------------------------------------------------------------------------------------------------


def _stream(ex: Exchange, size: int, filler: bytes = b"x") -> None:
    block = memoryview(filler * (MIB // len(filler)))
    sent = 0
    while sent < size:
        part = block[: min(len(block), size - sent)]
        ex.send(part)
        sent += len(part)


def huge(size: int, *, status: int = 200, chunked: bool = False, html: bool = False) -> Behaviour:
    """A ``size``-byte answer streamed without ever holding it: a JSON success padded with ``x``s (or an
    HTML error page), with a Content-Length or chunked."""
    kind = "html" if html else "json"
    name = f"huge-{size // MIB}MiB-{status}-{kind}-{'chunked' if chunked else 'length'}"

    def act(ex: Exchange) -> bool:
        if html:
            head, tail, ctype = b"<html><body><p>", b"</p></body></html>", "text/html"
        else:
            payload = default_payload(ex)
            payload["pad"] = ""
            head, _, tail = encode_json(payload).rpartition(b'""')
            head, tail, ctype = head + b'"', b'"' + tail, "application/json"
        fill = size - len(head) - len(tail)
        if chunked:
            ex.send(closing_head(status, f"Content-Type: {ctype}", "Transfer-Encoding: chunked"))
            ex.send(b"%x\r\n%s\r\n" % (len(head), head))
            # A zero-size chunk would end the body: the remainder goes only if there is one.
            for part in [MIB] * (fill // MIB) + ([fill % MIB] if fill % MIB else []):
                ex.send(b"%x\r\n" % part)
                _stream(ex, part)
                ex.send(b"\r\n")
            ex.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
        else:
            ex.send(closing_head(status, f"Content-Type: {ctype}", f"Content-Length: {size}"))
            ex.send(head)
            _stream(ex, fill)
            ex.send(tail)
        return False

    return Behaviour(name, act)


def gzip_bomb(size: int) -> Behaviour:
    """``Content-Encoding: gzip``: a few hundred KB that inflate to ``size`` bytes of padded JSON."""

    def act(ex: Exchange) -> bool:
        payload = default_payload(ex)
        payload["pad"] = ""
        head, _, tail = encode_json(payload).rpartition(b'""')
        # Three gzip members (a valid gzip stream): JSON up to the pad, the cached pad, the rest.
        body = _gzip(head + b'"') + _gzip_pad(size) + _gzip(b'"' + tail)
        ex.send(
            closing_head(
                200,
                "Content-Type: application/json",
                "Content-Encoding: gzip",
                f"Content-Length: {len(body)}",
            )
        )
        ex.send(body)
        return False

    return Behaviour(f"gzip-bomb-{size // MIB}MiB", act)


@functools.cache
def _gzip_pad(size: int) -> bytes:
    """One gzip member inflating to ``size`` x's (cached: compressing 200 MB takes a moment)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"x" * MIB
    out = [deflater.compress(block) for _ in range(size // MIB)]
    out.append(deflater.compress(b"x" * (size % MIB)))
    out.append(deflater.flush())
    return b"".join(out)


def _gzip(data: bytes) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    return deflater.compress(data) + deflater.flush()


# -- HTTP statuses ---------------------------------------------------------------------------------------

STATUS_BODIES = ("envelope", "spring", "html", "text", "empty")


def status_answer(
    status: int, body: str = "envelope", *, headers: tuple[tuple[str, str], ...] = ()
) -> Behaviour:
    """An HTTP error status with a body a gateway, a Spring service or a proxy might send."""

    def make(ex: Exchange) -> bytes:
        if body == "envelope":
            return encode_json(
                {"code": status, "msg": f"gateway says {status}", "requestId": f"r-{ex.number}"}
            )
        if body == "spring":
            # JSON, but not our envelope: no code, no msg.
            return encode_json({"timestamp": 1700000000000, "status": status, "error": "Oops", "path": "/x"})
        if body == "html":
            return b"<html><head><title>%d</title></head><body><h1>Bad Gateway</h1></body></html>" % status
        if body == "text":
            return b"upstream connect error or disconnect/reset before headers"
        return b""

    ctype = "text/html" if body in ("html", "text") else "application/json"
    name = f"status-{status}-{body}" + "".join(f"-{k}:{v}" for k, v in headers)
    return answer(name, make, status, headers=(("Content-Type", ctype), *headers), keep=True)


def echo_credentials(status: int = 401) -> Behaviour:
    """A refusal whose message quotes the credentials it was sent (as some gateways do)."""

    def make(ex: Exchange) -> bytes:
        got = {k: v for k, v in ex.request.headers if k.lower().startswith("apim-")}
        message = f"invalid signature {got.get('apim-signature')} for token {got.get('apim-accesstoken')}"
        if ex.request.endpoint == "token":
            message = f"invalid request {ex.request.body.decode(errors='replace')}"
        return encode_json({"code": status, "status": status, "msg": message, "requestId": "r-echo"})

    return answer(f"status-{status}-echoes-credentials", make, status)


def echo_headers_page(status: int = 400) -> Behaviour:
    """A proxy's HTML debug page that lists the request's headers and body."""

    def make(ex: Exchange) -> bytes:
        # Sorted by name, as such pages often are: the apim-* headers come near the top.
        headers = sorted(ex.request.headers, key=lambda kv: kv[0].lower())
        rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in headers)
        body = f"<pre>{ex.request.body!r}</pre>"
        return f"<html><body><h1>Bad Request</h1><table>{rows}</table>{body}</body></html>".encode()

    return answer(
        f"status-{status}-html-echoes-headers", make, status, headers=(("Content-Type", "text/html"),)
    )


def pipelines_page(pages: list[list[dict[str, Any]]], count: int | None) -> Behaviour:
    """List Pipelines answering by ``pageNo`` (1-based) from ``pages``; past the last page, an empty one."""

    def value(ex: Exchange) -> Any:
        number = int(ex.request.query.get("pageNo", "1"))
        page = pages[number - 1] if 0 < number <= len(pages) else []
        data: dict[str, Any] = {"pipelines": page}
        if count is not None:
            data["count"] = count
        return {"code": 0, "msg": " OK", "requestId": f"r-list-{number}", "data": data}

    return json_answer("pipelines-pages", value, keep=True)


def pipeline(pipeline_id: Any = PIPELINE, status: Any = "PAUSED") -> dict[str, Any]:
    return {"pipelineId": pipeline_id, "pipelineName": "hostile", "status": status}
