"""Through Pulumi's real provider host: figure a over gRPC, e (state footprint) and f (tokens and
connections of 50 resets in one host process)."""

from __future__ import annotations

import functools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from enos_pulumi.provider import StageStateResetProvider
from enos_pulumi.testing import DIFF_NONE

from .bench_ids import check_then_diff, stored_outputs
from .common import (
    POINTS,
    Case,
    Result,
    asset_ids,
    fmt_s,
    interleaved,
    log,
    make_ids,
    median,
    resource_inputs,
    spread,
    start_host,
    start_simulator,
    to_struct,
)

CONNECTION_WORKERS = 4  # parallel_requests default
HOST_THREADS = 4  # worker threads of `python -m pulumi.dynamic`
HOST_TARGET = 1.5


def figure_a_grpc(quick: bool) -> list[Result]:
    """Check + Diff RPCs to the host against the provider's own check + diff in process.

    A program that passes a list of more than LIST_FORM_MAX_IDS IDs registers it joined (resource.py), so
    what reaches the host is one string: timed here are that join and the two RPCs. The requests are built
    beforehand (the engine's marshalling is Go, outside this package) and replies left undecoded. The
    same list sent unjoined (what a program paid before the join) is measured for information.
    """
    from pulumi.runtime.proto import provider_pb2

    from enos_pulumi.resource import _compact_ids

    sizes = {100_000: 3} if quick else {100_000: 3, 1_000_000: 3}
    target_size = max(sizes)
    provider = StageStateResetProvider()
    sim = start_simulator()
    hosted = start_host(sim.base_url)
    results = []
    try:
        stub = hosted.host.stub
        urn = hosted.engine.urn("reset-grpc")
        for count, samples in sizes.items():
            ids = asset_ids(count)
            olds = to_struct({**stored_outputs(ids, POINTS), "__provider": hosted.provider})
            cases = [
                Case(
                    "in process",
                    functools.partial(
                        check_then_diff, provider, resource_inputs(ids), stored_outputs(ids, POINTS)
                    ),
                )
            ]
            forms = {"joined": _compact_ids(ids), "raw list": ids}
            sizes_bytes = {}
            for form, registered in forms.items():
                news = {**resource_inputs(registered), "__provider": hosted.provider}
                request = provider_pb2.CheckRequest(urn=urn, olds=to_struct({}), news=to_struct(news))
                sizes_bytes[form] = request.ByteSize()

                def check_diff(
                    request: Any = request, olds: Any = olds, form: str = form, ids: list[str] = ids
                ) -> None:
                    if form == "joined":
                        _compact_ids(ids)  # the program's part
                    reply = stub.Check(request, timeout=600)
                    if reply.failures:
                        raise AssertionError(f"check failed: {reply.failures}")
                    diff = stub.Diff(
                        provider_pb2.DiffRequest(id="reset-1", urn=urn, olds=olds, news=reply.inputs),
                        timeout=600,
                    )
                    if diff.changes != DIFF_NONE:
                        raise AssertionError("diff over gRPC reported a change for unchanged IDs")

                cases.append(Case(form, check_diff))
            cases[1].run()  # warm-up: the host unpickles the provider once
            times = interleaved(cases, samples)
            base = median(times["in process"])
            for form in forms:
                ours = median(times[form])
                ratio = ours / base
                judged = form == "joined" and count == target_size
                log(
                    f"  a/gRPC: {count:>9,} IDs, {form}: {fmt_s(ours)} vs in process {fmt_s(base)} "
                    f"-> {ratio:.2f}x"
                )
                results.append(
                    Result(
                        figure="a",
                        title=(
                            f"check+diff through the provider host, {count:,} IDs given as a list"
                            + (" (joined by the program)" if form == "joined" else ", sent unjoined")
                            + " vs the provider's check+diff in process"
                        ),
                        value=ratio,
                        unit="x",
                        target=f"<= {HOST_TARGET}x" if judged else "info",
                        passed=ratio <= HOST_TARGET if judged else None,
                        detail=(
                            f"join + Check + Diff RPCs {fmt_s(ours)} (range {spread(times[form])}), "
                            f"in process {fmt_s(base)} (range {spread(times['in process'])}), "
                            f"median of {samples}; "
                            f"CheckRequest {sizes_bytes[form]:,} B"
                            + ("; --quick measures 100k instead of 1M" if quick and form == "joined" else "")
                        ),
                        data={
                            "ids": count,
                            "form": form,
                            "rpc_s": times[form],
                            "baseline_s": times["in process"],
                        },
                    )
                )
    finally:
        hosted.stop()
        sim.stop()
    return results


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def figure_e(quick: bool) -> list[Result]:
    counts = (10, 1_000, 100_000)
    sim = start_simulator()
    hosted = start_host(sim.base_url)
    sizes: dict[int, dict[str, Any]] = {}
    try:
        for count in counts:
            name = f"footprint-{count}"
            plan = hosted.engine.up(
                name, {**resource_inputs(asset_ids(count)), "__provider": hosted.provider}
            )
            if plan.op != "create":
                raise AssertionError(f"expected a create, got {plan.op}")
            state = hosted.engine.state[name]
            outputs = state.outputs
            sizes[count] = {
                "inputs": _json_size(state.inputs),
                "outputs": _json_size(outputs),
                "provider": _json_size(hosted.provider),
                "per_key_outputs": {key: _json_size(value) for key, value in sorted(outputs.items())},
                "requests": int(outputs.get("request_count", 0)),
            }
            log(
                f"  e: {count:>7,} IDs: inputs {sizes[count]['inputs']:,} B, "
                f"outputs {sizes[count]['outputs']:,} B ({sizes[count]['requests']} request(s))"
            )
    finally:
        hosted.stop()
        sim.stop()
    small, large = sizes[counts[0]], sizes[counts[-1]]
    growth = large["outputs"] - small["outputs"]
    grown = {
        key: large["per_key_outputs"][key] - small["per_key_outputs"].get(key, 0)
        for key in large["per_key_outputs"]
        if large["per_key_outputs"][key] != small["per_key_outputs"].get(key, 0)
    }
    table = ", ".join(f"{c:,}: {sizes[c]['inputs']:,} / {sizes[c]['outputs']:,}" for c in counts)
    provider_b = small["provider"]
    return [
        Result(
            figure="e",
            title=f"stored outputs per resource, {counts[-1]:,} vs {counts[0]} asset IDs (+10 points)",
            value=large["outputs"],
            unit="B",
            target="constant (growth < 1 KiB)",
            passed=growth < 1024,
            detail=(
                f"outputs grow {growth:+,} B from {counts[0]} to {counts[-1]:,} IDs"
                + (f" ({', '.join(f'{k} {v:+d} B' for k, v in grown.items())})" if grown else "")
                + f"; inputs / outputs B per ID count: {table}; both include the "
                f"{provider_b:,} B __provider; JSON of the testing Engine.state after an up through the host"
            ),
            data={"sizes": {str(c): s for c, s in sizes.items()}},
        ),
        Result(
            figure="e",
            title=f"stored inputs per resource, {counts[-1]:,} asset IDs (+10 points)",
            value=large["inputs"],
            unit="B",
            target="info",
            passed=None,
            detail=(
                f"{(large['inputs'] - provider_b) / counts[-1]:.1f} B per ID at {counts[-1]:,} "
                f"(one comma-joined string above 1,000 IDs, a list up to 1,000); {table}"
            ),
        ),
    ]


def figure_f(quick: bool) -> list[Result]:
    resets = 50
    engine_parallelism = 8  # resources the engine has in flight; the host serves 4 at a time
    sim = start_simulator()
    results = []
    try:
        sim.add_latency(5, op="delete")  # a little network time, so that requests overlap
        hosted = start_host(sim.base_url, settings={"enos:maxPairsPerRequest": "10"})
        try:
            sim.clear_log()
            tokens0, connections0 = sim.tokens_issued, sim.connections_opened
            names = [f"reset-{i:02d}" for i in range(resets)]

            def up(i_name: tuple[int, str]) -> str:
                i, name = i_name
                inputs = {**resource_inputs(make_ids(4, seed=100 + i)), "__provider": hosted.provider}
                return hosted.engine.up(name, inputs).op

            started = time.perf_counter()
            with ThreadPoolExecutor(engine_parallelism) as pool:
                ops = list(pool.map(up, enumerate(names)))
            wall = time.perf_counter() - started
        finally:
            hosted.stop()
        if ops != ["create"] * resets:
            raise AssertionError(f"expected {resets} creates, got {ops}")
        log_entries = sim.requests
        tokens = sim.tokens_issued - tokens0
        connections = sim.connections_opened - connections0
        calls = len(log_entries)
        deletes = sum(1 for e in log_entries if e["operation"] == "delete")
        bound = CONNECTION_WORKERS * HOST_THREADS
        log(f"  f: {resets} resets: {tokens} token(s), {connections} connection(s), {calls} requests")
        common = (
            f"{resets} resets (4 assets x 10 points, 10 pairs per request) through one host, "
            f"{engine_parallelism} resource operations in flight: {calls} requests ({deletes} deletes), "
            f"{fmt_s(wall)} wall"
        )
        results += [
            Result(
                figure="f",
                title=f"token requests for {resets} resets in one provider host process",
                value=tokens,
                unit="count",
                target="== 1",
                passed=tokens == 1,
                detail=common,
                data={"tokens": tokens, "requests": calls, "wall_s": wall},
            ),
            Result(
                figure="f",
                title=f"TCP connections opened for {resets} resets in one provider host process",
                value=connections,
                unit="count",
                target=f"<= {bound} ({CONNECTION_WORKERS} workers x {HOST_THREADS} threads)",
                passed=connections <= bound and connections < calls / 4,
                detail=f"{connections} connections for {calls} requests; " + common,
                data={"connections": connections, "requests": calls},
            ),
        ]
    finally:
        sim.stop()
    return results
