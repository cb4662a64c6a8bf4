"""Canonical ID sets, their hash, and tiling assets x points into the fewest requests.

A canonical set is the IDs with surrounding whitespace stripped, duplicates dropped, sorted. IDs are
sent to EnOS comma-joined, so an ID may not contain a comma; it may not contain control characters
either, nor be longer than 256 characters, which keeps the hash input unambiguous and catches pasted
garbage early.

Sets may hold a million IDs: the hot paths stay in C (str.join/split, set, sorted, one regex scan).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from .errors import InvalidIdsError
from .quoting import PLAIN, Show, describe_value

__all__ = [
    "MAX_ID_LENGTH",
    "Batch",
    "JoinedIds",
    "Tiling",
    "canonical_ids",
    "describe_value",
    "ids_hash",
    "ids_hash_joined",
    "join_range",
    "name_problem",
    "plan_tiling",
]

#: C0 and C1 control characters, DEL, and the Unicode line and paragraph separators: never part of an ID.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: The longest ID, pipeline ID or stage instance name taken: EnOS IDs are a few dozen characters at most;
#: anything longer is pasted text, not an ID.
MAX_ID_LENGTH = 256


def name_problem(value: str, show: Show = PLAIN) -> str | None:
    """What is wrong with one name or ID (already stripped), or None: a control character, or a length
    over :data:`MAX_ID_LENGTH`. Parts of ``value`` are quoted through ``show``."""
    control = _CONTROL.search(value)
    if control is not None:
        return _control_problem(value, control, show)
    if len(value) > MAX_ID_LENGTH:
        return f"is {len(value):,} characters long; at most {MAX_ID_LENGTH} are taken ({show(value[:40])}...)"
    return None


def _control_problem(value: str, control: re.Match[str], show: Show) -> str:
    near = value[max(control.start() - 20, 0) : control.end() + 20]
    return f"contains the control character {show(control.group())} (near {show(near)}); remove it"


def _first_non_string(items: Sequence[Any]) -> tuple[int, Any]:
    return next((i, x) for i, x in enumerate(items) if not isinstance(x, str))


def _check_lengths(joined: str, parts: Sequence[str], input_name: str, show: Show) -> None:
    if len(joined) > MAX_ID_LENGTH and max(map(len, parts)) > MAX_ID_LENGTH:
        # One C-speed pass finds whether any ID may be too long; the slower search runs only then.
        long = next((p.strip() for p in parts if len(p.strip()) > MAX_ID_LENGTH), None)
        if long is not None:
            raise InvalidIdsError(input_name, f"an ID {name_problem(long, show)}")


def canonical_ids(value: Any, input_name: str, show: Show = PLAIN) -> tuple[str, ...]:
    """Canonicalize a list of IDs or one comma-separated string; raise :class:`InvalidIdsError`.

    ``input_name`` (e.g. ``"asset_ids"``) is named in every error so the user knows what to fix; a bad
    ID is quoted through ``show``.
    """
    if isinstance(value, str):
        joined = value
        count = None
    elif isinstance(value, (list, tuple)):
        try:
            joined = ",".join(value)
        except TypeError:
            index, bad = _first_non_string(value)
            raise InvalidIdsError(
                input_name,
                f"item {index} is {describe_value(bad, show)}; every ID must be a string",
            ) from None
        count = len(value)
    else:
        raise InvalidIdsError(
            input_name,
            f"expected a list of ID strings or one comma-separated string, got {describe_value(value, show)}",
        )
    if count == 0:
        raise InvalidIdsError(input_name, "is empty; give at least one ID")
    # A list is used as it is: splitting the joined string again would build a second copy of every ID.
    parts: Sequence[str] = joined.split(",") if count is None else value
    if count is not None and joined.count(",") != count - 1:
        index, bad = next((i, x) for i, x in enumerate(value) if "," in x)
        raise InvalidIdsError(
            input_name,
            f"item {index} {show(bad)} contains a comma; give one ID per list item "
            f"(IDs are sent comma-separated, so an ID cannot contain one)",
        )
    if _CONTROL.search(joined) is not None:
        # Surrounding whitespace (a tab, a trailing newline from a file) is stripped like spaces; only a
        # control character inside an ID is an error. This slower scan runs only when one was found.
        for part in parts:
            inner = part.strip()
            control = _CONTROL.search(inner)
            if control is not None:
                raise InvalidIdsError(input_name, f"an ID {_control_problem(inner, control, show)}")
    _check_lengths(joined, parts, input_name, show)
    unique = set(map(str.strip, parts))
    if "" in unique:
        if count == 0 or not joined.strip():
            raise InvalidIdsError(input_name, "is empty; give at least one ID")
        stripped = [part.strip() for part in parts]
        index = stripped.index("")
        where = (
            f"item {index}" if count is not None else f"position {index + 1} of the comma-separated string"
        )
        raise InvalidIdsError(input_name, f"{where} is an empty ID; remove it or fill it in")
    return tuple(sorted(unique))


def ids_hash(assets: Sequence[str], points: Sequence[str]) -> str:
    """Hex SHA-256 identifying a pair of canonical sets (canonicalize first: the hash is order-sensitive)."""
    return ids_hash_joined(",".join(assets), ",".join(points))


def ids_hash_joined(assets: str, points: str) -> str:
    """:func:`ids_hash` of canonical sets given comma-joined (saves re-joining a million IDs).

    Commas and control characters cannot occur inside IDs, so the encoding below is unambiguous.
    """
    digest = hashlib.sha256(b"enos-ids/v1\nassets:")
    digest.update(assets.encode())
    digest.update(b"\npoints:")
    digest.update(points.encode())
    return digest.hexdigest()


class JoinedIds(Sequence[str]):
    """Canonical IDs kept as the comma-joined string they are stored and sent as; split on first need.

    A request that covers every ID of an axis sends the string as it is (see :func:`join_range`), so a
    reset of 1 asset x 100,000 points never builds 100,000 point strings only to join them again.
    """

    __slots__ = ("_items", "_len", "_lock", "joined")

    def __init__(self, joined: str) -> None:
        self.joined = joined
        self._len = joined.count(",") + 1
        self._items: list[str] | None = None
        self._lock = threading.Lock()

    def _split(self) -> list[str]:
        # Parallel batch workers ask at once: one split, not one 60 MB copy per worker.
        with self._lock:
            if self._items is None:
                self._items = self.joined.split(",")
            return self._items

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._split()[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._split())

    def __repr__(self) -> str:
        return f"JoinedIds(<{self._len} IDs>)"


def join_range(ids: Sequence[str], start: int, stop: int) -> str:
    """IDs ``[start, stop)`` comma-joined, without splitting a :class:`JoinedIds` that is used whole."""
    if isinstance(ids, JoinedIds) and start == 0 and stop == len(ids):
        return ids.joined
    return ",".join(ids[start:stop])


@dataclass(frozen=True)
class Batch:
    """One request's share: asset indexes [a0, a1) x point indexes [p0, p1) of the canonical sets."""

    a0: int
    a1: int
    p0: int
    p1: int

    @property
    def asset_count(self) -> int:
        return self.a1 - self.a0

    @property
    def point_count(self) -> int:
        return self.p1 - self.p0

    @property
    def pairs(self) -> int:
        return self.asset_count * self.point_count

    def split(self) -> tuple[Batch, Batch]:
        """Halve the larger side (used when EnOS still answers 61105 for this batch)."""
        if self.pairs <= 1:
            raise ValueError("a single pair cannot be split")
        if self.asset_count >= self.point_count:
            mid = self.a0 + self.asset_count // 2
            return Batch(self.a0, mid, self.p0, self.p1), Batch(mid, self.a1, self.p0, self.p1)
        mid = self.p0 + self.point_count // 2
        return Batch(self.a0, self.a1, self.p0, mid), Batch(self.a0, self.a1, mid, self.p1)


@dataclass(frozen=True)
class Tiling:
    """A grid: assets cut into ``asset_chunks`` near-equal runs, points into ``point_chunks``."""

    asset_count: int
    point_count: int
    asset_chunks: int
    point_chunks: int

    @property
    def request_count(self) -> int:
        return self.asset_chunks * self.point_chunks

    def batches(self) -> Iterator[Batch]:
        for a0, a1 in _runs(self.asset_count, self.asset_chunks):
            for p0, p1 in _runs(self.point_count, self.point_chunks):
                yield Batch(a0, a1, p0, p1)


def _runs(n: int, chunks: int) -> Iterator[tuple[int, int]]:
    """``n`` items cut into ``chunks`` runs whose sizes differ by at most one."""
    size, extra = divmod(n, chunks)
    start = 0
    for i in range(chunks):
        end = start + size + (1 if i < extra else 0)
        yield start, end
        start = end


def plan_tiling(asset_count: int, point_count: int, limit: int) -> Tiling:
    """The grid with the fewest requests such that every request has assets x points <= ``limit``.

    A request names a set of assets and a set of points and covers their cross product, so a plan is a
    grid: ``ka`` asset runs x ``kp`` point runs, each run at most ``ceil(n/k)`` long. For each distinct
    point-run length ``q`` (there are O(sqrt(points)) of them) the fewest asset runs follow directly;
    the best over all ``q`` is the minimum over all grids.
    """
    if asset_count < 1 or point_count < 1:
        raise ValueError("both ID sets must be non-empty")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    best: tuple[int, int, int] | None = None  # (requests, asset_chunks, point_chunks)
    floor = -(-asset_count * point_count // limit)  # ceil, in exact integers
    kp = 1
    while kp <= point_count:
        q = math.ceil(point_count / kp)  # longest point run with kp runs
        if q <= limit:
            per_request_assets = limit // q
            ka = math.ceil(asset_count / per_request_assets)
            candidate = (ka * kp, ka, kp)
            # Ties go to fewer point runs: each request then names more points per asset, and the
            # asset runs are what the grid repeats.
            if best is None or candidate[0] < best[0]:
                best = candidate
                if best[0] == floor:
                    break  # no grid can beat ceil(pairs / limit)
        # Jump to the smallest kp that gives a shorter run length.
        if q == 1:
            break
        kp = math.ceil(point_count / (q - 1))
    assert best is not None  # kp == point_count gives q == 1 <= limit
    return Tiling(asset_count, point_count, best[1], best[2])
