"""Canonical ID sets, ids_hash, and tiling asset x point pairs into the fewest requests."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from enos_pulumi.enos.errors import InvalidIdsError
from enos_pulumi.enos.ids import Batch, JoinedIds, Tiling, canonical_ids, ids_hash, join_range, plan_tiling

# IDs as users write them: no comma, no control character, no surrounding whitespace, never empty.
ID = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=","),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)
IDS = st.lists(ID, min_size=1, max_size=20)
# Surrounding whitespace users paste: spaces, tabs, line breaks (e.g. a string read from a file), NBSP.
PADDING = st.text(alphabet=" \t\r\n\u00a0\u2003", max_size=3)


def reference_canonical(ids: list[str]) -> tuple[str, ...]:
    return tuple(sorted(set(ids)))


# -- canonical_ids -------------------------------------------------------------------------------------------


@given(IDS)
def test_canonical_is_the_sorted_set(ids: list[str]) -> None:
    assert canonical_ids(ids, "asset_ids") == reference_canonical(ids)


@given(IDS)
def test_canonical_is_idempotent(ids: list[str]) -> None:
    once = canonical_ids(ids, "asset_ids")
    assert canonical_ids(list(once), "asset_ids") == once
    assert canonical_ids(",".join(once), "asset_ids") == once


@given(IDS, st.data())
def test_canonical_ignores_order_and_duplicates(ids: list[str], data: st.DataObject) -> None:
    extra = data.draw(st.lists(st.sampled_from(ids), max_size=10))
    shuffled = data.draw(st.permutations(ids + extra))
    assert canonical_ids(shuffled, "point_ids") == canonical_ids(ids, "point_ids")


@given(IDS, st.data())
def test_canonical_strips_surrounding_whitespace(ids: list[str], data: st.DataObject) -> None:
    padded = [data.draw(PADDING) + i + data.draw(PADDING) for i in ids]
    assert canonical_ids(padded, "asset_ids") == reference_canonical(ids)
    assert canonical_ids(",".join(padded), "asset_ids") == reference_canonical(ids)


@given(IDS)
def test_list_and_comma_string_forms_agree(ids: list[str]) -> None:
    assert canonical_ids(",".join(ids), "asset_ids") == canonical_ids(ids, "asset_ids")
    assert canonical_ids(tuple(ids), "asset_ids") == canonical_ids(ids, "asset_ids")


def test_canonical_examples() -> None:
    assert canonical_ids(" inv02 , inv01,inv02 ", "asset_ids") == ("inv01", "inv02")
    assert canonical_ids(["INV.Temp", "INV.GenActivePW", "INV.Temp "], "point_ids") == (
        "INV.GenActivePW",
        "INV.Temp",
    )
    # Code-point order: uppercase before lowercase, digits before letters.
    assert canonical_ids(["b", "B", "a", "1"], "asset_ids") == ("1", "B", "a", "b")
    assert canonical_ids("a,b\n", "asset_ids") == ("a", "b")
    # Whitespace inside an ID is part of the ID.
    assert canonical_ids(["a b"], "asset_ids") == ("a b",)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([], "is empty"),
        ((), "is empty"),
        ("", "is empty"),
        ("   ", "is empty"),
        ([" "], "is empty"),
        (["a", "  "], "item 1 is an empty ID"),
        (["", "a"], "item 0 is an empty ID"),
        ("a,,b", "position 2 of the comma-separated string is an empty ID"),
        ("a, ,b", "position 2 of the comma-separated string is an empty ID"),
        ("a,b,", "position 3 of the comma-separated string is an empty ID"),
        (",a", "position 1 of the comma-separated string is an empty ID"),
        (["a", "b,c"], "item 1 'b,c' contains a comma"),
        ([","], "item 0 ',' contains a comma"),
        ([1], "item 0 is number 1;"),
        ([5.0], "item 0 is number 5;"),  # how Pulumi delivers an integer 5
        ([2.5], "item 0 is number 2.5;"),
        ([True], "item 0 is boolean true;"),
        (["a", None], "item 1 is null;"),
        (["a", b"b"], "item 1 is bytes"),
        ({"a": 1}, "got an object"),
        ({"a"}, "got set"),
        (None, "got null"),
        (42, "got number 42"),
        ("a\x00b", "control character '\\x00'"),
        (["ok", "bad\x07id"], "control character '\\x07'"),
        (["a\nb"], "control character '\\n'"),
        ("x,y\tz", "control character '\\t'"),
        (["a\x7f"], "control character '\\x7f'"),
    ],
)
@pytest.mark.parametrize("input_name", ["asset_ids", "point_ids"])
def test_bad_inputs_name_the_input(value: Any, fragment: str, input_name: str) -> None:
    with pytest.raises(InvalidIdsError) as info:
        canonical_ids(value, input_name)
    assert info.value.input_name == input_name
    assert str(info.value).startswith(f"{input_name}: ")
    assert fragment in str(info.value)


@given(IDS, st.integers(min_value=0, max_value=19))
def test_an_empty_item_anywhere_is_reported_at_its_index(ids: list[str], where: int) -> None:
    where = min(where, len(ids))
    with pytest.raises(InvalidIdsError, match=f"item {where} is an empty ID"):
        canonical_ids([*ids[:where], " ", *ids[where:]], "asset_ids")


@given(IDS, st.integers(min_value=0, max_value=19))
def test_an_item_with_a_comma_is_reported_at_its_index(ids: list[str], where: int) -> None:
    where = min(where, len(ids) - 1)
    bad = [*ids[:where], ids[where] + ",x", *ids[where + 1 :]]
    with pytest.raises(InvalidIdsError, match=f"item {where} .* contains a comma"):
        canonical_ids(bad, "point_ids")


def test_a_large_set_is_canonicalized() -> None:
    ids = [f"p{i:07d}" for i in range(200_000)]
    assert canonical_ids(list(reversed(ids)) + ids[:10], "point_ids") == tuple(ids)


# -- ids_hash ------------------------------------------------------------------------------------------------


def reference_hash(assets: tuple[str, ...], points: tuple[str, ...]) -> str:
    # The stored format (every stack's state holds it): changing it would reset every stack on upgrade.
    text = "enos-ids/v1\nassets:" + ",".join(assets) + "\npoints:" + ",".join(points)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_ids_hash_format_is_pinned() -> None:
    assets = canonical_ids(["inv02", "inv01"], "asset_ids")
    points = canonical_ids("INV.Temp,INV.GenActivePW", "point_ids")
    digest = ids_hash(assets, points)
    assert digest == reference_hash(("inv01", "inv02"), ("INV.GenActivePW", "INV.Temp"))
    assert len(digest) == 64
    assert digest == digest.lower()
    int(digest, 16)


@given(IDS, IDS, st.data())
def test_ids_hash_is_stable_across_reorder_duplicates_and_form(
    assets: list[str], points: list[str], data: st.DataObject
) -> None:
    base = ids_hash(canonical_ids(assets, "asset_ids"), canonical_ids(points, "point_ids"))
    assets2 = data.draw(st.permutations(assets + assets[:2]))
    points2 = data.draw(st.permutations(points + points[-1:]))
    assert (
        ids_hash(canonical_ids(assets2, "asset_ids"), canonical_ids(",".join(points2), "point_ids")) == base
    )
    assert base == reference_hash(reference_canonical(assets), reference_canonical(points))


@given(IDS, IDS, ID)
def test_ids_hash_changes_when_a_set_changes(assets: list[str], points: list[str], new: str) -> None:
    a = canonical_ids(assets, "asset_ids")
    p = canonical_ids(points, "point_ids")
    base = ids_hash(a, p)
    if new not in a:
        assert ids_hash(canonical_ids([*a, new], "asset_ids"), p) != base
    if new not in p:
        assert ids_hash(a, canonical_ids([*p, new], "point_ids")) != base
    if len(a) > 1:
        assert ids_hash(a[1:], p) != base


@given(IDS, IDS, ID)
def test_ids_hash_changes_when_an_id_moves_between_the_sets(
    assets: list[str], points: list[str], moved: str
) -> None:
    assume(moved not in assets and moved not in points)
    in_assets = ids_hash(canonical_ids([*assets, moved], "asset_ids"), canonical_ids(points, "point_ids"))
    in_points = ids_hash(canonical_ids(assets, "asset_ids"), canonical_ids([*points, moved], "point_ids"))
    assert in_assets != in_points


@given(IDS, IDS)
def test_ids_hash_tells_assets_from_points(assets: list[str], points: list[str]) -> None:
    a = canonical_ids(assets, "asset_ids")
    p = canonical_ids(points, "point_ids")
    assume(a != p)
    assert ids_hash(a, p) != ids_hash(p, a)


def test_ids_hash_examples_that_a_naive_join_would_confuse() -> None:
    assert ids_hash(("a", "b"), ("c",)) != ids_hash(("a",), ("b", "c"))
    assert ids_hash(("ab",), ("c",)) != ids_hash(("a",), ("bc",))


# -- tiling --------------------------------------------------------------------------------------------------


def brute_force_minimum(assets: int, points: int, limit: int) -> int:
    """Fewest requests over every grid: ka asset runs x kp point runs, each request <= limit pairs."""
    return min(
        ka * kp
        for ka in range(1, assets + 1)
        for kp in range(1, points + 1)
        if math.ceil(assets / ka) * math.ceil(points / kp) <= limit
    )


def kp_minimum(assets: int, points: int, limit: int) -> int:
    """The same minimum by trying every number of point runs (the issue's formulation)."""
    best = None
    for kp in range(1, points + 1):
        longest = math.ceil(points / kp)
        per_request = limit // longest
        if per_request == 0:
            continue
        ka = math.ceil(assets / per_request)
        best = ka * kp if best is None else min(best, ka * kp)
    assert best is not None
    return best


def covered(batches: list[Batch]) -> Counter[tuple[int, int]]:
    return Counter((a, p) for b in batches for a in range(b.a0, b.a1) for p in range(b.p0, b.p1))


SMALL = st.integers(min_value=1, max_value=30)


@given(SMALL, SMALL, st.integers(min_value=1, max_value=1000))
def test_tiling_covers_every_pair_exactly_once_within_the_limit(assets: int, points: int, limit: int) -> None:
    tiling = plan_tiling(assets, points, limit)
    batches = list(tiling.batches())
    seen = covered(batches)
    assert set(seen) == {(a, p) for a in range(assets) for p in range(points)}
    assert max(seen.values()) == 1
    assert all(b.asset_count >= 1 and b.point_count >= 1 for b in batches)
    assert all(b.pairs <= limit for b in batches)
    assert len(batches) == tiling.request_count


@given(SMALL, SMALL, st.integers(min_value=1, max_value=1000))
def test_tiling_uses_the_fewest_requests_of_any_grid(assets: int, points: int, limit: int) -> None:
    count = plan_tiling(assets, points, limit).request_count
    assert count == brute_force_minimum(assets, points, limit)
    assert count == kp_minimum(assets, points, limit)
    assert count >= math.ceil(assets * points / limit)


@given(
    st.integers(min_value=1, max_value=1_000_000),
    st.integers(min_value=1, max_value=2_000),
    st.integers(min_value=1, max_value=100_000),
)
def test_large_tilings_are_minimal_and_within_the_limit(assets: int, points: int, limit: int) -> None:
    tiling = plan_tiling(assets, points, limit)
    assert tiling.request_count == kp_minimum(assets, points, limit)
    assert tiling.request_count >= math.ceil(assets * points / limit)
    # The longest runs of the grid still fit the limit.
    assert math.ceil(assets / tiling.asset_chunks) * math.ceil(points / tiling.point_chunks) <= limit
    assert 1 <= tiling.asset_chunks <= assets
    assert 1 <= tiling.point_chunks <= points


def test_one_asset_and_a_million_points_take_ten_requests() -> None:
    tiling = plan_tiling(1, 1_000_000, 100_000)
    batches = list(tiling.batches())
    assert tiling.request_count == 10
    assert [(b.asset_count, b.point_count) for b in batches] == [(1, 100_000)] * 10
    assert sum(b.pairs for b in batches) == 1_000_000


def test_a_thousand_by_a_thousand_takes_ten_requests() -> None:
    tiling = plan_tiling(1_000, 1_000, 100_000)
    batches = list(tiling.batches())
    assert tiling.request_count == 10
    assert all(b.pairs <= 100_000 for b in batches)
    assert sum(b.pairs for b in batches) == 1_000_000


@pytest.mark.parametrize(
    ("assets", "points", "limit", "requests"),
    [
        (1, 1, 1, 1),
        (5, 5, 100, 1),  # everything fits one request
        (1, 100_001, 100_000, 2),
        (100_001, 1, 100_000, 2),
        (3, 5, 4, 5),  # 3 assets x 1 point each: ceil(15 / 4) = 4 requests cannot be reached
        (7, 30_000, 100_000, 3),
        (400, 400, 100_000, 2),
    ],
)
def test_tiling_examples(assets: int, points: int, limit: int, requests: int) -> None:
    assert kp_minimum(assets, points, limit) == requests
    assert plan_tiling(assets, points, limit).request_count == requests


@pytest.mark.parametrize(("assets", "points", "limit"), [(0, 1, 1), (1, 0, 1), (1, 1, 0), (-1, 5, 5)])
def test_tiling_rejects_empty_sets_and_a_zero_limit(assets: int, points: int, limit: int) -> None:
    with pytest.raises(ValueError):
        plan_tiling(assets, points, limit)


def test_tiling_runs_differ_by_at_most_one() -> None:
    batches = list(Tiling(10, 7, 3, 2).batches())
    assert sorted({b.asset_count for b in batches}) == [3, 4]
    assert sorted({b.point_count for b in batches}) == [3, 4]
    assert [(b.a0, b.a1) for b in batches[::2]] == [(0, 4), (4, 7), (7, 10)]


# -- Batch.split ---------------------------------------------------------------------------------------------


@given(st.integers(0, 50), st.integers(1, 40), st.integers(0, 50), st.integers(1, 40))
def test_split_halves_the_larger_side_and_covers_the_same_pairs(a0: int, na: int, p0: int, np_: int) -> None:
    batch = Batch(a0, a0 + na, p0, p0 + np_)
    assume(batch.pairs > 1)
    first, second = batch.split()
    assert covered([first, second]) == covered([batch])
    assert first.pairs + second.pairs == batch.pairs
    assert first.pairs >= 1 and second.pairs >= 1
    if na >= np_:
        assert (first.p0, first.p1) == (second.p0, second.p1) == (batch.p0, batch.p1)
        assert sorted([first.asset_count, second.asset_count]) == [na // 2, na - na // 2]
    else:
        assert (first.a0, first.a1) == (second.a0, second.a1) == (batch.a0, batch.a1)
        assert sorted([first.point_count, second.point_count]) == [np_ // 2, np_ - np_ // 2]


def test_split_examples() -> None:
    assert Batch(0, 1, 0, 100_000).split() == (Batch(0, 1, 0, 50_000), Batch(0, 1, 50_000, 100_000))
    assert Batch(2, 7, 0, 3).split() == (Batch(2, 4, 0, 3), Batch(4, 7, 0, 3))


def test_a_single_pair_cannot_be_split() -> None:
    with pytest.raises(ValueError):
        Batch(3, 4, 5, 6).split()


# -- JoinedIds / join_range ----------------------------------------------------------------------------


@given(st.lists(st.text(alphabet="abcXYZ019.-_", min_size=1, max_size=6), min_size=1, max_size=30))
def test_joined_ids_behaves_like_the_split_list(ids: list[str]) -> None:
    joined = JoinedIds(",".join(ids))
    assert len(joined) == len(ids)
    assert list(joined) == ids
    assert joined[0] == ids[0] and joined[-1] == ids[-1]
    assert list(joined[1:3]) == ids[1:3]


@given(
    st.lists(st.text(alphabet="abc019", min_size=1, max_size=4), min_size=1, max_size=20),
    st.data(),
)
def test_join_range_matches_joining_the_slice(ids: list[str], data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(ids) - 1))
    stop = data.draw(st.integers(start + 1, len(ids)))
    expected = ",".join(ids[start:stop])
    assert join_range(ids, start, stop) == expected
    assert join_range(JoinedIds(",".join(ids)), start, stop) == expected


def test_a_whole_axis_is_sent_as_the_stored_string_without_splitting_it() -> None:
    joined = JoinedIds("p1,p2,p3")
    assert join_range(joined, 0, 3) is joined.joined
    assert joined._items is None  # never split
    assert join_range(joined, 1, 3) == "p2,p3"
    assert joined._items == ["p1", "p2", "p3"]


def test_joined_ids_split_once_when_parallel_workers_ask_together() -> None:
    # Each worker's own split would be a full copy of every ID (tens of MB for a million IDs).
    import threading

    joined = JoinedIds(",".join(f"id{i}" for i in range(200_000)))
    seen: list[int] = []
    start = threading.Barrier(4)

    def work() -> None:
        start.wait()
        joined[0:1]  # what a batch worker does first
        seen.append(id(joined._split()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
