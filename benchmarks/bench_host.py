"""Through Pulumi's real provider host: figure a over gRPC (informational), e (state footprint) and
f (tokens and connections of 50 resets in one host process)."""

from __future__ import annotations

import functools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from enos_pulumi.hostdriver import DIFF_NONE

from .bench_ids import baseline_canonical_hash, stored_outputs
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


def figure_a_grpc(quick: bool) -> list[Result]:
    """Check + Diff RPCs to the host, list form vs comma-string form; requests built beforehand (the
    engine's marshalling is Go, outside what a Python provider can change), replies left undecoded."""
    from pulumi.runtime.proto import provider_pb2

    sizes = {100_000: 3} if quick else {100_000: 5, 1_000_000: 3}
    sim = start_simulator()
    hosted = start_host(sim.base_url)
    results = []
    try:
        stub = hosted.host.stub()
        urn = hosted.engine.urn("reset-grpc")
        for count, samples in sizes.items():
            ids = asset_ids(count)
            olds = to_struct({**stored_outputs(ids, POINTS), "__provider": hosted.provider})
            cases = [Case("stdlib", functools.partial(baseline_canonical_hash, ids, POINTS))]
            sizes_bytes = {}
            for form in ("list", "string"):
                assets: Any = ids if form == "list" else ",".join(ids)
                news = {**resource_inputs(assets), "__provider": hosted.provider}
                request = provider_pb2.CheckRequest(urn=urn, olds=to_struct({}), news=to_struct(news))
                sizes_bytes[form] = request.ByteSize()

                def check_diff(request: Any = request, olds: Any = olds) -> None:
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
            cases[-1].run()  # warm-up with the string form: the host unpickles the provider once
            times = interleaved(cases, samples)
            base = median(times["stdlib"])
            for form in ("list", "string"):
                ours = median(times[form])
                log(f"  a/gRPC: {count:>9,} IDs as {form}: {fmt_s(ours)} vs stdlib {fmt_s(base)}")
                results.append(
                    Result(
                        figure="a",
                        title=(
                            f"check+diff through the provider host (gRPC), {count:,} IDs as "
                            f"{'a list' if form == 'list' else 'one comma-separated string'} vs stdlib"
                        ),
                        value=ours / base,
                        unit="x",
                        target="info",
                        passed=None,
                        detail=(
                            f"Check+Diff RPCs {fmt_s(ours)} (range {spread(times[form])}), stdlib "
                            f"{fmt_s(base)}, median of {samples}; CheckRequest {sizes_bytes[form]:,} B"
                        ),
                        data={
                            "ids": count,
                            "form": form,
                            "rpc_s": times[form],
                            "baseline_s": times["stdlib"],
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
                f"{provider_b:,} B __provider; JSON of MiniEngine.state after an up through the host"
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
