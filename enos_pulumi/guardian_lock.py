"""This machine's lock on one pipeline's pause (used by :mod:`enos_pulumi.guardian`), and the private
directory it lives in.

Two resets on one machine coordinate only through this directory, so every process of a user must
pick the same one, and no other user may be able to create, replace or write it (they could hold the
lock forever, or plant a report). The first of these that is a private directory of this user
(owned by them, mode 0700 or stricter, not a symlink; created 0700 when missing) is used:

1. ``$TMPDIR/enos-pulumi-<uid>`` (where earlier versions kept it);
2. ``~/.cache/enos-pulumi``: no other user can create it, unlike a name in a shared temp dir.

A candidate is refused or accepted by what is on disk, the same for every process of the user with
the same ``TMPDIR`` and ``HOME``; one refused (another user made it first in a sticky ``/tmp``, or a
mode that lets others in) is never used, and if none is usable the reset is warned with the remedy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .enos.client import EnosClient, RequestEvent
from .enos.errors import EnosError
from .enos.model import StageTarget

__all__ = ["GUARD", "NoPrivateDirectory", "PipelineLock", "acquire", "candidates", "private_directory"]

GUARD = "Guard"
_REPORT_MAX = 4096


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


class NoPrivateDirectory(OSError):
    """No candidate directory for the locks is private to this user; the text says why and what to do."""


def candidates() -> list[Path]:
    """Where the locks may live, in order of preference (see the module's docstring)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    found = [Path(tempfile.gettempdir()) / f"enos-pulumi-{uid}"]
    with contextlib.suppress(RuntimeError):  # no home directory to be found
        found.append(Path.home() / ".cache" / "enos-pulumi")
    return found


def _refusal(path: Path, uid: int) -> str | None:
    """Why ``path`` (created 0700 if missing) is not a private directory of this user, or None."""
    try:
        path.parent.mkdir(exist_ok=True)  # ~/.cache, in a home directory that exists
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
    except OSError as exc:
        return f"{path} cannot be made ({exc.strerror or type(exc).__name__})"
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symlink: remove it"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory: remove it"
    if info.st_uid != uid:
        return (
            f"{path} belongs to another user (uid {info.st_uid}), who may have made it to disable this: "
            f"have it removed (by its owner or root)"
        )
    if info.st_mode & 0o077:
        return f"{path} lets other users in (mode {stat.S_IMODE(info.st_mode):o}): chmod 700 {path}"
    return None


def private_directory(paths: Sequence[Path]) -> Path:
    """The first of ``paths`` that is a private directory of this user; raises NoPrivateDirectory, naming
    each and its remedy, if none is."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    refusals = []
    for path in paths:
        refusal = _refusal(path, uid)
        if refusal is None:
            return path
        refusals.append(refusal)
    raise NoPrivateDirectory(
        "no private directory for its lock: " + "; ".join(refusals) + " (or set TMPDIR to a directory "
        "only you can write, mode 700)"
    )


def acquire(client: EnosClient, target: StageTarget, directory: Path, bound: float) -> PipelineLock:
    """Wait up to ``bound`` seconds for this machine's lock on the pipeline in ``directory``, then show
    what an earlier run's guardian of it reported. Raises ImportError (no ``fcntl``), OSError, or an
    EnosError when another reset held the lock throughout."""
    import fcntl

    base = directory / _key(client.settings.api_gateway, target)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(base.with_suffix(".lock"), flags, 0o600)
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


def _key(gateway: str, target: StageTarget) -> str:
    return hashlib.sha256(f"{gateway}\n{target.org_id}\n{target.pipeline_id}".encode()).hexdigest()[:32]


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
