"""Pulumi's dynamic provider host (``python -u -m pulumi.dynamic``) as a process with a gRPC stub.

This is the program the CLI's ``pulumi-resource-pulumi-python`` plugin runs in the program's virtualenv;
:class:`ProviderHost` starts it the same way (cwd the program directory, ``PULUMI_PROJECT`` set, the
caller's environment) and exposes the ResourceProvider calls with plain Python values. It does no
engine work: which calls to make, in which order and with which secrets stripped is
:class:`~enos_pulumi.testing.Engine`'s job.

Like the engine (``provider_plugin.go`` calls the plugin with a context that carries no deadline), no
call is cut short unless the caller sets ``call_timeout``. The host dies with the test process (see
``_process``), so a CI job's SIGTERM or SIGKILL leaves no ``python -m pulumi.dynamic`` behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._process import DYNAMIC_HOST_COMMAND, die_with_parent, spawn_thread
from ._replies import DiffReply, HostError
from ._wire import decode, to_struct

__all__ = ["DiffReply", "HostError", "ProviderHost"]

#: What the engine allows per gRPC message (Pulumi's own channel options): 400 MiB.
MAX_MESSAGE_BYTES = 400 * 1024 * 1024


class ProviderHost:
    """One ``python -u -m pulumi.dynamic`` process and a gRPC stub to it.

    ``cwd`` is the program directory (the host imports the provider's module from there or from the
    virtualenv); ``env`` is the host's environment (the CLI passes its own, so ``ENOS_*`` variables reach
    the provider). ``command`` starts another provider plugin instead (any executable that prints its
    port as its first stdout line and serves the ResourceProvider service). ``call_timeout`` (seconds)
    bounds each call; the default, None, waits as long as the engine does: without limit, leaving the
    bound to the provider's own settings. What the host prints after its port line is collected in
    :attr:`stderr`, as ``pulumi up`` shows it. :attr:`calls` lists the RPCs made, in order, as
    ``(method, urn)``.
    """

    def __init__(
        self,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        *,
        command: Sequence[str] | None = None,
        call_timeout: float | None = None,
    ) -> None:
        self.cwd = str(cwd or Path.cwd())
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("PULUMI_PROJECT", "project")
        self.command = list(command) if command is not None else [sys.executable, *DYNAMIC_HOST_COMMAND]
        self.call_timeout = call_timeout
        self.process: subprocess.Popen[bytes] | None = None
        #: Whether the host declared it accepts secrets (``Configure``); the dynamic host says no.
        self.accept_secrets = False
        self.calls: list[tuple[str, str]] = []
        self._output: list[str] = []
        self._drains: list[threading.Thread] = []
        self._stub: Any = None
        self._channel: Any = None

    def __enter__(self) -> ProviderHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> ProviderHost:
        import grpc
        from pulumi.runtime.proto import provider_pb2_grpc

        self.process = spawn_thread().submit(self._popen).result()
        assert self.process.stdout is not None and self.process.stderr is not None
        port_line = self.process.stdout.readline().decode().strip()
        # Keep reading both pipes: a host whose pipe buffer fills up blocks on its next print.
        self._drains = [
            threading.Thread(target=self._drain, args=(pipe,), daemon=True)
            for pipe in (self.process.stderr, self.process.stdout)
        ]
        for thread in self._drains:
            thread.start()
        if not port_line.isdigit():
            self.stop()
            raise RuntimeError(f"provider host did not start: {port_line!r}\n{self.stderr}")
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port_line}", options=options)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=30)
        except BaseException:
            self.stop()
            raise
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        return self

    def _popen(self) -> subprocess.Popen[bytes]:
        # A process group of its own, as the CLI starts every plugin (and kills it: the whole group).
        group: dict[str, Any] = {}
        if os.name == "posix":
            group = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}
        return subprocess.Popen(  # noqa: S603 - the kit's own command or the caller's
            die_with_parent(self.command),
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **group,
        )

    def _drain(self, pipe: Any) -> None:
        for line in iter(pipe.readline, b""):
            self._output.append(line.decode(errors="replace"))

    @property
    def stderr(self) -> str:
        """What the host printed after its port line (stderr and stdout, as ``pulumi up`` shows both)."""
        return "".join(self._output)

    @property
    def stub(self) -> Any:
        """The raw ``ResourceProviderStub`` (to time RPCs without this class's conversions)."""
        return self._stub

    def kill(self, sig: int = signal.SIGKILL, *, group: bool = True) -> None:
        """End the host as a second Ctrl-C (or a killed CI job) ends the CLI and its plugins: SIGKILL to
        the host's process group. ``sig=signal.SIGTERM, group=False`` is a runner or Kubernetes sending
        SIGTERM to the host alone; ``signal.SIGINT`` lets the host finish its calls before it exits."""
        if self.process is None or self.process.poll() is not None:
            return
        if group and hasattr(os, "killpg"):
            os.killpg(self.process.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            for thread in self._drains:
                thread.join(timeout=5)
            for pipe in (self.process.stdout, self.process.stderr):
                if pipe is not None:
                    pipe.close()

    def _call(self, method: str, request: Any, urn: str = "") -> Any:
        import grpc

        self.calls.append((method, urn))
        try:
            return getattr(self._stub, method)(request, timeout=self.call_timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED and self.call_timeout is not None:
                error = HostError(
                    method,
                    f"no answer from the provider host within {self.call_timeout:g} s (the testing kit's "
                    "call_timeout; Pulumi's engine itself waits without limit)",
                    exc.code().name,
                )
                error.error_type = "CallTimeout"
                raise error from None
            raise HostError(method, exc.details() or str(exc), exc.code().name) from None

    # -- the ResourceProvider service, plain values in and out ------------------------------------------

    def configure(self, config: Mapping[str, Any]) -> bool:
        """Send the stack config as the engine does (secrets in wire form, ``acceptSecrets=True``);
        returns whether the host accepts secrets."""
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.ConfigureRequest(
            args=to_struct(config),
            variables={key: str(value) for key, value in config.items() if isinstance(value, str)},
            acceptSecrets=True,
            acceptResources=True,
        )
        reply = self._call("Configure", request)
        self.accept_secrets = bool(reply.acceptSecrets)
        return self.accept_secrets

    def cancel(self) -> None:
        """What the CLI sends on the first Ctrl-C (the dynamic host ignores it)."""
        from google.protobuf import empty_pb2

        self._call("Cancel", empty_pb2.Empty())

    def check(
        self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.CheckRequest(urn=urn, olds=to_struct(olds), news=to_struct(news))
        reply = self._call("Check", request, urn)
        return decode(reply.inputs, keep_unknowns=True), [(f.property, f.reason) for f in reply.failures]

    def diff(
        self,
        urn: str,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
        ignore_changes: list[str] | None = None,
    ) -> DiffReply:
        """``olds`` are the stored outputs, ``news`` the checked new inputs."""
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.DiffRequest(
            id=id_,
            urn=urn,
            olds=to_struct(olds),
            news=to_struct(news),
            old_inputs=to_struct(old_inputs or {}),
            ignoreChanges=list(ignore_changes or []),
        )
        reply = self._call("Diff", request, urn)
        detailed = {path: int(diff.kind) for path, diff in reply.detailedDiff.items()}
        return DiffReply(
            int(reply.changes),
            list(reply.replaces),
            list(reply.diffs),
            bool(reply.deleteBeforeReplace),
            detailed if reply.hasDetailedDiff else {},
        )

    def create(self, urn: str, props: Mapping[str, Any], timeout: float = 0) -> tuple[str, dict[str, Any]]:
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.CreateRequest(urn=urn, properties=to_struct(props), timeout=timeout)
        reply = self._call("Create", request, urn)
        return str(reply.id), decode(reply.properties)

    def update(
        self,
        urn: str,
        id_: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
        timeout: float = 0,
    ) -> dict[str, Any]:
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.UpdateRequest(
            id=id_,
            urn=urn,
            olds=to_struct(olds),
            news=to_struct(news),
            old_inputs=to_struct(old_inputs or {}),
            timeout=timeout,
        )
        return decode(self._call("Update", request, urn).properties)

    def read(
        self, urn: str, id_: str, props: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """(id, outputs, inputs or None if the provider returned none); an empty id means "gone"."""
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.ReadRequest(
            id=id_, urn=urn, properties=to_struct(props), inputs=to_struct(inputs)
        )
        reply = self._call("Read", request, urn)
        new_inputs = decode(reply.inputs) if reply.HasField("inputs") else None
        return str(reply.id), decode(reply.properties), new_inputs

    def delete(
        self,
        urn: str,
        id_: str,
        props: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
        timeout: float = 0,
    ) -> None:
        from pulumi.runtime.proto import provider_pb2

        request = provider_pb2.DeleteRequest(
            id=id_,
            urn=urn,
            properties=to_struct(props),
            old_inputs=to_struct(old_inputs or {}),
            timeout=timeout,
        )
        self._call("Delete", request, urn)
