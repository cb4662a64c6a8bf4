"""``enos-simulator`` / ``python -m enos_pulumi.simulator``: run the local EnOS simulator until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from .server import Simulator
from .store import FAULT_KINDS, OPERATIONS, SeedError, demo_seed, load_seed_file, parse_fault

__all__ = ["main"]

_FAULT_HELP = (
    "inject a fault (repeatable): KIND[=VALUE][,op=OP][,count=N][,retry-after=S][,msg=TEXT]; "
    f"kinds: {', '.join(FAULT_KINDS)}; ops: {', '.join(OPERATIONS)}. "
    "Examples: latency=200,op=delete  status=429,retry-after=1,count=3  drop,op=delete,count=1  "
    "data-false,count=1  expire,op=delete,count=1  html=502,count=2  code=61121,op=operate"
)


_EPILOG = """\
Admin endpoint (no authentication; loopback only), JSON in and out:
  GET    /__admin/health          {"ok": true}
  GET    /__admin/state           apps (access keys), pipelines with status and pairs per stage, faults
  GET    /__admin/requests        the request log (no secrets); DELETE clears it
  GET    /__admin/faults          active faults; DELETE clears them
  POST   /__admin/faults          {"spec": "status=503,count=2"} or {"kind": "drop", "op": "delete",
                                  "count": 1}, or a list of those
  POST   /__admin/expire-tokens   expire every issued token now (next calls get HTTP 401, code 1203)
  POST   /__admin/seed            add a seed (same shape as the seed files)
  POST   /__admin/reset           forget everything, then re-apply the startup seed
  GET/POST /__admin/config        latency_ms, pair_limit, token_lifetime, require_paused, get_format
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enos-simulator",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the EnOS APIs enos-pulumi uses on 127.0.0.1, in memory, for trials and tests.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free port)")
    seeding = parser.add_mutually_exclusive_group()
    seeding.add_argument("--seed", metavar="FILE", help="JSON or YAML seed (default: the built-in demo seed)")
    seeding.add_argument("--empty", action="store_true", help="start with no apps, pipelines or state")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay every API request by this much")
    parser.add_argument(
        "--token-lifetime", type=float, default=7200.0, metavar="S", help="token lifetime (s)"
    )
    parser.add_argument("--pair-limit", type=int, default=100_000, help="max assets x points per request")
    parser.add_argument(
        "--no-require-paused",
        dest="require_paused",
        action="store_false",
        help="let Delete Stage State succeed on a pipeline that is not PAUSED",
    )
    parser.add_argument(
        "--get-format", choices=("list", "items"), default="list", help="Get Stage State data"
    )
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC", help=_FAULT_HELP)
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    return parser


def _log_line(entry: dict[str, Any]) -> str:
    pairs = ""
    if entry["asset_count"] is not None and entry["point_count"] is not None:
        pairs = f" pairs={entry['asset_count']}x{entry['point_count']}"
    status = "dropped" if entry["status"] is None else str(entry["status"])
    code = "" if entry["code"] is None else f" code={entry['code']}"
    fault = f" fault={entry['fault']}" if entry["fault"] else ""
    return (
        f"{entry['method']} {entry['operation']} {entry['path']} -> {status}{code} "
        f"requestId={entry['request_id']}{pairs} {entry['duration_ms']:.1f}ms{fault}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    write_lock = threading.Lock()

    def log(entry: dict[str, Any]) -> None:
        line = _log_line(entry)
        with write_lock:
            print(line, file=sys.stderr, flush=True)

    try:
        faults = [parse_fault(spec) for spec in args.fault]
        seed = None if args.empty else load_seed_file(args.seed) if args.seed else demo_seed()
        sim = Simulator(
            args.port,
            token_lifetime=args.token_lifetime,
            pair_limit=args.pair_limit,
            require_paused=args.require_paused,
            get_format=args.get_format,
            latency_ms=args.latency_ms,
            seed=seed,
            on_request=None if args.quiet else log,
        )
    except (SeedError, ValueError) as exc:
        print(f"enos-simulator: {exc}", file=sys.stderr)
        return 2
    for fault in faults:
        sim.add_fault(fault)

    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    # Signal handlers can only be installed from the main thread (main() may be called from elsewhere).
    in_main = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if in_main else ()
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        try:
            sim.start()
        except OSError as exc:
            print(
                f"enos-simulator: cannot listen on port {args.port}: {exc.strerror or exc}", file=sys.stderr
            )
            return 1
        if not args.quiet:
            summary = sim.summary()
            stages = sum(sum(p["stages"].values()) for p in summary["pipelines"])
            print(
                f"enos-simulator: apps {', '.join(summary['apps']) or '(none)'}; "
                f"{len(summary['pipelines'])} pipeline(s), {stages} state pair(s), {len(faults)} fault(s); "
                f"admin endpoint {sim.base_url}/__admin/",
                file=sys.stderr,
                flush=True,
            )
        print(f"EnOS simulator listening on {sim.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
