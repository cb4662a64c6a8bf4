"""The ``enos-simulator`` command line: its options and help, and the request line it logs on stderr."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Any

from . import admin
from .config import AUTH_SCHEMES, DEFAULTS, GET_FORMATS, LOG_LIMIT
from .faults import FAULT_KINDS, OPERATIONS
from .seeds import SEED_FORMAT

__all__ = ["log_line", "parser"]

_FAULT_HELP = (
    "inject a fault (repeatable): KIND[=VALUE][,op=OP][,count=N][,retry-after=S][,msg=TEXT]"
    "[,after=true]; "
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

The request log (--request-log-limit, GET /__admin/requests) keeps the newest requests; texts copied
from a request are cut to a few hundred characters.

{admin.ENDPOINTS}"""


#: Settings given as numbers: (option, setting, type, metavar, help).
_NUMBERS: list[tuple[str, str, type, str, str]] = [
    ("--latency-ms", "latency_ms", float, "MS", "delay every API request"),
    ("--token-lifetime", "token_lifetime", float, "S", "token lifetime (s)"),
    ("--pair-limit", "pair_limit", int, "N", "max assets x points per request"),
    ("--pause-seconds", "pause_seconds", float, "S", "how long a pause takes to take effect"),
    ("--start-seconds", "start_seconds", float, "S", "how long a start takes to take effect"),
    (
        "--request-timeout",
        "request_timeout",
        float,
        "S",
        "idle connections close after S; a request must arrive whole in S",
    ),
]


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="enos-simulator",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the EnOS APIs enos-pulumi uses on 127.0.0.1, in memory, for trials and tests.",
    )
    made.add_argument(
        "--port", type=int, default=0, help="port to listen on; 0 picks a free port (default: %(default)s)"
    )
    seeding = made.add_mutually_exclusive_group()
    seeding.add_argument("--seed", metavar="FILE", help="JSON or YAML seed (default: the built-in demo seed)")
    seeding.add_argument("--empty", action="store_true", help="start with no apps, pipelines or state")
    made.add_argument(
        "--auth",
        choices=AUTH_SCHEMES,
        default=DEFAULTS["auth"],
        help="apim-* signature headers, Authorization: Bearer <token>, or either (default: %(default)s)",
    )
    for option, key, kind, metavar, text in _NUMBERS:
        made.add_argument(
            option, type=kind, default=DEFAULTS[key], metavar=metavar, help=f"{text} (default: %(default)s)"
        )
    made.add_argument(
        "--no-require-paused",
        dest="require_paused",
        action="store_false",
        help="let Delete Stage State succeed on a pipeline that is not PAUSED",
    )
    made.add_argument(
        "--get-format",
        choices=GET_FORMATS,
        default=DEFAULTS["get_format"],
        help="Get Stage State data shape (default: %(default)s)",
    )
    made.add_argument(
        "--request-log-limit",
        type=int,
        default=LOG_LIMIT,
        metavar="N",
        help="keep the newest N requests (and transitions) in the log (default: %(default)s)",
    )
    made.add_argument("--fault", action="append", default=[], metavar="SPEC", help=_FAULT_HELP)
    made.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    return made


def _timestamp(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def log_line(entry: dict[str, Any]) -> str:
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
