"""Figures a (check + diff versus ID count, in process) and d (peak memory for 1M IDs)."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import io
import statistics
import sys
import tracemalloc
from collections.abc import Sequence
from typing import Any

from enos_pulumi.enos.ids import canonical_ids, ids_hash
from enos_pulumi.provider import StageStateResetProvider

from .common import (
    ORG_ID,
    PIPELINE_ID,
    POINTS,
    STAGE,
    Case,
    Result,
    asset_ids,
    calibrate,
    enos_environment,
    fmt_s,
    interleaved,
    log,
    make_ids,
    median,
    resource_inputs,
    simulator_process,
    spread,
)

CHECK_DIFF_TARGET = 1.5
MEMORY_TARGET = 4.0


def baseline_canonical_hash(assets: Sequence[str], points: Sequence[str]) -> str:
    """The bare minimum: canonicalize both sets with the standard library and hash the joined result."""
    canonical_assets = sorted(set(s.strip() for s in assets))
    canonical_points = sorted(set(s.strip() for s in points))
    digest = hashlib.sha256(",".join(canonical_assets).encode())
    digest.update(b"\n")
    digest.update(",".join(canonical_points).encode())
    return digest.hexdigest()


def stored_outputs(assets: Sequence[str], points: Sequence[str]) -> dict[str, Any]:
    """The outputs a previous reset of the same sets left in state (so the diff finds no change)."""
    return {
        "org_id": ORG_ID,
        "pipeline_id": PIPELINE_ID,
        "stage_instance_name": STAGE,
        "trigger": "release-1",
        "ids_hash": ids_hash(canonical_ids(assets, "asset_ids"), canonical_ids(points, "point_ids")),
        "asset_count": len(set(assets)),
        "point_count": len(points),
    }


def check_then_diff(
    provider: StageStateResetProvider, news: dict[str, Any], olds: dict[str, Any]
) -> dict[str, Any]:
    """What a preview or an up runs for an unchanged resource: check, then diff (which finds nothing)."""
    checked = provider.check({}, news)
    if checked.failures:
        raise AssertionError(f"unexpected check failures: {checked.failures}")
    inputs = dict(checked.inputs or {})
    diff = provider.diff("reset-1", olds, inputs)
    if diff.changes:
        raise AssertionError("diff reported a change for unchanged IDs")
    return inputs


def figure_a(quick: bool) -> list[Result]:
    sizes = {1_000: 7, 100_000: 7} if quick else {1_000: 7, 100_000: 7, 1_000_000: 5}
    target_size = max(sizes)
    provider = StageStateResetProvider()
    results = []
    for count, samples in sizes.items():
        ids = asset_ids(count)
        news = resource_inputs(ids)
        olds = stored_outputs(ids, POINTS)
        cases = [
            Case("provider", functools.partial(check_then_diff, provider, news, olds)),
            Case("baseline", functools.partial(baseline_canonical_hash, ids, POINTS)),
        ]
        inner = calibrate(cases[1], 0.2)
        times = interleaved(cases, samples, inner)
        ours, base = median(times["provider"]), median(times["baseline"])
        ratio = ours / base
        at_target = count == target_size
        log(f"  a: {count:>9,} IDs: check+diff {fmt_s(ours)}, stdlib {fmt_s(base)} -> {ratio:.2f}x")
        results.append(
            Result(
                figure="a",
                title=f"check+diff, {count:,} asset IDs (list) + 10 points vs stdlib canonicalize+sha256",
                value=ratio,
                unit="x",
                target=f"<= {CHECK_DIFF_TARGET}x" if at_target else "info",
                passed=ratio <= CHECK_DIFF_TARGET if at_target else None,
                detail=(
                    f"provider {fmt_s(ours)} (range {spread(times['provider'])}), "
                    f"stdlib {fmt_s(base)} (range {spread(times['baseline'])}); "
                    f"median of {samples} x {inner} call(s)"
                    + ("; --quick measures 100k instead of 1M" if quick and at_target else "")
                ),
                data={
                    "ids": count,
                    "samples": samples,
                    "inner": inner,
                    "provider_s": times["provider"],
                    "baseline_s": times["baseline"],
                },
            )
        )
    return results


# -- d: memory ------------------------------------------------------------------------------------------


def _traced_reset(
    provider: StageStateResetProvider, news: dict[str, Any], olds: dict[str, Any]
) -> dict[str, int]:
    """check -> diff -> create (the reset: every request body built, signed and sent), traced.

    Returns the overall peak and each stage's peak and what stayed allocated after it, in bytes.
    """
    gc.collect()
    tracemalloc.start()
    try:
        out: dict[str, int] = {}
        checked = provider.check({}, news)
        out["check_current"], out["check_peak"] = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        diff = provider.diff("reset-1", olds, dict(checked.inputs or {}))
        out["diff_current"], out["diff_peak"] = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        if not diff.changes:
            raise AssertionError("diff should report changed IDs")
        with contextlib.redirect_stderr(io.StringIO()):  # the provider's progress lines
            created = provider.create(dict(checked.inputs or {}))
        out["create_current"], out["create_peak"] = tracemalloc.get_traced_memory()
        out["requests"] = int(created.outs["request_count"]) if created.outs else 0
    finally:
        tracemalloc.stop()
    out["peak"] = max(out["check_peak"], out["diff_peak"], out["create_peak"])
    return out


def figure_d(quick: bool) -> list[Result]:
    count, runs = (100_000, 1) if quick else (1_000_000, 3)
    ids = asset_ids(count)
    strings = [*ids, *POINTS]
    raw_objects = sum(sys.getsizeof(s) for s in strings)
    raw_utf8 = sum(len(s.encode()) for s in strings)
    provider = StageStateResetProvider()
    news = resource_inputs(ids)
    olds = {**stored_outputs(["other"], POINTS), "ids_hash": "0" * 64}  # the IDs changed: a reset runs
    measured = []
    with simulator_process() as sim, enos_environment(sim.base_url):
        # Warm up outside the trace: imports, the token, pooled sessions for 4 parallel requests.
        with contextlib.redirect_stderr(io.StringIO()):
            warm = provider.check({}, resource_inputs(make_ids(40_000, seed=2))).inputs  # 4 requests
            provider.create(dict(warm or {}))
        for _ in range(runs):
            measured.append(_traced_reset(provider, news, olds))
    peak = statistics.median(m["peak"] for m in measured)
    ratio = peak / raw_objects
    stages = sorted(measured, key=lambda m: m["peak"])[len(measured) // 2]  # the median run
    log(
        f"  d: {count:,} IDs: peak {peak / 2**20:.1f} MiB vs {raw_objects / 2**20:.1f} MiB of str objects "
        f"-> {ratio:.2f}x ({peak / raw_utf8:.1f}x the UTF-8 bytes)"
    )
    mib = 2**20
    return [
        Result(
            figure="d",
            title=f"peak traced memory, check+diff+reset of {count:,} IDs vs size of the ID str objects",
            value=ratio,
            unit="x",
            target=f"<= {MEMORY_TARGET}x",
            passed=ratio <= MEMORY_TARGET,
            detail=(
                f"peak {peak / mib:.1f} MiB (median of {runs}); raw = sum(sys.getsizeof) of the "
                f"{len(strings):,} ID str objects = {raw_objects / mib:.1f} MiB "
                f"(UTF-8 length {raw_utf8 / mib:.1f} MiB: {peak / raw_utf8:.1f}x); per stage peak: "
                f"check {stages['check_peak'] / mib:.1f}, diff {stages['diff_peak'] / mib:.1f}, "
                f"create {stages['create_peak'] / mib:.1f} MiB ({stages['requests']} requests, "
                f"simulator in another process)" + ("; --quick measures 100k instead of 1M" if quick else "")
            ),
            data={
                "ids": count,
                "raw_str_objects_bytes": raw_objects,
                "raw_utf8_bytes": raw_utf8,
                "runs": measured,
            },
        )
    ]
