"""A stack of a Pulumi program, driven like the CLI drives it: ``preview``, ``up``, ``refresh``, ``destroy``.

Every command starts a fresh provider host configured with the stack config (the CLI starts the
``pulumi-resource-pulumi-python`` plugin anew for every command), runs the program with the mock runtime
and hands each dynamic resource's registration to the :class:`Engine`. State (inputs, outputs, secrets
in wire form, pending creates) lives on the :class:`ProgramStack` between commands, like a backend.
Resources of other providers are recorded with their inputs as outputs (or ``other_resources`` answers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._engine import Engine, ResourceState, Step
from ._host import ProviderHost
from ._program import Registration, _config_strings, run_program
from ._wire import contains_secrets, reveal, secret, to_wire

__all__ = ["ProgramStack", "UpdateResult"]

DYNAMIC_PREFIX = "pulumi-python:dynamic/"
OtherResources = Callable[[Registration, bool], tuple[str, Mapping[str, Any]]]


@dataclass
class UpdateResult:
    """What one command did: a :class:`Step` per resource, the stack's exports (plain values; the
    secret ones named in ``secret_outputs``), the provider host's output and the engine's warnings."""

    command: str
    steps: dict[str, Step] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: frozenset[str] = frozenset()
    host_output: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def ops(self) -> dict[str, str]:
        """Resource name -> ``create``/``update``/``replace``/``same``/``delete``."""
        return {name: step.op for name, step in self.steps.items()}


def _project_name(program_dir: Path) -> str:
    import yaml

    document = yaml.safe_load((program_dir / "Pulumi.yaml").read_text(encoding="utf-8"))
    return str(document["name"])


def _echo(registration: Registration, preview: bool) -> tuple[str, Mapping[str, Any]]:
    # A new resource of another provider has no id during preview: the program sees it as unknown.
    return ("" if preview else f"{registration.name}-id"), registration.inputs


class ProgramStack:
    """One stack of the program in ``program_dir`` (its ``__main__.py``; ``project`` defaults to the name in
    its ``Pulumi.yaml``). ``config`` and ``secret_config`` are the stack config (bare keys belong to the
    project, ``enos:...`` keys to the provider); ``env`` is the environment the provider host gets
    (default: this process's)."""

    def __init__(
        self,
        program_dir: str | Path,
        *,
        project: str | None = None,
        stack: str = "dev",
        config: Mapping[str, Any] | None = None,
        secret_config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        other_resources: OtherResources = _echo,
    ) -> None:
        self.program_dir = Path(program_dir)
        self.project = project or _project_name(self.program_dir)
        self.stack = stack
        self.config: dict[str, Any] = dict(config or {})
        self.secret_config: dict[str, Any] = dict(secret_config or {})
        self.env = env
        self.other_resources = other_resources
        #: The stack's state: dynamic resources by name (like the engine's checkpoint).
        self.state: dict[str, ResourceState] = {}
        self.pending_creates: dict[str, dict[str, Any]] = {}
        #: Other providers' resources: name -> (id, outputs).
        self.others: dict[str, tuple[str, dict[str, Any]]] = {}
        #: Replaced resources whose Delete has not run yet (the update failed before it).
        self.pending_deletes: list[tuple[str, ResourceState]] = []
        self.exports: dict[str, Any] = {}
        #: What the provider host printed during the last command (also when it raised).
        self.last_host_output = ""
        self._lock = threading.Lock()

    # -- the commands ----------------------------------------------------------------------------------

    def preview(self, *, replace: Iterable[str] = ()) -> UpdateResult:
        """``pulumi preview``: Check and Diff only; the state is left as it is."""
        return self._run("preview", set(replace), None)

    def up(self, *, replace: Iterable[str] = (), interrupt: threading.Event | None = None) -> UpdateResult:
        """``pulumi up`` (``replace``: resource names or URNs, as ``--replace``). ``interrupt``: see
        :meth:`Engine.up`."""
        return self._run("up", set(replace), interrupt)

    def refresh(self, *, clear_pending_creates: bool = False) -> UpdateResult:
        """``pulumi refresh`` (``--clear-pending-creates``): Read and the refresh diff for every resource."""
        with self._session() as (host, engine):
            result = UpdateResult("refresh")
            if clear_pending_creates:
                engine.clear_pending_creates()
            else:
                result.warnings += engine.pending_warnings()
            for name in list(self.state):
                result.steps[name] = engine.refresh(name)
        result.host_output = host.stderr  # complete once the host has stopped
        return result

    def destroy(self) -> UpdateResult:
        """``pulumi destroy``: Delete every resource (last created first) and forget it."""
        with self._session() as (host, engine):
            result = UpdateResult("destroy")
            for name, old in self.pending_deletes:
                engine.delete_state(name, old)
            self.pending_deletes.clear()
            for name in reversed(list(self.state)):
                result.steps[name] = engine.destroy(name)
            for name in self.others:
                result.steps[name] = Step(name, "delete")
            self.others.clear()
            self.exports = {}
        result.host_output = host.stderr
        return result

    # -- machinery -------------------------------------------------------------------------------------

    def host_config(self) -> dict[str, Any]:
        """The stack config as the engine passes it to the provider host's Configure."""
        config: dict[str, Any] = dict(_config_strings(self.config, self.project))
        for key, value in _config_strings(self.secret_config, self.project).items():
            config[key] = secret(value)
        return config

    def _session(self) -> _Session:
        env = dict(os.environ if self.env is None else self.env)
        env["PULUMI_PROJECT"] = self.project
        host = ProviderHost(cwd=self.program_dir, env=env).start()
        try:
            host.configure(self.host_config())
        except BaseException:
            host.stop()
            raise
        engine = Engine(
            host,
            stack=self.stack,
            project=self.project,
            state=self.state,
            pending_creates=self.pending_creates,
        )
        return _Session(host, engine, self)

    def _run(self, command: str, replace: set[str], interrupt: threading.Event | None) -> UpdateResult:
        preview = command == "preview"
        result = UpdateResult(command)
        registered: set[str] = set()
        replaced: list[tuple[str, ResourceState]] = []
        with self._session() as (host, engine):
            if not preview:
                result.warnings += engine.pending_warnings()

            def handle(registration: Registration) -> tuple[str, Mapping[str, Any]]:
                with self._lock:
                    registered.add(registration.name)
                if not registration.type.startswith(DYNAMIC_PREFIX):
                    return self._other(registration, preview, result)
                targeted = registration.name in replace or engine.urn(registration.name) in replace
                options: dict[str, Any] = {
                    "ignore_changes": registration.ignore_changes,
                    "replace_on_changes": registration.replace_on_changes,
                    "replace": targeted,
                }
                if preview:
                    step = engine.preview(registration.name, registration.inputs, **options)
                    old = self.state.get(registration.name)
                    shown = old.outputs if step.op == "same" and old else registration.inputs
                    result.steps[registration.name] = step
                    return ("" if old is None else old.id), to_wire(shown)
                create, _update, _delete = registration.timeouts
                step = engine.up(
                    registration.name,
                    registration.inputs,
                    delete_before_replace=registration.delete_before_replace,
                    timeout=create,
                    interrupt=interrupt,
                    defer_delete=True,
                    **options,
                )
                if step.replaced is not None:
                    with self._lock:
                        replaced.append((registration.name, step.replaced))
                result.steps[registration.name] = step
                stored = self.state[registration.name]
                return stored.id, stored.outputs

            exports = run_program(
                self.program_dir,
                handle,
                project=self.project,
                stack=self.stack,
                config={**self.config, **self.secret_config},
                secret_keys=self.secret_config,
                preview=preview,
            )
            if not preview:
                # Replaced resources go after every create and update, then what the program dropped.
                self.pending_deletes += replaced
                for name, old in self.pending_deletes:
                    engine.delete_state(name, old)
                self.pending_deletes.clear()
                for name in [n for n in self.state if n not in registered]:
                    result.steps[name] = engine.destroy(name)
                for name in [n for n in self.others if n not in registered]:
                    del self.others[name]
                    result.steps[name] = Step(name, "delete")
                self.exports = exports
            result.outputs = reveal(exports)
            result.secret_outputs = frozenset(
                key for key, value in exports.items() if contains_secrets(value)
            )
        result.host_output = host.stderr
        return result

    def _other(
        self, registration: Registration, preview: bool, result: UpdateResult
    ) -> tuple[str, Mapping[str, Any]]:
        old = self.others.get(registration.name)
        if old is not None and reveal(old[1]) == reveal(registration.inputs):
            result.steps[registration.name] = Step(registration.name, "same")
            return old
        id_, outputs = self.other_resources(registration, preview)
        op = "create" if old is None else "update"
        result.steps[registration.name] = Step(registration.name, op)
        if preview:
            return (old[0] if old else id_), to_wire(outputs)
        with self._lock:
            self.others[registration.name] = (id_, dict(outputs))
        return id_, outputs


@dataclass
class _Session:
    host: ProviderHost
    engine: Engine

    def __enter__(self) -> tuple[ProviderHost, Engine]:
        return self.host, self.engine

    stack: ProgramStack

    def __exit__(self, *exc: object) -> None:
        self.host.stop()
        # Kept on the stack too, for a command that raised: what `pulumi up` would have shown.
        self.stack.last_host_output = self.host.stderr
