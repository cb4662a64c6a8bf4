"""``pulumi-resource-enos``: serve the provider the way the Pulumi CLI starts a resource plugin.

The CLI runs ``pulumi-resource-enos [--logtostderr] [-v=N] [--tracing URL] <engine address>`` and reads
the port of the gRPC server from the first line of stdout; everything else the plugin prints goes to
stderr, which ``pulumi up`` shows. On SIGTERM or SIGINT the plugin refuses new resets, waits for those
under way to finish (a pipeline one paused is started again), delivers their answers to the engine (which
records the resets: nothing is reset twice), and exits.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

    from .service import EnosProvider

__all__ = ["ANSWER_GRACE_SECONDS", "Args", "main", "parse_args", "plugin_version"]

#: What Pulumi's own gRPC channels allow per message: a million IDs cross in one.
MAX_MESSAGE_BYTES = 400 * 1024 * 1024
#: Once the resets under way have returned, the time their answers and any other call in flight (a
#: Check, a Diff: seconds at most, even of a million IDs) get to reach the engine before the plugin exits.
ANSWER_GRACE_SECONDS = 30.0
#: Flags the CLI may pass that take a value of their own.
_VALUE_FLAGS = frozenset({"--tracing"})


@dataclass(frozen=True)
class Args:
    engine_address: str | None
    show_version: bool = False


def parse_args(argv: Sequence[str]) -> Args:
    """The engine address (the first argument that is not a flag); the CLI's logging and tracing flags
    (``--logtostderr``, ``--logflow``, ``-v=9``, ``--tracing <endpoint>``) are accepted and ignored."""
    engine: str | None = None
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--version":
            return Args(engine, show_version=True)
        elif arg in _VALUE_FLAGS:
            skip = True
        elif not arg.startswith("-") and engine is None:
            engine = arg
    return Args(engine)


def plugin_version() -> str:
    try:
        return version("enos-pulumi")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.show_version:
        print(plugin_version())
        return 0
    import grpc
    from pulumi.runtime.proto import provider_pb2_grpc

    from .service import MAX_RESETS, EnosProvider

    provider = EnosProvider(plugin_version())
    provider.engine_address = args.engine_address
    executor = futures.ThreadPoolExecutor(max_workers=2 * MAX_RESETS, thread_name_prefix="enos-rpc")
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    server = grpc.server(executor, options=options)
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(provider, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    sys.stdout = sys.stderr  # the engine reads the port line only: anything else printed is a log line
    while not stop.wait(1.0):
        pass
    _stop(provider, server)
    executor.shutdown(wait=True)
    return 0


def _stop(provider: EnosProvider, server: grpc.Server) -> None:
    """Refuse new resets, let those under way finish, then stop serving once their answers are out.

    The server keeps serving while the resets run, so a reset's answer is delivered and a Create that
    arrives meanwhile is refused with a clear error rather than cut off. The wait has no bound of its
    own: each reset ends within the bounds of its settings (``enos:resetTimeoutSeconds`` for its
    deletes, ``enos:operationTimeoutSeconds`` for each pause, start and wait), and the process could not
    end any sooner (a reset's thread must finish, to start a paused pipeline again); an answer cut off
    would only make the next ``pulumi up`` reset again. SIGKILL still ends the plugin at once.
    """
    under_way = provider.stop_resets()
    print(
        f"pulumi-resource-enos: stopping; {under_way} reset(s) under way finish first and their answers "
        "are delivered; new resets are refused",
        file=sys.stderr,
        flush=True,
    )
    provider.wait_for_resets()
    server.stop(grace=ANSWER_GRACE_SECONDS).wait()
