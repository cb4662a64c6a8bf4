"""Guardians: a pipeline paused for a reset is started again even if the process that paused it is killed.

The Pulumi provider host runs provider calls on gRPC worker threads, so it cannot install signal
handlers, and nothing inside a process outlives SIGKILL. So a reset that pauses a pipeline first starts a
guardian, a small process of its own (:mod:`enos_pulumi.guardian_main`):

- in a session of its own, so the Pulumi CLI killing the host's process group does not take it;
- handed the connection settings over a pipe (never argv, the environment or a file; its environment
  keeps only what runs Python and reaches EnOS: no ``ENOS_*`` variable, no other credential), and told
  the reset's progress over the same pipe, each phase claiming no more than the reset knows:
  ``watching`` (no pause of ours sent yet: nothing to undo), ``pausing`` (our pause may be in flight or
  may have landed), ``paused`` (read PAUSED after our pause, or found PAUSED with resume_policy
  'always'), ``starting`` (our start may be in flight), ``done`` (the pipeline is no longer ours to
  restore: as the reset leaves it, or our pause certainly had no effect);
- if the pipe closes before ``done`` (the host is gone, or handed it the pipeline after an unexpected
  error: :meth:`Guard.hand_over`), it reads the status and starts the pipeline only if it is PAUSED (in
  ``pausing``, after waiting, bounded, for our pause to take effect), then exits. A start already under
  way is not duplicated: EnOS refuses a second one (61121, 61165).

One reset pauses a pipeline per machine at a time: the pausing reset takes a lock (``flock`` on a file
named by a hash of gateway, org and pipeline, in a private directory: :mod:`enos_pulumi.guardian_lock`)
and hands it to its guardian, which holds it until it exits. So the next ``pulumi up`` on this machine
waits for an earlier run's guardian to finish, then shows what it did (it writes that next to the lock).
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from .enos.client import EnosClient, RequestEvent
from .enos.errors import EnosError
from .enos.model import StageTarget
from .guardian_lock import GUARD, PipelineLock, acquire, candidates, private_directory

__all__ = ["GUARD", "NO_GUARD", "Guard", "Guardians", "PipelineLock"]

#: How long a reset waits for another reset's lock on the pipeline (an earlier run's guardian restoring
#: it, or another ``pulumi up`` on this machine resetting it), beyond two operation timeouts.
_LOCK_SLACK_S = 60.0
_READY_TIMEOUT_S = 30.0
#: What the guardian's environment keeps of its host's: enough to run Python and reach EnOS (a proxy, CA
#: files), nothing else. The host's may hold credentials (ENOS_SECRET_KEY, PULUMI_ACCESS_TOKEN...).
_ENV_KEPT = frozenset(
    {
        "PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL",
        "LC_CTYPE", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    }
)  # fmt: skip


class Guard:
    """The host's end of one guardian's pipe (or of none: :data:`NO_GUARD`). Thread-safe."""

    def __init__(self, process: subprocess.Popen[bytes] | None = None) -> None:
        self._process = process
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def phase(self, name: str) -> None:
        """Tell the guardian how far the reset got; a guardian that is gone is no reason to fail it."""
        with self._lock:
            pipe: IO[bytes] | None = self._process.stdin if self._process is not None else None
            if pipe is None or pipe.closed:
                return
            try:
                pipe.write(name.encode() + b"\n")
                pipe.flush()
            except (OSError, ValueError):  # gone, or its pipe closed meanwhile
                pass

    def done(self) -> None:
        """The pipeline is no longer ours to restore: the guardian exits (and frees the pipeline's lock)."""
        self._close("done", wait=True)

    def hand_over(self) -> None:
        """This process cannot say how it leaves the pipeline (an unexpected error, an interrupt): the
        guardian acts as if it had been killed, by the last phase, and exits."""
        self._close("abandoned", wait=False)

    def finish(self, error: BaseException | None) -> None:
        """:meth:`done` after success or an EnOS error (whose message says how the pipeline is left),
        :meth:`hand_over` after anything else."""
        if error is None or isinstance(error, EnosError):
            self.done()
        else:
            self.hand_over()

    def _close(self, last: str, wait: bool) -> None:
        self.phase(last)
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            if wait:
                process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass  # it exits on its own once the pipe is closed


NO_GUARD = Guard()


class Guardians:
    """Locks and guardians for the pipelines this process pauses. ``directory`` (tests): where the locks
    live, instead of the first private one of :func:`~enos_pulumi.guardian_lock.candidates`."""

    def __init__(self, directory: Path | None = None, lock_slack: float = _LOCK_SLACK_S) -> None:
        self._directory = directory
        self._slack = lock_slack

    def _dir(self) -> Path:
        return private_directory([self._directory] if self._directory is not None else candidates())

    def lock(self, client: EnosClient, target: StageTarget) -> PipelineLock:
        """Wait (bounded) for this machine's lock on the pipeline, then show what an earlier run's
        guardian of it reported. Without locks (no ``fcntl``, no private directory) a warning says so."""
        bound = 2 * client.settings.operation_timeout + self._slack
        try:
            return acquire(client, target, self._dir(), bound)
        except (ImportError, OSError) as exc:
            client.warn(f"pipeline {target.pipeline_id}", _unguarded(exc))
            return PipelineLock()

    def spawn(
        self, client: EnosClient, target: StageTarget, resume: dict[str, Any], lock: PipelineLock, phase: str
    ) -> Guard:
        """Start a guardian for the pipeline, handing it the lock; :data:`NO_GUARD` (and a warning) if
        that cannot be done: the reset goes on, unguarded, as before guardians existed. A start message
        that is not JSON is a bug: it raises (TypeError) before anything is started or paused."""
        if lock.fd is None or lock.report is None:
            return NO_GUARD
        hello = {
            "settings": dataclasses.asdict(client.settings),
            "org_id": target.org_id,
            "pipeline_id": target.pipeline_id,
            "resume": resume,
            "phase": phase,
            "host_pid": os.getpid(),
        }
        message = json.dumps(hello, allow_nan=False).encode() + b"\n"
        started = time.monotonic()
        process: subprocess.Popen[bytes] | None = None
        try:
            process = _start(lock.fd, lock.report)
            _hello(process, message)
        except BaseException as exc:
            # Never leave a guardian behind: it would hold the lock, then report an interrupted reset.
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            if not isinstance(exc, (OSError, ValueError)):
                raise  # an interrupt, a bug: not a reason to go on unguarded
            client.warn(f"pipeline {target.pipeline_id}", _unguarded(exc))
            return NO_GUARD
        detail = f"pid {process.pid}: starts the pipeline again if this process ends before the reset does"
        elapsed = time.monotonic() - started
        client.emit(RequestEvent(GUARD, f"pipeline {target.pipeline_id}", "started", elapsed, detail=detail))
        return Guard(process)


def _start(lock_fd: int, report_path: Path) -> subprocess.Popen[bytes]:
    """The guardian process: its own session, the lock handed over, stderr to the report file, an
    environment without credentials."""
    env = {key: value for key, value in os.environ.items() if key.upper() in _ENV_KEPT}
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
    report = os.open(report_path, flags, 0o600)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "enos_pulumi.guardian_main"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=report,
            pass_fds=(lock_fd,),
            start_new_session=True,
            env=env,
            cwd=os.getcwd(),
        )
    finally:
        os.close(report)


def _hello(process: subprocess.Popen[bytes], message: bytes) -> None:
    """Send the start message, then wait (bounded) for the guardian to say it is watching: one that could
    not start (no importable package, a broken interpreter) must not be counted on. Raises OSError."""
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(message)
        process.stdin.flush()
    except BrokenPipeError:
        pass  # it ended before reading: the readiness check below says so
    ready, _, _ = select.select([process.stdout], [], [], _READY_TIMEOUT_S)
    line = process.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        process.kill()
        process.wait()
        raise OSError(f"the guardian process did not start (exit status {process.returncode})")
    process.stdout.close()


def _unguarded(exc: BaseException) -> str:
    return (
        f"no guardian for this reset ({type(exc).__name__}: {exc}): if this process is killed while the "
        f"pipeline is paused, it stays PAUSED"
    )
