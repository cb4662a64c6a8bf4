"""The read side of a connection: reads bounded in time (:class:`DeadlineReader`), and a request body
read exactly as sent (``Content-Length`` or chunked), refusing what cannot be framed.

Refusals are :class:`BadRequest` (400, or 413 past :data:`MAX_BODY_BYTES`); a client that goes away
mid-body is a ``ConnectionError``, one too slow a ``TimeoutError``.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from email.message import Message
from typing import Any

from .wire import ascii_int

__all__ = ["MAX_BODY_BYTES", "BadRequest", "DeadlineReader", "read_body"]

MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_CHUNK_LINE = 1024
MAX_TRAILERS = 64
_HEX = frozenset(b"0123456789abcdefABCDEF")


class DeadlineReader(io.RawIOBase):
    """The connection's read side: each read waits at most the request timeout, and once a request has
    begun (its first byte arrived) all its reads together at most that long too."""

    def __init__(self, sock: socket.socket, timeout: Callable[[], float]) -> None:
        super().__init__()
        self._sock, self._timeout = sock, timeout
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def next_request(self) -> None:
        self.deadline = None

    def readinto(self, buffer: Any) -> int:
        limit = self._timeout()
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request not received in time")
            limit = min(limit, remaining)
        self._sock.settimeout(limit)
        count = self._sock.recv_into(buffer)
        if count and self.deadline is None:
            self.deadline = time.monotonic() + self._timeout()
        return count


class BadRequest(Exception):
    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.msg = status, msg


def read_body(headers: Message, rfile: io.BufferedIOBase) -> bytes:
    """The request body; BadRequest for one that cannot be framed or is too big."""
    encodings = headers.get_all("Transfer-Encoding") or []
    lengths = headers.get_all("Content-Length") or []
    if encodings:
        if lengths:
            raise BadRequest(400, "both Transfer-Encoding and Content-Length")
        codings = [c.strip().lower() for value in encodings for c in value.split(",") if c.strip()]
        if codings != ["chunked"]:
            raise BadRequest(400, "unsupported Transfer-Encoding (only chunked)")
        return _read_chunked(rfile)
    if not lengths:
        return b""
    if len({value.strip() for value in lengths}) != 1:
        raise BadRequest(400, "conflicting Content-Length headers")
    length = ascii_int(lengths[0], max_digits=18)
    if length is None:
        raise BadRequest(400, "invalid Content-Length")
    if length > MAX_BODY_BYTES:
        raise BadRequest(413, "request entity too large")
    return _read_exactly(rfile, length)


def _read_exactly(rfile: io.BufferedIOBase, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) < size:
        raise ConnectionError("the client closed the connection mid-body")
    return data


def _read_chunked(rfile: io.BufferedIOBase) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(MAX_CHUNK_LINE)
        if not line.endswith(b"\n"):
            if len(line) < MAX_CHUNK_LINE:
                raise ConnectionError("the client closed the connection mid-body")
            raise BadRequest(400, "chunk size line too long")
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
            raise BadRequest(400, "invalid chunk size")
        size = int(size_text, 16)
        if size == 0:
            _skip_trailers(rfile)
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise BadRequest(413, "request entity too large")
        chunks.append(_read_exactly(rfile, size))
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BadRequest(400, "chunk data not followed by CRLF")


def _skip_trailers(rfile: io.BufferedIOBase) -> None:
    for _ in range(MAX_TRAILERS):
        line = rfile.readline(MAX_CHUNK_LINE)
        if line in (b"\r\n", b"\n"):
            return
        if not line.endswith(b"\n"):
            raise BadRequest(400, "invalid chunked trailer")
    raise BadRequest(400, "too many chunked trailers")
