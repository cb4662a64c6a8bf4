"""The guardian process (``python -m enos_pulumi.guardian_main``), started by :mod:`enos_pulumi.guardian`.

It reads one JSON line from stdin (connection settings, the pipeline, how to start it, the phase),
then phase lines, until ``done`` (exit, nothing to do) or until its host is gone (stdin closes, or the
host is no longer its parent) or hands it the pipeline (``abandoned``, after an unexpected error). Then,
and only then, it restores the pipeline by the last phase: in ``watching`` (no pause of ours went out)
nothing; in ``pausing`` it waits (within ``enos:operationTimeoutSeconds``) for our pause to take effect;
then, if the pipeline is PAUSED, it starts it and waits for RUNNING (within the same bound again).

SIGTERM is recorded at once. While the host still runs, the guardian then exits: the host restores the
pipeline itself, and a pipeline must never be started from under a reset that is deleting. If the host
goes too within a short grace (a whole process tree stopped with SIGTERM), or the guardian is already
restoring, it restores as above (each step bounded; SIGKILL still ends it at once).

What it did goes to stderr, which its host pointed at a report file that the next reset of the pipeline
shows. Never a secret: the settings live in memory only, and only EnOS errors (which carry none) and
class names are written.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from datetime import datetime, timezone
from types import FrameType
from typing import Any

from .enos.client import EnosClient
from .enos.errors import EnosError, OperationTimeoutError
from .enos.settings import Settings

__all__ = ["main"]

PHASES = ("watching", "pausing", "paused", "starting")
_WHEN = {
    "watching": "before it paused the pipeline",
    "pausing": "while it was pausing the pipeline",
    "paused": "while the pipeline was paused for the reset",
    "starting": "while it was starting the pipeline again",
}
_ENDED = "the process that ran the reset ended"
_ABANDONED = "the reset stopped unexpectedly"
#: EnOS's advice: a pipeline should not stay paused for long (older docs: 24 hours). A host still alive
#: by then is not waited for any longer.
MAX_WATCH_S = 24 * 3600.0
_HELLO_TIMEOUT_S = 30.0
#: After SIGTERM, how long the host is given to disappear too (a whole process tree stopped at once).
_TERM_GRACE_S = 2.0
_UNGUARDED = (
    "its host still runs the reset (last phase: {}), which goes on unguarded: it starts the pipeline again "
    "itself, but if it is killed while the pipeline is paused, the pipeline stays PAUSED"
)


class _State:
    """What the SIGTERM handler needs to know (it runs between any two bytecodes of the main thread)."""

    hello: dict[str, Any] | None = None
    phase = "pausing"
    restoring = False
    terminated = False


_STATE = _State()


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


def _say(hello: dict[str, Any] | None, text: str) -> None:
    """One line of the report, in one write: safe from the signal handler too (no buffered stream)."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    who = f"guardian (pid {os.getpid()})"
    if hello is not None:
        who += f" of pipeline {hello['pipeline_id']} (org {hello['org_id']})"
    with contextlib.suppress(OSError):  # no report file: nowhere to say it
        os.write(2, f"{when} {who}: {text}\n".encode())


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    if _STATE.terminated:
        return
    _STATE.terminated = True
    if _STATE.restoring:
        text = "got SIGTERM while restoring the pipeline: it finishes that first (each step is bounded)"
    elif _STATE.hello is None:
        text = "got SIGTERM before it was told what to guard"
    else:
        text = "got SIGTERM"
    _say(_STATE.hello, text)


def _watch(lines: _Lines, hello: dict[str, Any]) -> str | None:
    """How the reset ended for the guardian (``_ENDED`` or ``_ABANDONED``), its last phase in
    ``_STATE.phase``; None once it said ``done`` (or was waited for :data:`MAX_WATCH_S`, or the guardian
    was sent SIGTERM while it still runs)."""
    _STATE.phase = str(hello.get("phase", "pausing"))
    host = int(hello["host_pid"])
    give_up = time.monotonic() + MAX_WATCH_S
    grace_until: float | None = None
    while True:
        if _STATE.terminated and grace_until is None:
            grace_until = time.monotonic() + _TERM_GRACE_S  # its host may be going too
        line = lines.next(0.1 if grace_until is not None else 1.0)
        if line is None:
            if os.getppid() != host:
                return _ENDED  # reparented: the host is gone, though something still holds the pipe
            if grace_until is not None and time.monotonic() >= grace_until:
                _say(hello, _UNGUARDED.format(_STATE.phase))
                return None
            if time.monotonic() >= give_up:
                _say(hello, f"stopped watching after {MAX_WATCH_S / 3600:g} h; left the pipeline as it is")
                return None
            continue
        if line in ("", "abandoned"):
            return _ENDED if line == "" else _ABANDONED
        if line == "done":
            if grace_until is not None:
                _say(hello, "the reset finished meanwhile: nothing to do")
            return None
        if line in PHASES:
            _STATE.phase = line


def _restore(client: EnosClient, hello: dict[str, Any], how: str) -> int:
    org, pid, resume, phase = hello["org_id"], hello["pipeline_id"], hello["resume"], _STATE.phase
    _say(hello, f"{how} {_WHEN.get(phase, phase)}" + (": nothing to do" if phase == "watching" else ""))
    if phase == "watching":
        return 0
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
    signal.signal(signal.SIGTERM, _on_sigterm)
    lines = _Lines(sys.stdin.fileno())
    try:
        hello = json.loads(lines.next(_HELLO_TIMEOUT_S) or "")
        settings = Settings(**hello["settings"])
    except (ValueError, TypeError, KeyError) as exc:
        _say(None, f"no usable start message ({type(exc).__name__})")
        return 2
    _STATE.hello = hello
    sys.stdout.write("ready\n")  # the host counts on this guardian from now on
    sys.stdout.flush()
    sys.stdout.close()
    how = _watch(lines, hello)
    if how is None:
        return 0
    _STATE.restoring = True
    if _STATE.terminated:
        _say(hello, "its host is gone too, so it does what is left to do before exiting")
    try:
        return _restore(EnosClient(settings), hello, how)
    except EnosError as exc:
        _say(
            hello, f"could not restore the pipeline, which may be left PAUSED: check the EnOS console ({exc})"
        )
    except Exception as exc:  # never a traceback: its text could quote a value
        _say(hello, f"failed ({type(exc).__name__}); the pipeline may be left PAUSED: check the EnOS console")
    return 1


if __name__ == "__main__":
    sys.exit(main())
