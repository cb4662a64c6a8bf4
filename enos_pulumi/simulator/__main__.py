"""``enos-simulator`` / ``python -m enos_pulumi.simulator``: run the local EnOS simulator until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime, timezone
from typing import Any

from . import admin
from .config import AUTH_SCHEMES, DEFAULTS, GET_FORMATS
from .faults import FAULT_KINDS, OPERATIONS, parse_fault
from .seeds import SEED_FORMAT, SeedError, demo_seed, load_seed_file
from .server import Simulator

__all__ = ["main"]

_FAULT_HELP = (
    "inject a fault (repeatable): KIND[=VALUE][,op=OP][,count=N][,retry-after=S][,msg=TEXT][,after=true]; "
    f"kinds: {', '.join(FAULT_KINDS)}; ops: {', '.join(OPERATIONS)} (operate: any pause/start/stop); "
    "examples below"
)
# In the epilog, which keeps its lines: argparse would wrap help text at hyphens, inside a spec.
_FAULT_EXAMPLES = """\
Fault examples (--fault SPEC):
  latency=200,op=delete            status=429,retry-after=1,count=3     drop,op=start,count=1
  data-false,count=1               expire,op=delete,count=1             html=502,count=2
  code=61121,op=start,count=3      code=61165,op=start
  no-effect,op=pause               (answers code 0, the status never changes)
  becomes=FAILED,op=start          (accepted; the pipeline ends FAILED instead of RUNNING)
  status=503,op=pause,after=true   (the pause takes effect; its answer is a 503)"""

_EPILOG = f"""\
Once listening it prints, on stdout, its URL and an `export ENOS_...` line for the first seeded app
and organization; every request is logged on stderr (time, operation, org, pipeline, outcome).

{_FAULT_EXAMPLES}

{SEED_FORMAT}
  Without --seed the built-in demo seed is used: app demo-access-key/demo-secret-key, org o-demo,
  pipelines pl-demo-paused (PAUSED) and pl-demo-running (RUNNING) with state in
  FixedTimeWindowAggregator_1.

Pipelines: pause needs RUNNING (else 61152), start needs PAUSED/STOPPED/PUBLISHED (else 61165) and a
body with executionMode 0/1 and kafkaRate > 0; with --pause-seconds/--start-seconds they take that long,
List Pipelines showing the old status meanwhile (a second start then answers 61121). Delete Stage State
on a pipeline that is not PAUSED answers code 0 with data false and deletes nothing. Stage instance
names must start with an operator type that keeps stage state (FixedTimeWindowAggregator_1, ...), else
61107, as on EnOS.

{admin.ENDPOINTS}"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enos-simulator",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the EnOS APIs enos-pulumi uses on 127.0.0.1, in memory, for trials and tests.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on; 0 picks a free port (default: %(default)s)"
    )
    seeding = parser.add_mutually_exclusive_group()
    seeding.add_argument("--seed", metavar="FILE", help="JSON or YAML seed (default: the built-in demo seed)")
    seeding.add_argument("--empty", action="store_true", help="start with no apps, pipelines or state")
    parser.add_argument(
        "--auth",
        choices=AUTH_SCHEMES,
        default=DEFAULTS["auth"],
        help="apim-* signature headers, Authorization: Bearer <token>, or either (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=DEFAULTS["latency_ms"],
        metavar="MS",
        help="delay every API request (default: %(default)s)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=DEFAULTS["token_lifetime"],
        metavar="S",
        help="token lifetime (s) (default: %(default)s)",
    )
    parser.add_argument(
        "--pair-limit",
        type=int,
        default=DEFAULTS["pair_limit"],
        metavar="N",
        help="max assets x points per request (default: %(default)s)",
    )
    parser.add_argument(
        "--pause-seconds",
        type=float,
        default=DEFAULTS["pause_seconds"],
        metavar="S",
        help="how long a pause takes to take effect (default: %(default)s)",
    )
    parser.add_argument(
        "--start-seconds",
        type=float,
        default=DEFAULTS["start_seconds"],
        metavar="S",
        help="how long a start takes to take effect (default: %(default)s)",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULTS["request_timeout"],
        metavar="S",
        help="idle connections close after S; a request must arrive whole in S (default: %(default)s)",
    )
    parser.add_argument(
        "--no-require-paused",
        dest="require_paused",
        action="store_false",
        help="let Delete Stage State succeed on a pipeline that is not PAUSED",
    )
    parser.add_argument(
        "--get-format",
        choices=GET_FORMATS,
        default=DEFAULTS["get_format"],
        help="Get Stage State data shape (default: %(default)s)",
    )
    parser.add_argument("--fault", action="append", default=[], metavar="SPEC", help=_FAULT_HELP)
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    return parser


def _timestamp(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _log_line(entry: dict[str, Any]) -> str:
    where = ""
    if entry["org_id"]:
        where += f" org={entry['org_id']}"
    if entry["pipeline_id"]:
        status = f"({entry['pipeline_status']})" if entry.get("pipeline_status") else ""
        where += f" pipeline={entry['pipeline_id']}{status}"
    if entry["stage_instance_name"]:
        where += f" stage={entry['stage_instance_name']}"
    pairs = ""
    if entry["asset_count"] is not None and entry["point_count"] is not None:
        pairs = f" pairs={entry['asset_count']}x{entry['point_count']}"
    status = "dropped" if entry["status"] is None else str(entry["status"])
    code = "" if entry["code"] is None else f" code={entry['code']}"
    deleted = " deleted=false" if entry.get("deleted") is False else ""
    fault = f" fault={entry['fault']}" if entry["fault"] else ""
    return (
        f"{_timestamp(entry['time'])} {entry['method']} {entry['operation']} {entry['path']}{where} "
        f"-> {status}{code}{deleted} requestId={entry['request_id']}{pairs} "
        f"{entry['duration_ms']:.1f}ms{fault}"
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
            pause_seconds=args.pause_seconds,
            start_seconds=args.start_seconds,
            auth=args.auth,
            request_timeout=args.request_timeout,
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
                f"auth {sim.auth}; admin endpoint {sim.base_url}/__admin/",
                file=sys.stderr,
                flush=True,
            )
        print(f"EnOS simulator listening on {sim.base_url}", flush=True)
        print("# point a program at it (simulator-only credentials):", flush=True)
        print(sim.export_lines(), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
