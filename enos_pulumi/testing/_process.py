"""How a provider host process is started so that it never outlives the test process.

The CLI's plugins end with the CLI. A test process killed by a CI job's SIGTERM (or SIGKILL) runs no
cleanup, so on Linux each host is started with ``PR_SET_PDEATHSIG``: the kernel kills it when its parent
dies. That signal fires when the *thread* that forked the child ends, so every host is forked by one
worker thread that lives as long as the process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["DYNAMIC_HOST_COMMAND", "die_with_parent", "spawn_thread"]

#: What the CLI's ``pulumi-resource-pulumi-python`` plugin runs.
DYNAMIC_HOST_COMMAND = ("-u", "-m", "pulumi.dynamic")
_PR_SET_PDEATHSIG = 1
_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def spawn_thread() -> ThreadPoolExecutor:
    """One worker thread that forks every host and lives as long as this process: a host started from a
    short-lived thread would otherwise get its parent-death signal when that thread ends."""
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enos-provider-host-spawner")
        return _spawner


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: nothing is imported in the child
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm
