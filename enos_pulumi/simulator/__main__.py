"""``enos-simulator`` / ``python -m enos_pulumi.simulator``: run the local EnOS simulator until stopped."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from .cli import log_line, parser
from .faults import Fault, parse_fault
from .seeds import SeedError, demo_seed, load_seed_file
from .server import Simulator

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        faults = [parse_fault(spec) for spec in args.fault]
        sim = _simulator(args)
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
        _announce(sim, args, faults)
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _simulator(args: argparse.Namespace) -> Simulator:
    """The simulator the options ask for (not started); SeedError or ValueError naming a bad one."""
    write_lock = threading.Lock()

    def log(entry: dict[str, Any]) -> None:
        line = log_line(entry)
        with write_lock:
            print(line, file=sys.stderr, flush=True)

    seed = None if args.empty else load_seed_file(args.seed) if args.seed else demo_seed()
    return Simulator(
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
        request_log_limit=args.request_log_limit,
    )


def _announce(sim: Simulator, args: argparse.Namespace, faults: list[Fault]) -> None:
    """What is served (stderr, unless quiet), then the URL and the export line to paste (stdout)."""
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


if __name__ == "__main__":
    sys.exit(main())
