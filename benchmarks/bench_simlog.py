"""Figure h: what a flood of requests costs the simulator's memory (its request log is bounded).

The scenario: 3,000 requests without credentials (each answered 401 and logged), sent on one keep-alive
connection to a simulator in this process, its memory traced with ``tracemalloc`` from after a warm-up
to after the flood (a full collection before each reading). Two ratios, each against a baseline of the
same run:

- hostile vs plain: the flood with a 64,000-character query parameter (near the longest request line
  the server reads) against the same flood with an ordinary query. Each log entry is cut to a few hundred
  characters, so the two should cost about the same (unbounded, they cost 45x).
- past the cap vs at the cap: 3 x ``request_log_limit`` plain requests against 1 x, for a limit of 1,000.
  The log keeps the newest ``limit`` entries, so it stops growing (an unbounded log costs 3x).
"""

from __future__ import annotations

import gc
import socket
import tracemalloc

from enos_pulumi.simulator import Simulator

from .common import Result, log

REQUESTS = 3_000
HOSTILE_CHARS = 64_000
CAP = 1_000
SIZE_TARGET = 1.5
CAP_TARGET = 1.2
PLAIN_TARGET = "/streaming/v2.0/stage-state?action=delete&orgId=o-bench"


def _send(sock: socket.socket, request: bytes, count: int) -> None:
    """Send ``request`` ``count`` times, reading each answer whole (each must be a 401)."""
    for _ in range(count):
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, rest = received.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 401 "):
            raise AssertionError(f"expected a 401, got {head[:40]!r}")
        length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))[15:])
        while len(rest) < length:
            rest += sock.recv(65536)


def _growth(target: str, count: int, limit: int) -> int:
    """Bytes still allocated after ``count`` unauthenticated requests to ``target``."""
    request = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    with Simulator(request_log_limit=limit) as sim, socket.create_connection(("127.0.0.1", sim.port)) as sock:
        _send(sock, request, 20)  # warm-up: the connection's thread, first-use allocations
        sim.clear_log()
        gc.collect()
        tracemalloc.start()
        try:
            _send(sock, request, count)
            gc.collect()
            grown, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        if len(sim.requests) != min(count, limit):
            raise AssertionError(f"expected {min(count, limit)} log entries, found {len(sim.requests)}")
    return grown


def figure_h(quick: bool) -> list[Result]:
    hostile_target = f"{PLAIN_TARGET}&x={'a' * HOSTILE_CHARS}"
    plain = _growth(PLAIN_TARGET, REQUESTS, 10_000)
    hostile = _growth(hostile_target, REQUESTS, 10_000)
    at_cap = _growth(PLAIN_TARGET, CAP, CAP)
    past_cap = _growth(PLAIN_TARGET, 3 * CAP, CAP)
    mib = 2**20
    log(
        f"  h: {REQUESTS:,} requests: hostile {hostile / mib:.1f} MiB vs plain {plain / mib:.1f} MiB; "
        f"limit {CAP:,}: {3 * CAP:,} requests {past_cap / mib:.2f} MiB vs {CAP:,} {at_cap / mib:.2f} MiB"
    )
    size_ratio, cap_ratio = hostile / plain, past_cap / at_cap
    return [
        Result(
            figure="h",
            title=(
                f"simulator memory after {REQUESTS:,} unauthenticated requests with a {HOSTILE_CHARS:,}-char "
                "query vs with a plain one"
            ),
            value=size_ratio,
            unit="x",
            target=f"<= {SIZE_TARGET}x",
            passed=size_ratio <= SIZE_TARGET,
            detail=(
                f"traced growth {hostile / mib:.1f} MiB vs {plain / mib:.1f} MiB "
                f"({plain / REQUESTS:,.0f} B per plain request; log entries are cut to a few hundred chars)"
            ),
            data={"requests": REQUESTS, "hostile_bytes": hostile, "plain_bytes": plain},
        ),
        Result(
            figure="h",
            title=f"simulator memory after {3 * CAP:,} vs {CAP:,} requests, request_log_limit {CAP:,}",
            value=cap_ratio,
            unit="x",
            target=f"<= {CAP_TARGET}x",
            passed=cap_ratio <= CAP_TARGET,
            detail=(
                f"traced growth {past_cap / mib:.2f} MiB vs {at_cap / mib:.2f} MiB "
                "(the log keeps the newest entries)"
            ),
            data={"limit": CAP, "past_cap_bytes": past_cap, "at_cap_bytes": at_cap},
        ),
    ]
