"""Figure g: what registering a big ID list costs a program (the Pulumi SDK's serialization).

A program's ``StageStateReset(..., asset_ids=ids)`` is registered under Pulumi's mock runtime (an in-process
resource monitor: no gRPC hop, which would add the same cost to every form). Compared: a list of 1,000,000
IDs (joined by the resource before it is registered), the same IDs as a string the program builds itself
(``",".join(ids)``: the baseline, what a user would otherwise write), a string the program already has
(read from a file), and the list as the SDK registered it before the join (informational).
"""

from __future__ import annotations

import functools
from typing import Any

from .common import Case, Result, asset_ids, fmt_s, interleaved, log, median, spread

REGISTER_TARGET = 1.2


def _register(assets: Any, *, join: bool = False, raw: bool = False) -> None:
    import pulumi
    from pulumi.runtime import mocks

    from enos_pulumi import StageStateReset
    from enos_pulumi import resource as resource_module
    from enos_pulumi.testing import reset_pulumi_runtime

    class Outputs(mocks.Mocks):
        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            return "reset-1", {"ids_hash": "0" * 64, "asset_count": 1, "request_count": 1}

        def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            return {}, None

    reset_pulumi_runtime()
    mocks.set_mocks(Outputs(), project="enos-bench", stack="bench", preview=False)
    compact = resource_module._compact_ids
    if raw:  # the SDK's cost for the list as such: the join switched off
        resource_module._compact_ids = lambda value: value  # type: ignore[assignment]
    try:

        @pulumi.runtime.test  # type: ignore[misc]
        def program() -> Any:
            ids = ",".join(assets) if join else assets
            reset = StageStateReset(
                "reset",
                org_id="o-bench",
                pipeline_id="pl-bench",
                stage_instance_name="FixedTimeWindowAggregator_1",
                asset_ids=ids,
                point_ids=["INV.Temp"],
            )
            return reset.urn

        program()
    finally:
        resource_module._compact_ids = compact
        reset_pulumi_runtime()


def figure_g(quick: bool) -> list[Result]:
    count, samples = (100_000, 5) if quick else (1_000_000, 7)
    ids = asset_ids(count)
    joined = ",".join(ids)
    cases = [
        Case("list", functools.partial(_register, ids)),
        Case("string built", functools.partial(_register, ids, join=True)),
        Case("string at hand", functools.partial(_register, joined)),
    ]
    for case in cases:
        case.run()  # warm-up
    times = interleaved(cases, samples)
    raw_samples = 1 if not quick else 2
    raw = interleaved([Case("raw list", functools.partial(_register, ids, raw=True))], raw_samples)
    base = median(times["string built"])
    results = []
    rows = [
        ("list", times["list"], f"<= {REGISTER_TARGET}x", True),
        ("string at hand", times["string at hand"], "info", False),
        ("raw list", raw["raw list"], "info", False),
    ]
    what = f"registering {count:,} IDs"
    titles = {
        "list": f"{what} given as a list (joined by the resource) vs a string the program joins",
        "string at hand": f"{what} as a string the program already has, vs one it joins",
        "raw list": f"{what} as a list without the resource's join (before), vs a joined string",
    }
    for name, sample, target, judged in rows:
        ours = median(sample)
        ratio = ours / base
        log(f"  g: {name}: {fmt_s(ours)} vs string built {fmt_s(base)} -> {ratio:.2f}x")
        results.append(
            Result(
                figure="g",
                title=titles[name],
                value=ratio,
                unit="x",
                target=target,
                passed=ratio <= REGISTER_TARGET if judged else None,
                detail=(
                    f"{fmt_s(ours)} (range {spread(sample)}) vs {fmt_s(base)} "
                    f"(range {spread(times['string built'])}), median of {len(sample)}; "
                    "Pulumi's mock runtime, in-process monitor"
                    + ("; --quick measures 100k instead of 1M" if quick else "")
                ),
                data={"ids": count, "form": name, "seconds": sample, "baseline_s": times["string built"]},
            )
        )
    return results
