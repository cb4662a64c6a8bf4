"""How a provider host process is started so that it never outlives the test process.

The CLI's plugins end with the CLI. A test process killed by a CI job's SIGTERM (or SIGKILL) runs no
cleanup, so on Linux each host is started with ``PR_SET_PDEATHSIG``: the kernel kills it when its parent
dies. That signal fires when the *thread* that forked the child ends, so every host is forked by one
worker thread that lives as long as the process.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["DYNAMIC_HOST_COMMAND", "die_with_parent", "spawn_thread"]

#: What the CLI's ``pulumi-resource-pulumi-python`` plugin runs.
DYNAMIC_HOST_COMMAND = ("-u", "-m", "pulumi.dynamic")
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


# Run by a small interpreter that then becomes the host (execvp keeps the pid, the pipes and the signal):
# arming the signal in the host's own process instead of in a preexec_fn keeps Python's fork handlers
# (gRPC registers some) out of the child, and lets subprocess use vfork/posix_spawn.
_ARM = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"  # the parent died before the signal was armed
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def die_with_parent(command: list[str]) -> list[str]:
    """``command``, started so that the kernel SIGKILLs it when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-S", "-c", _ARM, str(os.getpid()), *command]
