"""``python -m benchmarks [--quick] [--json PATH] [--only a,b,...] [--strict]`` (``make bench``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .bench_host import figure_a_grpc, figure_e, figure_f
from .bench_http import figure_b, figure_c
from .bench_ids import figure_a, figure_d
from .bench_program import figure_g
from .bench_simlog import figure_h
from .common import Result, log

Figure = Callable[[bool], list[Result]]

#: (figure letter, what it measures, function), in the order they run.
FIGURES: list[tuple[str, str, Figure]] = [
    ("a", "check + diff versus ID count (in process)", figure_a),
    ("a", "check + diff through the provider host over gRPC", figure_a_grpc),
    ("b", "a reset of many requests against per-request latency", figure_b),
    ("c", "provider overhead of one 100,000-pair request", figure_c),
    ("d", "peak memory for 1,000,000 IDs", figure_d),
    ("e", "state footprint per resource", figure_e),
    ("f", "tokens and connections for 50 resets in one host", figure_f),
    ("g", "registering 1,000,000 IDs in a program", figure_g),
    ("h", "simulator memory under a flood of requests", figure_h),
]


def machine_info() -> dict[str, Any]:
    versions = {}
    for dist in ("enos-pulumi", "pulumi", "requests", "urllib3", "grpcio", "protobuf"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "?"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": _load(),
        "versions": versions,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def render(results: list[Result], info: dict[str, Any], quick: bool, elapsed: float) -> str:
    lines = [
        "",
        f"enos-pulumi benchmarks{' (--quick)' if quick else ''}, {info['date']}",
        f"  {info['python']} on {info['platform']}; {info['cpu_count']} CPUs ({info['processor']})",
        f"  load average at start {info['load_average']}, at end {info['load_end']}; total {elapsed:.0f} s",
        "  " + ", ".join(f"{name} {version}" for name, version in info["versions"].items()),
        "",
    ]
    header = f"{'fig':<4}{'result':<7}{'measured':>12}  {'target':<32}measurement"
    lines += [header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.figure:<4}{r.verdict:<7}{r.measured():>12}  {r.target:<32}{r.title}")
    lines += ["", "Details:"]
    for r in results:
        lines.append(f"  [{r.figure} {r.verdict}] {r.title}")
        lines.append(f"      {r.detail}")
    judged = [r for r in results if r.passed is not None]
    missed = [r for r in judged if not r.passed]
    lines += [
        "",
        f"{len(judged) - len(missed)} of {len(judged)} targets met"
        + (f"; missed: {', '.join(f'{r.figure} ({r.title})' for r in missed)}" if missed else "."),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer samples (~1 min)")
    parser.add_argument("--json", metavar="PATH", help="also write machine info and results as JSON")
    parser.add_argument("--only", metavar="LETTERS", help="run only these figures, e.g. a,c")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any figure misses its target")
    args = parser.parse_args(argv)
    only = set(args.only.replace(",", "")) if args.only else None

    info = machine_info()
    started = time.perf_counter()
    results: list[Result] = []
    for letter, what, figure in FIGURES:
        if only is not None and letter not in only:
            continue
        log(f"{letter}: {what}...")
        figure_started = time.perf_counter()
        results += figure(args.quick)
        log(f"   ({time.perf_counter() - figure_started:.0f} s)")
    elapsed = time.perf_counter() - started
    info["load_end"] = _load()
    print(render(results, info, args.quick, elapsed), flush=True)
    if args.json:
        payload = {
            "machine": info,
            "quick": args.quick,
            "elapsed_s": elapsed,
            "results": [{**asdict(r), "verdict": r.verdict} for r in results],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
    missed = any(r.passed is False for r in results)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
