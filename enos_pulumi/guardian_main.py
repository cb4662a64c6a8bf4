"""The guardian process (``python -m enos_pulumi.guardian_main``), started by :mod:`enos_pulumi.guardian`.

It reads one JSON line from stdin (connection settings, the pipeline, how to start it, the phase),
then phase lines, until ``done`` (exit, nothing to do) or until its host is gone (stdin closes, or the
host is no longer its parent). Then, and only then, it restores the pipeline: in ``pausing`` it waits
(within ``enos:operationTimeoutSeconds``) for a pause that may still take effect; if the pipeline is
PAUSED it starts it and waits for RUNNING (within the same bound again). What it did goes to stderr,
which its host pointed at a report file that the next reset of the pipeline shows. Never a secret:
the settings live in memory only, and only EnOS errors (which carry none) and class names are written.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from datetime import datetime, timezone
from typing import Any

from .enos.client import EnosClient
from .enos.errors import EnosError, OperationTimeoutError
from .enos.settings import Settings

__all__ = ["main"]

PHASES = ("pausing", "paused", "starting")
_WHILE = {
    "pausing": "it was pausing the pipeline",
    "paused": "the pipeline was paused for the reset",
    "starting": "it was starting the pipeline again",
}
#: EnOS's advice: a pipeline should not stay paused for long (older docs: 24 hours). A host still alive
#: by then is not waited for any longer.
MAX_WATCH_S = 24 * 3600.0
_HELLO_TIMEOUT_S = 30.0


class _Lines:
    """Lines from a file descriptor, with a timeout per wait."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._eof = False

    def next(self, timeout: float) -> str | None:
        """The next line; "" at end of file; None if none came within ``timeout``."""
        while b"\n" not in self._buffer and not self._eof:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self._fd, 65536)
            self._eof = not chunk
            self._buffer += chunk
        if b"\n" not in self._buffer:
            return ""
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode().strip()


def _say(hello: dict[str, Any], text: str) -> None:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    who = f"guardian (pid {os.getpid()}) of pipeline {hello['pipeline_id']} (org {hello['org_id']})"
    print(f"{when} {who}: {text}", file=sys.stderr, flush=True)


def _watch(lines: _Lines, hello: dict[str, Any]) -> str | None:
    """The phase the host was in when it disappeared, or None once it said ``done`` (or was waited for
    :data:`MAX_WATCH_S`)."""
    phase = str(hello.get("phase", "pausing"))
    host = int(hello["host_pid"])
    give_up = time.monotonic() + MAX_WATCH_S
    while True:
        line = lines.next(1.0)
        if line is None:
            if os.getppid() != host:
                return phase  # reparented: the host is gone, though something still holds the pipe
            if time.monotonic() >= give_up:
                _say(hello, f"stopped watching after {MAX_WATCH_S / 3600:g} h; left the pipeline as it is")
                return None
            continue
        if line == "":
            return phase
        if line == "done":
            return None
        if line in PHASES:
            phase = line


def _restore(client: EnosClient, hello: dict[str, Any], phase: str) -> int:
    org, pid, resume = hello["org_id"], hello["pipeline_id"], hello["resume"]
    _say(hello, f"the process that ran the reset ended while {_WHILE.get(phase, phase)}")
    if phase == "pausing":
        try:
            client.wait_for_status(org, pid, "PAUSED")
        except OperationTimeoutError:
            limit = client.settings.operation_timeout
            _say(hello, f"its pause did not take effect within {limit:g} s: the pipeline was left as it is")
            return 0
    status = client.pipeline_status(org, pid, until=client.operation_deadline())
    if status != "PAUSED":
        _say(hello, f"the pipeline is {status or 'not listed'}: nothing to do")
        return 0
    until = client.operation_deadline()
    mode, rate, config = resume["execution_mode"], resume["kafka_rate"], resume["resource_config"]
    request_id = client.start_pipeline(org, pid, mode, rate, config, wait=False, until=until)
    if request_id:
        _say(hello, f"the pipeline was PAUSED: started it again (requestId {request_id})")
    else:
        _say(hello, "the pipeline was PAUSED: a start of it is under way (EnOS refused another)")
    client.wait_for_status(org, pid, "RUNNING", until=until)
    _say(hello, "the pipeline is RUNNING again")
    return 0


def main() -> int:
    lines = _Lines(sys.stdin.fileno())
    try:
        hello = json.loads(lines.next(_HELLO_TIMEOUT_S) or "")
        settings = Settings(**hello["settings"])
    except (ValueError, TypeError, KeyError) as exc:
        name = type(exc).__name__
        print(f"guardian (pid {os.getpid()}): no usable start message ({name})", file=sys.stderr)
        return 2
    sys.stdout.write("ready\n")  # the host counts on this guardian from now on
    sys.stdout.flush()
    sys.stdout.close()
    phase = _watch(lines, hello)
    if phase is None:
        return 0
    try:
        return _restore(EnosClient(settings), hello, phase)
    except EnosError as exc:
        _say(
            hello, f"could not restore the pipeline, which may be left PAUSED: check the EnOS console ({exc})"
        )
    except Exception as exc:  # never a traceback: its text could quote a value
        _say(hello, f"failed ({type(exc).__name__}); the pipeline may be left PAUSED: check the EnOS console")
    return 1


if __name__ == "__main__":
    sys.exit(main())
