"""One API request as the client describes it: what is sent, what it is called in errors and progress
lines, its bound, and how much its answer may hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import Deadline

__all__ = ["DEFAULT_MAX_VALUES", "Request"]

#: JSON values an answer may hold unless the operation allows more: parsed JSON takes tens of bytes per
#: value, so a 16 MiB body of ``[{},{},...]`` would take over 400 MB; 100,000 values take a few MB.
DEFAULT_MAX_VALUES = 100_000


@dataclass(frozen=True)
class Request:
    """One API request (its attempts, retries and progress lines are the caller's)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes | None
    #: What we were doing ("Delete Stage State") and to what ("pipeline p1/stage"): errors and progress
    #: lines say so.
    operation: str
    target: str
    #: Fields an API error's hint is worded with (``org_id``, ``pipeline_id``...).
    context: Mapping[str, Any] = field(default_factory=dict)
    #: The total bound of the operation it is part of: neither it nor a retry starts after it.
    until: Deadline | None = None
    #: An answer holding more JSON values than this is refused unparsed (``answers.value_count``).
    max_values: int = DEFAULT_MAX_VALUES
    #: Fields of its progress events (``batch``, ``batches``, ``assets``, ``points``).
    event: Mapping[str, Any] = field(default_factory=dict)
    #: A 61105 or 413 answer to it is reported as a "split": its sender sends it as two.
    splittable: bool = False
    #: It is one half of a request EnOS found too big (its progress lines say so).
    split_part: bool = False
