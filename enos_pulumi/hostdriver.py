"""Drive Pulumi's real dynamic provider host over gRPC, the way the engine does, without the Pulumi CLI.

Used by the test suite, ``make demo`` and the benchmarks. :class:`ProviderHost` starts
``python -u -m pulumi.dynamic`` (the program the CLI's ``pulumi-resource-pulumi-python`` runs) and calls
its gRPC service; :class:`MiniEngine` keeps per-resource state and sequences Check/Diff/Create/Update/
Read/Delete like ``pulumi preview/up/refresh/destroy`` do. Not a full engine: one provider, no
dependency graph, create-before-delete replacement.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HostError", "MiniEngine", "Plan", "ProviderHost", "serialize_provider"]

SECRET_SIG = "4dabf18193072939515e22adb298388d"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
TYPE_TOKEN = "pulumi-python:dynamic/enos:StageStateReset"


class HostError(Exception):
    """A gRPC call to the host failed; ``details`` is what the user would read (a traceback)."""

    def __init__(self, method: str, details: str) -> None:
        super().__init__(f"{method} failed in the provider host:\n{details}")
        self.method = method
        self.details = details


def serialize_provider(provider: Any) -> str:
    """The ``__provider`` string, produced exactly as ``pulumi.dynamic.Resource`` produces it."""
    from pulumi.dynamic.dynamic import serialize_provider as pulumi_serialize
    from pulumi.runtime._serialization import _serialize

    serialized, _contains_secrets = _serialize(True, pulumi_serialize, provider)
    return str(serialized)


def secret(value: Any) -> dict[str, Any]:
    """A secret as it travels on the wire (how the engine passes ``--secret`` config)."""
    return {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "value": value}


def _struct(props: Mapping[str, Any]) -> Any:
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(_plain(dict(props)))
    return struct


def _plain(value: Any) -> Any:
    # Struct.update wants JSON-like values; Unknown markers become the wire sentinel.
    from pulumi.output import Unknown

    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _decode(struct: Any, keep_unknowns: bool = False) -> dict[str, Any]:
    from pulumi.runtime import rpc

    return dict(rpc.deserialize_properties(struct, keep_unknowns) or {})


class ProviderHost:
    """One ``python -u -m pulumi.dynamic`` process and a gRPC stub to it.

    ``cwd`` must be where the provider's module is importable (like the program directory under the
    CLI); ``env`` is the host's environment (the CLI passes its own, so ``ENOS_*`` variables reach it).
    The host's stderr is collected in :attr:`stderr` (what ``pulumi up`` would show).
    """

    def __init__(self, cwd: str | Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.cwd = str(cwd or Path.cwd())
        base = dict(os.environ if env is None else env)
        base.setdefault("PULUMI_PROJECT", "enos-pulumi-test")
        base["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).resolve().parent.parent), base.get("PYTHONPATH")) if p
        )
        self.env = base
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr_chunks: list[str] = []
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

        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        port_line = self.process.stdout.readline().decode().strip()
        # Keep reading both pipes: a host whose pipe buffer fills up blocks on its next print.
        self._drains = [
            threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True),
            threading.Thread(target=self._drain, args=(self.process.stdout,), daemon=True),
        ]
        for thread in self._drains:
            thread.start()
        if not port_line.isdigit():
            self.process.wait(timeout=5)
            raise RuntimeError(f"provider host did not start: {port_line!r}\n{self.stderr}")
        # The engine allows 400 MiB messages (pulumi's own channel options); gRPC's default 4 MiB would
        # refuse a Check of a few hundred thousand IDs.
        limit = 400 * 1024 * 1024
        self._channel = grpc.insecure_channel(
            f"127.0.0.1:{port_line}",
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
        )
        grpc.channel_ready_future(self._channel).result(timeout=30)
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        return self

    def _drain(self, pipe: Any) -> None:
        for line in iter(pipe.readline, b""):
            self._stderr_chunks.append(line.decode(errors="replace"))

    @property
    def stderr(self) -> str:
        """What the host printed after its port line (stderr and stdout, as `pulumi up` shows both)."""
        return "".join(self._stderr_chunks)

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

    def _call(self, method: str, request: Any) -> Any:
        import grpc

        try:
            return getattr(self._stub, method)(request, timeout=600)
        except grpc.RpcError as exc:
            raise HostError(method, exc.details() or str(exc)) from None

    # -- the ResourceProvider service ------------------------------------------------------------------

    def configure(self, config: Mapping[str, Any]) -> None:
        from pulumi.runtime.proto import provider_pb2

        self._call("Configure", provider_pb2.ConfigureRequest(args=_struct(config), acceptSecrets=True))

    def check(
        self, urn: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        from pulumi.runtime.proto import provider_pb2

        reply = self._call(
            "Check", provider_pb2.CheckRequest(urn=urn, olds=_struct(olds), news=_struct(news))
        )
        return _decode(reply.inputs, keep_unknowns=True), [(f.property, f.reason) for f in reply.failures]

    def diff(
        self, urn: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]
    ) -> tuple[int, list[str]]:
        """(changes, replaces); changes is DIFF_UNKNOWN=0, DIFF_NONE=1 or DIFF_SOME=2."""
        from pulumi.runtime.proto import provider_pb2

        reply = self._call(
            "Diff", provider_pb2.DiffRequest(id=id_, urn=urn, olds=_struct(olds), news=_struct(news))
        )
        return int(reply.changes), list(reply.replaces)

    def create(self, urn: str, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        from pulumi.runtime.proto import provider_pb2

        reply = self._call("Create", provider_pb2.CreateRequest(urn=urn, properties=_struct(props)))
        return str(reply.id), _decode(reply.properties)

    def update(self, urn: str, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        from pulumi.runtime.proto import provider_pb2

        reply = self._call(
            "Update", provider_pb2.UpdateRequest(id=id_, urn=urn, olds=_struct(olds), news=_struct(news))
        )
        return _decode(reply.properties)

    def read(
        self, urn: str, id_: str, props: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        from pulumi.runtime.proto import provider_pb2

        reply = self._call(
            "Read",
            provider_pb2.ReadRequest(id=id_, urn=urn, properties=_struct(props), inputs=_struct(inputs)),
        )
        new_inputs = _decode(reply.inputs) if reply.HasField("inputs") else None
        return str(reply.id), _decode(reply.properties), new_inputs

    def delete(self, urn: str, id_: str, props: Mapping[str, Any]) -> None:
        from pulumi.runtime.proto import provider_pb2

        self._call("Delete", provider_pb2.DeleteRequest(id=id_, urn=urn, properties=_struct(props)))


DIFF_UNKNOWN, DIFF_NONE, DIFF_SOME = 0, 1, 2


@dataclass
class ResourceState:
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


@dataclass
class Plan:
    """What an up did (or a preview would do) for one resource: create, update, replace or same."""

    op: str
    replaces: list[str] = field(default_factory=list)
    outputs: dict[str, Any] | None = None


class MiniEngine:
    """Per-resource state and the engine's call order, over a :class:`ProviderHost`."""

    def __init__(self, host: ProviderHost, stack: str = "dev", project: str = "enos-pulumi-test") -> None:
        self.host = host
        self.stack = stack
        self.project = project
        self.state: dict[str, ResourceState] = {}

    def urn(self, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{TYPE_TOKEN}::{name}"

    def _checked(self, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        old = self.state.get(name)
        checked, failures = self.host.check(self.urn(name), old.inputs if old else {}, inputs)
        if failures:
            raise ValueError("check failed: " + "; ".join(f"{p}: {r}" for p, r in failures))
        return checked

    def preview(self, name: str, inputs: Mapping[str, Any]) -> Plan:
        """Check and Diff only, as ``pulumi preview`` (the host does not run Create/Update in preview)."""
        checked = self._checked(name, inputs)
        old = self.state.get(name)
        if old is None:
            return Plan("create")
        changes, replaces = self.host.diff(self.urn(name), old.id, old.outputs, checked)
        if changes == DIFF_NONE:
            return Plan("same")
        return Plan("replace" if replaces else "update", replaces)

    def up(self, name: str, inputs: Mapping[str, Any]) -> Plan:
        """One resource's part of ``pulumi up``: check, diff, then create/update/replace or nothing."""
        urn = self.urn(name)
        checked = self._checked(name, inputs)
        old = self.state.get(name)
        if old is None:
            id_, outs = self.host.create(urn, checked)
            self.state[name] = ResourceState(id_, checked, outs)
            return Plan("create", outputs=outs)
        changes, replaces = self.host.diff(urn, old.id, old.outputs, checked)
        if changes == DIFF_NONE:
            # The engine records the new inputs and keeps the old outputs.
            self.state[name] = ResourceState(old.id, checked, old.outputs)
            return Plan("same", outputs=old.outputs)
        if replaces:
            id_, outs = self.host.create(urn, checked)  # create-before-delete, the default
            self.host.delete(urn, old.id, old.outputs)
            self.state[name] = ResourceState(id_, checked, outs)
            return Plan("replace", replaces, outs)
        outs = self.host.update(urn, old.id, old.outputs, checked)
        self.state[name] = ResourceState(old.id, checked, outs)
        return Plan("update", outputs=outs)

    def refresh(self, name: str) -> dict[str, Any]:
        old = self.state[name]
        id_, outs, new_inputs = self.host.read(self.urn(name), old.id, old.outputs, old.inputs)
        self.state[name] = ResourceState(id_, new_inputs if new_inputs is not None else old.inputs, outs)
        return outs

    def destroy(self, name: str) -> None:
        old = self.state.pop(name)
        self.host.delete(self.urn(name), old.id, old.outputs)


def capture_program(
    program_dir: str | Path, config: Mapping[str, Any], project: str, stack: str = "dev"
) -> dict[str, dict[str, Any]]:
    """Run a Pulumi program under ``pulumi.runtime`` mocks and return each registered resource's inputs.

    The program really runs (its config reads, its ``StageStateReset`` constructors, the provider's
    pickling); only the engine is replaced, so what it registers can be fed to a :class:`MiniEngine`.
    Config values that are not strings are JSON-encoded, as ``pulumi config set --path`` stores them.
    """
    import json
    import runpy

    from pulumi.runtime import config as runtime_config
    from pulumi.runtime import mocks
    from pulumi.runtime import settings as runtime_settings

    captured: dict[str, dict[str, Any]] = {}

    class Capture(mocks.Mocks):
        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            captured[args.name] = dict(args.inputs)
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            return {}, None

    runtime_config.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    )
    mocks.set_mocks(Capture(), project=project, stack=stack, preview=False)
    main = Path(program_dir) / "__main__.py"

    def run() -> None:
        runpy.run_path(str(main), run_name="__main__")

    try:
        mocks.test(run)()  # type: ignore[no-untyped-call]
    finally:
        # Leave no mocks or config behind for whatever runs next in this process.
        runtime_config.set_all_config({}, [])
        runtime_settings.reset_options(
            project="project", stack="stack", root_directory="root_directory", organization="organization"
        )
    return captured
