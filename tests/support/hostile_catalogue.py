"""The catalogue of hostile answers, each with what a correct client must make of it (see ``Case``).

``GENERIC`` applies to any endpoint (transport, HTTP framing, headers, bodies, JSON); the other lists are
answers only one endpoint can get wrong (token values and lifetimes, stage state data, pipeline pages).
"""

from __future__ import annotations

from typing import Any

from tests.support.hostile_behaviours import (
    CUT_PHASES,
    MIB,
    Case,
    answer,
    cut,
    echo_credentials,
    echo_headers_page,
    envelope,
    gzip_bomb,
    huge,
    interim_flood,
    json_answer,
    pipeline,
    raw,
    slow_chunks,
    stall,
    status_answer,
    token,
    token_answer,
    trickle,
    well_formed_bytes,
    with_data,
)
from tests.support.hostile_peer import LONG, PIPELINE, Behaviour, Exchange, default_payload, encode_json

__all__ = ["DELETE", "GENERIC", "GET", "GET_UNREADABLE", "LIST", "STATUSES", "TOKEN", "by_name"]

DEEP = 100_000


def _headers_then_body(name: str, *header_lines: bytes, body_from: str = "default") -> Behaviour:
    """The well-formed answer with extra raw header lines; then close."""

    def act(ex: Exchange) -> bool:
        body = encode_json(default_payload(ex))
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n" + b"".join(
            line + b"\r\n" for line in header_lines
        )
        if body_from == "default":
            head += b"Content-Length: %d\r\n" % len(body)
        ex.send(head + b"\r\n" + body)
        return False

    return Behaviour(name, act)


def _length(name: str, value: bytes, send_body: str = "all") -> Behaviour:
    """A Content-Length header of ``value``; the body is sent whole (or half) and the connection closed."""

    def act(ex: Exchange) -> bool:
        body = encode_json(default_payload(ex))
        sent = body if send_body == "all" else body[: len(body) // 2]
        ex.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
            + value
            + b"\r\n\r\n"
            + sent
        )
        return False

    return Behaviour(name, act)


def _chunked(name: str, chunks: bytes) -> Behaviour:
    """A chunked answer made of these raw chunk bytes (none: the well-formed answer in one chunk)."""

    def act(ex: Exchange) -> bool:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        head += b"Connection: close\r\n\r\n"
        ex.send(head + (chunks or _good_chunks(ex)))
        return False

    return Behaviour(name, act)


def _good_chunks(ex: Exchange) -> bytes:
    body = encode_json(default_payload(ex))
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def _body(name: str, body: bytes, status: int = 200) -> Behaviour:
    return answer(name, body, status, keep=True)


def _redirect(status: int) -> Behaviour:
    def make(ex: Exchange) -> bytes:
        return encode_json(default_payload(ex))  # a success body: a redirect must not pass as one

    return answer(
        f"redirect-{status}",
        make,
        status,
        headers=(("Location", "http://user:pw@127.0.0.1:9/elsewhere"),),
        keep=True,
    )


def _no_content_with_body(status: int) -> Behaviour:
    def act(ex: Exchange) -> bool:
        body = encode_json(default_payload(ex))
        ex.send(
            b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, len(body), body)
        )
        return False

    return Behaviour(f"status-{status}-with-body", act)


def _one_mib_header(ex: Exchange) -> bool:
    ex.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MIB + b"\r\n\r\n")
    return False


def _many_headers(ex: Exchange) -> bool:
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(5000))
    body = encode_json(default_payload(ex))
    ex.send(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + lines + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    return False


def _interim_then_nothing(ex: Exchange) -> bool:
    ex.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    ex.pause(LONG)
    return False


GENERIC: list[Case] = [
    # Cut at every phase, by FIN and by RST.
    *(Case(cut(phase, how), "error") for phase in CUT_PHASES for how in ("close", "reset")),
    # Time.
    *(Case(trickle(phase), "any") for phase in ("status", "headers", "body")),
    *(Case(stall(phase), "error") for phase in ("before-status", "after-headers", "mid-body")),
    Case(interim_flood(), "any"),
    Case(Behaviour("interim-100-then-nothing", _interim_then_nothing), "error"),
    Case(slow_chunks(), "error"),
    # Framing.
    Case(raw("http09-garbage", b"hello, this is not HTTP\r\n\r\n"), "error"),
    Case(raw("bad-status-line", b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"), "error"),
    Case(raw("empty-status-line", b"\r\n\r\n"), "error"),
    Case(raw("status-999", b"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\n{}"), "error"),
    Case(_length("content-length-non-numeric", b"abc"), "any"),
    Case(_length("content-length-superscript", "²".encode()), "any"),
    Case(_length("content-length-negative", b"-5"), "any"),
    Case(_length("content-length-huge", b"99999999999999999999999"), "error"),
    Case(_length("content-length-conflicting", b"10, 20"), "error"),
    Case(_length("truncated-body", b"4096", send_body="half"), "error"),
    Case(_chunked("chunk-size-not-hex", b"zz\r\n{}\r\n0\r\n\r\n"), "error"),
    Case(_chunked("chunk-size-huge-then-close", b"ffffffffffffffffffff\r\n{}"), "error"),
    Case(_chunked("chunked-without-last-chunk", b'2\r\n{"\r\n'), "error"),
    Case(_chunked("chunked-well-formed", b""), "ok"),
    Case(_no_content_with_body(204), "error"),
    Case(_no_content_with_body(304), "error"),
    *(Case(_redirect(status), "error") for status in (301, 302, 307, 308)),
    # Headers.
    Case(Behaviour("header-line-1MiB", _one_mib_header), "error"),
    Case(Behaviour("headers-5000", _many_headers), "error"),
    Case(_headers_then_body("header-non-latin1", "X-Note: caf\u00e9 \u2603".encode()), "ok"),
    Case(_headers_then_body("header-without-colon", b"this is not a header"), "any"),
    Case(_headers_then_body("retry-after-superscript", "Retry-After: \u00b2".encode()), "ok"),
    # Size and encoding.
    Case(huge(32 * MIB), "any"),
    Case(huge(32 * MIB, chunked=True), "any"),
    Case(gzip_bomb(64 * MIB), "any"),
    Case(_headers_then_body("gzip-header-plain-body", b"Content-Encoding: gzip"), "error"),
    # Bodies that are not our JSON.
    Case(_body("empty-body", b""), "error"),
    Case(_body("html-200", b"<html><body>Welcome to nginx!</body></html>"), "error"),
    Case(_body("json-truncated", b'{"code":0,"data":'), "error"),
    Case(_body("json-deep-arrays", b"[" * DEEP + b"]" * DEEP), "error"),
    Case(_body("json-deep-objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP), "error"),
    Case(
        _body("json-deep-data", b'{"code":0,"requestId":"r","data":' + b"[" * DEEP + b"]" * DEEP + b"}"),
        "any",
    ),
    Case(_body("json-nan", b"NaN"), "error"),
    Case(_body("json-list", b"[]"), "error"),
    Case(_body("json-string", b'"ok"'), "error"),
    Case(_body("json-number", b"0"), "error"),
    Case(_body("json-null", b"null"), "error"),
    Case(_body("json-true", b"true"), "error"),
    Case(_body("json-invalid-utf8", b'{"code":0,"msg":"\xff\xfe","data":true}'), "any"),
    Case(_body("json-bom", b'\xef\xbb\xbf{"code":0,"data":true}'), "any"),
    Case(_body("json-code-string", b'{"code":"0","msg":"x","data":true}'), "error"),
    Case(_body("json-code-false", b'{"code":false,"msg":"x","data":true}'), "error"),
    Case(_body("json-code-true", b'{"code":true,"msg":"x","data":true}'), "error"),
    Case(_body("json-code-float", b'{"code":0.0,"msg":"x","data":true}'), "error"),
    Case(_body("json-code-1e400", b'{"code":1e400,"msg":"x","data":true}'), "error"),
    Case(_body("json-code-nan", b'{"code":NaN,"msg":"x","data":true}'), "error"),
    Case(_body("json-code-infinity", b'{"code":Infinity,"msg":"x","data":true}'), "error"),
    Case(_body("json-code-minus-infinity", b'{"code":-Infinity,"msg":"x","data":true}'), "error"),
    Case(_body("json-infinity", b"Infinity"), "error"),
    Case(_body("json-code-huge-int", b'{"code":' + b"9" * 5000 + b',"msg":"x","data":true}'), "error"),
    Case(_body("json-code-30-digits", b'{"code":' + b"9" * 30 + b',"msg":"x","data":true}'), "error"),
    Case(_body("json-code-null", b'{"code":null,"msg":"x","data":true}'), "error"),
    Case(_body("json-status-and-code-missing", b'{"msg":"x","data":true}'), "error"),
    Case(envelope("json-msg-list", msg=["a", 1]), "ok"),
    Case(envelope("json-msg-huge", msg="m" * MIB), "ok"),
    Case(envelope("json-error-msg-huge", code=61199, status=61199, msg="m" * MIB), "error"),
    Case(envelope("json-error-msg-not-string", code=61102, status=1004, msg={"x": [1, 2]}), "error"),
    Case(envelope("json-request-id-list", requestId=["r", 1]), "ok"),
    Case(envelope("json-request-id-number", requestId=12345), "ok"),
    Case(envelope("json-request-id-object", requestId={"id": "r"}), "ok"),
]

# A non-2xx status, every time: never a success, whatever the body says.
STATUSES: list[Case] = [
    Case(status_answer(status, body), "error")
    for status, body in [
        (400, "envelope"),
        (401, "spring"),
        (403, "html"),
        (404, "text"),
        (405, "empty"),
        (408, "envelope"),
        (409, "text"),
        (413, "envelope"),
        (413, "html"),
        (414, "empty"),
        (429, "envelope"),
        (429, "html"),
        (431, "text"),
        (500, "spring"),
        (500, "html"),
        (501, "envelope"),
        (502, "html"),
        (503, "text"),
        (504, "empty"),
        (507, "envelope"),
        (599, "spring"),
    ]
] + [
    Case(status_answer(429, "envelope", headers=(("Retry-After", "\u00b2"),)), "error"),
    Case(status_answer(503, "html", headers=(("Retry-After", "-1"),)), "error"),
    Case(status_answer(503, "html", headers=(("Retry-After", "NaN"),)), "error"),
    Case(status_answer(503, "html", headers=(("Retry-After", "1e400"),)), "error"),
    Case(status_answer(503, "html", headers=(("Retry-After", "99999999999999999999"),)), "error"),
    Case(status_answer(429, "html", headers=(("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"),)), "error"),
    Case(status_answer(429, "html", headers=(("Retry-After", "Mon, 99 Foo 0000 99:99:99 XYZ"),)), "error"),
    Case(echo_credentials(401), "error"),
    Case(echo_credentials(400), "error"),
    Case(echo_headers_page(400), "error"),
]


def _token_value(name: str, value: Any) -> Case:
    return Case(token_answer(name, value), "error")


TOKEN: list[Case] = [
    # Tokens that are not valid header values: refused as an AuthenticationError (see the client tests).
    Case(token("token-leading-space", lambda c: " " + c), "error"),
    Case(token("token-trailing-space", lambda c: c + " "), "error"),
    Case(token("token-crlf", lambda c: c + "\r\nX-Injected: 1"), "error"),
    Case(token("token-lf", lambda c: c + "\nx"), "error"),
    Case(token("token-non-latin1", lambda c: c + "\u2603"), "error"),
    Case(token("token-latin1-only", lambda c: c + "\u00e9"), "any"),
    Case(token("token-nul", lambda c: c + "\x00"), "error"),
    Case(token("token-empty", lambda c: ""), "error"),
    Case(token("token-whitespace-only", lambda c: "   "), "error"),
    Case(token("token-100KB", lambda c: c + "t" * 100_000), "any"),
    # Lifetimes.
    Case(token("expire-zero", expire=0), "error"),
    Case(token("expire-negative", expire=-5), "error"),
    Case(token("expire-nan", expire=float("nan")), "error"),
    Case(token("expire-infinite", expire=float("inf")), "error"),
    Case(token("expire-minus-infinite", expire=float("-inf")), "error"),
    Case(token("expire-huge", expire=10**300), "any"),
    Case(token("expire-string", expire="7200"), "any"),
    Case(token("expire-bool", expire=True), "any"),
    Case(token("expire-null", expire=None), "error"),
    # Shapes.
    _token_value("token-status-nonzero", lambda c: {"status": 1003, "msg": "invalid encryption"}),
    _token_value(
        "token-status-string", lambda c: {"status": "0", "data": {"accessToken": c, "expire": 7200}}
    ),
    _token_value(
        "token-status-bool", lambda c: {"status": False, "data": {"accessToken": c, "expire": 7200}}
    ),
    _token_value("token-no-status", lambda c: {"data": {"accessToken": c, "expire": 7200}}),
    _token_value("token-data-null", lambda c: {"status": 0, "data": None}),
    _token_value("token-data-list", lambda c: {"status": 0, "data": [c, 7200]}),
    _token_value("token-data-string", lambda c: {"status": 0, "data": c}),
    _token_value(
        "token-access-token-number",
        lambda c: {"status": 0, "data": {"accessToken": 12345678, "expire": 7200}},
    ),
    _token_value(
        "token-access-token-list", lambda c: {"status": 0, "data": {"accessToken": [c], "expire": 7200}}
    ),
    _token_value(
        "token-access-token-object",
        lambda c: {"status": 0, "data": {"accessToken": {"v": c}, "expire": 7200}},
    ),
    _token_value(
        "token-access-token-null", lambda c: {"status": 0, "data": {"accessToken": None, "expire": 7200}}
    ),
    _token_value("token-top-level-list", lambda c: [{"accessToken": c, "expire": 7200}]),
    _token_value("token-top-level-string", lambda c: c),
    Case(
        token_answer("token-1001-duplicated", lambda c: {"status": 1001, "msg": "duplicated encryption"}),
        "error",
    ),
    Case(status_answer(413, "envelope"), "error"),
    Case(status_answer(413, "html"), "error"),
]

DELETE: list[Case] = [
    *(
        Case(with_data(f"delete-data-{label}", value), "error")
        for label, value in [
            ("false", False),
            ("null", None),
            ("string-true", "true"),
            ("one", 1),
            ("list", [True]),
            ("object", {"ok": True}),
        ]
    ),
    Case(envelope("delete-data-missing", drop=("data",)), "error"),
    Case(envelope("delete-no-request-id", drop=("requestId",)), "ok"),
    # Duplicate keys are ambiguous (Python keeps the last one): only the invariants apply.
    Case(
        _body(
            "delete-duplicate-code-last-fails",
            b'{"code":0,"code":61199,"msg":"x","requestId":"r","data":true}',
        ),
        "any",
    ),
    Case(
        _body(
            "delete-duplicate-code-last-ok", b'{"code":61199,"code":0,"msg":"x","requestId":"r","data":true}'
        ),
        "any",
    ),
]

# Get Stage State answers verify cannot read: they must fail, never count as "no state left".
GET_UNREADABLE: list[Case] = [
    Case(with_data(f"get-data-{label}", value), "error")
    for label, value in [
        ("items-not-objects", [1, "a1/p1", None]),
        ("items-lack-ids", [{"asset": "a1", "point": "p1", "value": 1}]),
        ("items-nested-ids", [{"key": {"assetId": "a1", "pointId": "p1"}}]),
        ("items-lack-point", [{"assetId": "a1"}]),
        ("items-wrapper-not-list", {"items": "a1,p1"}),
        ("items-wrapper-object", {"items": {"assetId": "a1", "pointId": "p1"}}),
        ("items-wrapper-of-non-objects", {"items": [1, 2]}),
        ("object-without-items", {"records": []}),
        ("string", "[]"),
        ("number", 0),
        ("true", True),
        # IDs are strings: an item with other IDs cannot be matched to a pair, so it cannot be read.
        ("ids-not-strings", [{"assetId": 1, "pointId": ["p1"]}]),
    ]
]

GET: list[Case] = [
    *GET_UNREADABLE,
    Case(with_data("get-items-list", [{"assetId": "a1", "pointId": "p1", "time": 1, "value": 2}]), "ok"),
    Case(with_data("get-items-wrapper", {"items": [{"assetId": "a1", "pointId": "p1"}]}), "ok"),
    Case(with_data("get-empty-list", []), "ok"),
    Case(with_data("get-null", None), "any"),
]


def _pipelines(name: str, data: Any) -> Behaviour:
    return json_answer(
        name, lambda ex: {"code": 0, "msg": " OK", "requestId": "r-list", "data": data}, keep=True
    )


def _first_entry_id(label: str, value: Any) -> Case:
    # The odd entry comes first: a client cannot get past it without reading it.
    return Case(
        _pipelines(f"list-pipeline-id-{label}", {"count": 2, "pipelines": [pipeline(value), pipeline()]}),
        "error",
    )


LIST: list[Case] = [
    *(
        _first_entry_id(label, value)
        for label, value in [
            ("number", 123),
            ("null", None),
            ("list", ["x"]),
            ("object", {"id": "x"}),
            ("bool", True),
        ]
    ),
    *(
        Case(_pipelines(f"list-status-{label}", {"count": 1, "pipelines": [pipeline(status=value)]}), "any")
        for label, value in [("number", 3), ("null", None), ("list", ["PAUSED"]), ("object", {"s": "PAUSED"})]
    ),
    *(
        Case(_pipelines(f"list-{label}", data), "any")
        for label, data in [
            ("count-string", {"count": "1", "pipelines": [pipeline()]}),
            ("count-negative", {"count": -1, "pipelines": [pipeline()]}),
            ("count-nan", {"count": float("nan"), "pipelines": [pipeline()]}),
            ("count-1e400", {"count": float("inf"), "pipelines": [pipeline()]}),
            ("pipelines-string", {"count": 1, "pipelines": PIPELINE}),
            ("pipelines-object", {"count": 1, "pipelines": pipeline()}),
            ("pipelines-null", {"count": 1, "pipelines": None}),
            ("entries-not-objects", {"count": 3, "pipelines": [1, "x", None]}),
            ("data-null", None),
            ("data-list", [pipeline()]),
        ]
    ),
    Case(
        _body(
            "list-deep-pipelines",
            b'{"code":0,"requestId":"r","data":{"count":1,"pipelines":' + b"[" * DEEP + b"]" * DEEP + b"}}",
        ),
        "any",
    ),
]


def by_name(cases: list[Case], name: str) -> Case:
    return next(case for case in cases if case.id == name)


def _well_formed_ok(ex: Exchange) -> bool:
    ex.send(well_formed_bytes(ex))
    return True


WELL_FORMED_CASE = Case(Behaviour("well-formed", _well_formed_ok), "ok")
