"""Guardians: a pipeline paused for a reset is started again even if the process that paused it is killed.

The Pulumi provider host runs provider calls on gRPC worker threads, so it cannot install signal
handlers, and nothing inside a process outlives SIGKILL. So a reset that pauses a pipeline first starts a
guardian, a small process of its own (:mod:`enos_pulumi.guardian_main`):

- in a session of its own, so the Pulumi CLI killing the host's process group does not take it;
- handed the connection settings over a pipe (never argv, the environment or a file; its environment
  keeps only what runs Python and reaches EnOS: no ``ENOS_*`` variable, no other credential), and told
  the reset's progress over the same pipe: ``pausing`` (a pause may be going out), ``paused``,
  ``starting``, ``done``;
- if the pipe closes before ``done`` (the host is gone), it reads the status and starts the pipeline
  only if it is PAUSED (in ``pausing``, after waiting, bounded, for a pause that may still take effect),
  then exits. A start already under way is not duplicated: EnOS refuses a second one (61121, 61165).

One reset pauses a pipeline per machine at a time: the pausing reset takes a lock (``flock`` on a file
named by a hash of gateway, org and pipeline, in a private directory under the temp dir) and hands it
to its guardian, which holds it until it exits. So the next ``pulumi up`` on this machine waits for an
earlier run's guardian to finish, then shows what it did (it writes that next to the lock).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from .enos.client import EnosClient, RequestEvent
from .enos.errors import EnosError
from .enos.model import StageTarget

__all__ = ["GUARD", "NO_GUARD", "Guard", "Guardians", "PipelineLock"]

GUARD = "Guard"
#: How long a reset waits for another reset's lock on the pipeline (an earlier run's guardian restoring
#: it, or another ``pulumi up`` on this machine resetting it), beyond two operation timeouts.
_LOCK_SLACK_S = 60.0
_REPORT_MAX = 4096
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
            except OSError:
                pass

    def done(self) -> None:
        """The pipeline is as the reset leaves it: the guardian exits (and frees the pipeline's lock)."""
        self.phase("done")
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass  # it exits on its own once the pipe is closed


NO_GUARD = Guard()


class PipelineLock:
    """This machine's lock on one pipeline's pause, while this process holds it (``fd``)."""

    def __init__(self, fd: int | None = None, report: Path | None = None) -> None:
        self.fd = fd
        self.report = report

    def release(self) -> None:
        """Close this process's hold; a guardian it was handed to keeps the lock until it exits."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)


class Guardians:
    """Locks and guardians for the pipelines this process pauses."""

    def __init__(self, directory: Path | None = None, lock_slack: float = _LOCK_SLACK_S) -> None:
        self._directory = directory
        self._slack = lock_slack

    def _dir(self) -> Path:
        uid = os.getuid() if hasattr(os, "getuid") else 0
        path = self._directory or Path(tempfile.gettempdir()) / f"enos-pulumi-{uid}"
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
        # A directory another user made (or a symlink) in a shared temp dir is not ours to trust.
        if path.is_symlink() or info.st_uid != uid or info.st_mode & 0o077:
            raise OSError(f"{path} is not a private directory of this user")
        return path

    def lock(self, client: EnosClient, target: StageTarget) -> PipelineLock:
        """Wait (bounded) for this machine's lock on the pipeline, then show what an earlier run's
        guardian of it reported. Without locks (no ``fcntl``, no private directory) a warning says so."""
        try:
            import fcntl

            base = self._dir() / _key(client.settings.api_gateway, target)
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(base.with_suffix(".lock"), flags, 0o600)
        except (ImportError, OSError) as exc:
            client.warn(f"pipeline {target.pipeline_id}", _unguarded(exc))
            return PipelineLock()
        bound = 2 * client.settings.operation_timeout + self._slack
        where = f"pipeline {target.pipeline_id}"
        until, waited = time.monotonic() + bound, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= until:
                    os.close(fd)
                    raise _busy(target, bound) from None
                if not waited:
                    waited = True
                    detail = f"another reset of it on this machine holds it; waiting up to {bound:g} s"
                    client.emit(RequestEvent(GUARD, where, "waiting", 0.0, detail=detail))
                time.sleep(0.1)
        lock = PipelineLock(fd, base.with_suffix(".report"))
        _show_report(client, target, lock.report)
        return lock

    def spawn(
        self, client: EnosClient, target: StageTarget, resume: dict[str, Any], lock: PipelineLock, phase: str
    ) -> Guard:
        """Start a guardian for the pipeline, handing it the lock; :data:`NO_GUARD` (and a warning) if
        that cannot be done: the reset goes on, unguarded, as before guardians existed."""
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
        started = time.monotonic()
        process: subprocess.Popen[bytes] | None = None
        try:
            process = _start(lock.fd, lock.report)
            assert process.stdin is not None
            try:
                process.stdin.write(json.dumps(hello).encode() + b"\n")
                process.stdin.flush()
            except BrokenPipeError:
                pass  # it ended before reading: the readiness check below says so
            _await_ready(process)
        except (OSError, ValueError) as exc:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
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


def _await_ready(process: subprocess.Popen[bytes]) -> None:
    """Wait (bounded) for the guardian to say it is watching: one that could not start (no importable
    package, a broken interpreter) must not be counted on. Raises OSError, having ended it."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], _READY_TIMEOUT_S)
    line = process.stdout.readline() if ready else b""
    if line.strip() != b"ready":
        process.kill()
        process.wait()
        raise OSError(f"the guardian process did not start (exit status {process.returncode})")
    process.stdout.close()


def _key(gateway: str, target: StageTarget) -> str:
    return hashlib.sha256(f"{gateway}\n{target.org_id}\n{target.pipeline_id}".encode()).hexdigest()[:32]


def _unguarded(exc: BaseException) -> str:
    return (
        f"no guardian for this reset ({type(exc).__name__}: {exc}): if this process is killed while the "
        f"pipeline is paused, it stays PAUSED"
    )


def _busy(target: StageTarget, bound: float) -> EnosError:
    return EnosError(
        f"Stage state reset of pipeline {target.pipeline_id} not attempted: another reset of it on this "
        f"machine (an earlier, interrupted run's guardian, or another pulumi up) held it for {bound:g} s. "
        f"Nothing was paused or deleted; run pulumi up again once it is done."
    )


def _show_report(client: EnosClient, target: StageTarget, path: Path | None) -> None:
    """What an earlier guardian of this pipeline did after its host disappeared, once, as a warning."""
    if path is None:
        return
    try:
        with open(path, "r+b") as report:
            text = report.read(_REPORT_MAX).decode(errors="replace").strip()
            report.truncate(0)
    except OSError:
        return
    if text:
        lines = "".join(f"\n    {line.strip()}" for line in text.splitlines() if line.strip())
        client.warn(
            f"pipeline {target.pipeline_id}", f"an earlier reset of it was interrupted; its guardian:{lines}"
        )
