"""``pulumi-resource-enos``: serve the provider the way the Pulumi CLI starts a resource plugin.

The CLI runs ``pulumi-resource-enos [--logtostderr] [-v=N] [--tracing URL] <engine address>`` and reads
the port of the gRPC server from the first line of stdout; everything else the plugin prints goes to
stderr, which ``pulumi up`` shows. On SIGTERM or SIGINT the plugin stops taking calls and waits for the
resets under way to finish (a pipeline it paused is started again) before it exits.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

__all__ = ["Args", "main", "parse_args", "plugin_version"]

#: What Pulumi's own gRPC channels allow per message: a million IDs cross in one.
MAX_MESSAGE_BYTES = 400 * 1024 * 1024
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
    print("pulumi-resource-enos: stopping; resets under way finish first", file=sys.stderr, flush=True)
    server.stop(grace=None)
    executor.shutdown(wait=True)  # a reset cut off here could leave its pipeline paused
    return 0
