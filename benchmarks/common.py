"""Shared pieces: results, interleaved timing, realistic IDs, simulators and provider hosts."""

from __future__ import annotations

import base64
import gc
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from enos_pulumi.provider import StageStateResetProvider
from enos_pulumi.simulator import Simulator
from enos_pulumi.testing import Engine, ProviderHost, secret, serialize_provider

REPO_ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"  # a value for the local simulator only
ORG_ID = "o-bench"
PIPELINE_ID = "pl-bench-paused"
STAGE = "FixedTimeWindowAggregator_1"
PROJECT = "enos-bench"
#: Ten measurement points, named like EnOS model points.
POINTS = [
    "INV.GenActivePW",
    "INV.GenReactivePW",
    "INV.Temp",
    "INV.DCVoltage",
    "INV.DCCurrent",
    "INV.ACVoltage",
    "INV.ACCurrent",
    "INV.Frequency",
    "INV.Efficiency",
    "INV.DailyYield",
]
#: What the Pulumi engine (and the host's own server) allow per gRPC message: 400 MiB.


def log(text: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(text, file=sys.stderr, flush=True)


@dataclass
class Result:
    """One row of the final table."""

    figure: str
    title: str
    value: float
    unit: str  # "x" (a ratio), "B", "count"
    target: str  # e.g. "<= 1.5x"; "info" for informational rows
    passed: bool | None  # None: informational
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "MISS"

    def measured(self) -> str:
        if self.unit == "x":
            return f"{self.value:.2f}x"
        if self.unit == "B":
            return f"{self.value:,.0f} B"
        return f"{self.value:,.0f}"


# -- timing ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    """Something to time; ``setup`` and ``teardown`` run untimed before and after every sample (e.g.
    re-seeding server state, reading the server's log)."""

    name: str
    run: Callable[[], object]
    setup: Callable[[], object] | None = None
    teardown: Callable[[], object] | None = None


def calibrate(case: Case, min_sample_s: float) -> int:
    """How many calls make one sample last at least ``min_sample_s`` (one warm-up call, untimed)."""
    if case.setup is not None:
        case.setup()
    started = time.perf_counter()
    case.run()
    once = time.perf_counter() - started
    return max(1, math.ceil(min_sample_s / max(once, 1e-9)))


def interleaved(
    cases: Sequence[Case], samples: int, inner: int = 1, cpu: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Wall seconds per call for each case, ``samples`` times, alternating the order every sample so
    that a drift in machine load hits all cases alike. A full collection runs before every sample.

    ``cpu``, if given, receives this process's CPU seconds per call (all threads, ``process_time``).
    """
    times: dict[str, list[float]] = {case.name: [] for case in cases}
    for i in range(samples):
        order = cases if i % 2 == 0 else list(reversed(cases))
        for case in order:
            if case.setup is not None:
                case.setup()
            gc.collect()
            cpu_started = time.process_time()
            started = time.perf_counter()
            for _ in range(inner):
                case.run()
            times[case.name].append((time.perf_counter() - started) / inner)
            if cpu is not None:
                cpu.setdefault(case.name, []).append((time.process_time() - cpu_started) / inner)
            if case.teardown is not None:
                case.teardown()
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def spread(values: Sequence[float]) -> str:
    return f"{fmt_s(min(values))}..{fmt_s(max(values))}"


# -- inputs ---------------------------------------------------------------------------------------------

_ALNUM = str.maketrans({"+": "x", "/": "z"})


def make_ids(count: int, seed: int = 1) -> list[str]:
    """``count`` asset-ID-like strings (8 random alphanumerics, as EnOS asset IDs look), random order.

    Deterministic per seed; collisions are possible but rare (canonicalization drops them anyway).
    """
    rng = random.Random(seed)
    raw = base64.b64encode(rng.randbytes(6 * count)).decode().translate(_ALNUM)
    return [raw[i : i + 8] for i in range(0, 8 * count, 8)]


_ID_CACHE: dict[int, list[str]] = {}


def asset_ids(count: int) -> list[str]:
    """Shared between figures (a 1M list takes a moment to build)."""
    if count not in _ID_CACHE:
        _ID_CACHE[count] = make_ids(count)
    return _ID_CACHE[count]


def resource_inputs(assets: Any, points: Any = POINTS, **extra: Any) -> dict[str, Any]:
    """The inputs ``StageStateReset`` registers (defaults filled in), without ``__provider``."""
    return {
        "org_id": ORG_ID,
        "pipeline_id": PIPELINE_ID,
        "stage_instance_name": STAGE,
        "asset_ids": assets,
        "point_ids": points,
        "require_paused": True,
        "verify": False,
        "trigger": "release-1",
        **extra,
    }


# -- simulator and environment --------------------------------------------------------------------------


def start_simulator(**options: Any) -> Simulator:
    """An in-process simulator with the benchmark app and a PAUSED pipeline."""
    sim = Simulator(**options)
    sim.add_app(ACCESS_KEY, SECRET_KEY, orgs=[ORG_ID])
    sim.add_pipeline(ORG_ID, PIPELINE_ID, status="PAUSED")
    return sim.start()


class SimProcess:
    """The simulator in a process of its own (``benchmarks.simproc``), driven through its admin endpoint.

    Like the real EnOS, its CPU time does not compete with the provider for this process's GIL, and its
    allocations stay out of this process's memory traces.
    """

    def __init__(self) -> None:
        import requests

        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.simproc", ACCESS_KEY, SECRET_KEY, ORG_ID, PIPELINE_ID],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().decode().strip()
        if not self.base_url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"simulator process did not start: {self.base_url!r}")
        self._admin = requests.Session()
        self._admin.trust_env = False
        self._admin.headers["Content-Type"] = "application/json"  # admin writes must say JSON

    def admin(self, method: str, name: str, payload: Any = None) -> Any:
        reply = self._admin.request(method, f"{self.base_url}/__admin/{name}", json=payload, timeout=120)
        reply.raise_for_status()
        return reply.json()

    def set_pairs(self, assets: Sequence[str], points: Sequence[str]) -> None:
        """Give every pair state again (what a reset deletes), in the benchmark stage."""
        state = {STAGE: {"assets": ",".join(assets), "points": ",".join(points)}}
        pipeline = {"org": ORG_ID, "id": PIPELINE_ID, "status": "PAUSED", "state": state}
        self.admin("POST", "seed", {"pipelines": [pipeline]})

    def add_latency(self, ms: float, op: str) -> None:
        self.admin("POST", "faults", {"kind": "latency", "op": op, "latency_ms": ms})

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "requests")["requests"])

    def clear_log(self) -> None:
        self.admin("DELETE", "requests")

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if hasattr(self, "_admin"):
            self._admin.close()


@contextmanager
def simulator_process() -> Iterator[SimProcess]:
    sim = SimProcess()
    try:
        yield sim
    finally:
        sim.stop()


@contextmanager
def enos_environment(gateway: str, extra: Mapping[str, str] | None = None) -> Iterator[None]:
    """ENOS_* variables for a provider called in this process (restored afterwards)."""
    values = {
        "ENOS_API_GATEWAY": gateway,
        "ENOS_ACCESS_KEY": ACCESS_KEY,
        "ENOS_SECRET_KEY": SECRET_KEY,
        **(extra or {}),
    }
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- Pulumi's provider host -----------------------------------------------------------------------------


@dataclass
class Hosted:
    host: ProviderHost
    engine: Engine
    provider: str  # the __provider string
    workdir: str  # the scratch "program directory" the host runs in

    def stop(self) -> None:
        self.host.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_host(gateway: str, settings: Mapping[str, Any] | None = None) -> Hosted:
    """A configured host (like ``pulumi up`` starts one), cwd a scratch program directory."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ENOS_")}
    env["PULUMI_PROJECT"] = PROJECT
    workdir = tempfile.mkdtemp(prefix="enos-bench-")
    try:
        host = ProviderHost(cwd=workdir, env=env).start()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        host.configure(
            {
                "enos:apiGateway": gateway,
                "enos:accessKey": ACCESS_KEY,
                "enos:secretKey": secret(SECRET_KEY),
                **(settings or {}),
            }
        )
    except BaseException:
        host.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    provider = serialize_provider(StageStateResetProvider())
    return Hosted(host, Engine(host, project=PROJECT), provider, workdir)


def to_struct(props: Mapping[str, Any]) -> Any:
    """A ``google.protobuf.Struct`` as the engine sends it (None values left out)."""
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update({key: value for key, value in props.items() if value is not None})
    return struct
