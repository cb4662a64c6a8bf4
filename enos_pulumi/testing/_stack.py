"""A stack of a Pulumi program, driven like the CLI drives it: ``preview``, ``up``, ``refresh``, ``destroy``.

Every command starts a fresh provider host configured with the stack config (the CLI starts the
``pulumi-resource-pulumi-python`` plugin anew for every command), runs the program with the mock runtime
as the language host runs it, and hands each dynamic resource's registration to the :class:`Engine`.
``up`` runs the preview first, as ``pulumi up`` does unless ``--skip-preview``. State (inputs, outputs,
options, secrets in wire form, pending operations) lives on the :class:`ProgramStack` between commands,
like a backend. Resources of other providers are recorded with their inputs as outputs (or
``other_resources`` answers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._deployment import Deployment, OtherResources, UpdateResult
from ._engine import Engine
from ._host import ProviderHost
from ._program import Registration, _config_strings, run_program
from ._project import config_defaults, full_key, project_name
from ._steps import ResourceProtectedError, ResourceState, Step
from ._wire import contains_secrets, reveal, secret

__all__ = ["ProgramStack", "UpdateResult"]


def _echo(registration: Registration, preview: bool) -> tuple[str, Mapping[str, Any]]:
    # A new resource of another provider has no id during preview: the program sees it as unknown.
    return ("" if preview else f"{registration.name}-id"), registration.inputs


class ProgramStack:
    """One stack of the program in ``program_dir`` (the directory of its ``Pulumi.yaml``; ``project``
    defaults to the name there). ``config`` and ``secret_config`` are the stack config (bare keys belong
    to the project, ``enos:...`` keys to the provider), over the ``config:`` defaults of ``Pulumi.yaml``.
    ``env`` is the environment of both the program and the provider host, as under the CLI (default: this
    process's). ``call_timeout`` bounds each provider call (default: none, like the engine);
    ``host_command`` starts another provider plugin instead of ``python -m pulumi.dynamic``."""

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
        call_timeout: float | None = None,
        host_command: Iterable[str] | None = None,
    ) -> None:
        # Absolute: the program runs with the project directory as cwd, where a relative one means another.
        self.program_dir = Path(program_dir).resolve()
        self.project = project or project_name(self.program_dir)
        self.stack = stack
        self.config: dict[str, Any] = dict(config or {})
        self.secret_config: dict[str, Any] = dict(secret_config or {})
        self.env = env
        self.other_resources = other_resources
        self.call_timeout = call_timeout
        self.host_command = None if host_command is None else list(host_command)
        #: The stack's state: dynamic resources by name (like the engine's checkpoint).
        self.state: dict[str, ResourceState] = {}
        self.pending_creates: dict[str, dict[str, Any]] = {}
        self.pending_updates: dict[str, dict[str, Any]] = {}
        #: Type tokens of dynamic resources other than ``StageStateReset``.
        self.types: dict[str, str] = {}
        #: Other providers' resources: name -> (id, outputs).
        self.others: dict[str, tuple[str, dict[str, Any]]] = {}
        #: Replaced resources whose Delete has not succeeded yet (deleted by the next up or destroy).
        self.pending_deletes: list[tuple[str, ResourceState]] = []
        self.exports: dict[str, Any] = {}
        #: What the provider host printed during the last command (also when it raised).
        self.last_host_output = ""
        #: The last command's result, also when it raised (the steps taken before the failure).
        self.last_result: UpdateResult | None = None

    # -- the commands ----------------------------------------------------------------------------------

    def preview(self, *, replace: Iterable[str] = ()) -> UpdateResult:
        """``pulumi preview``: Check and Diff only; the state is left as it is."""
        return self._run(UpdateResult("preview"), set(replace))

    def up(
        self,
        *,
        replace: Iterable[str] = (),
        interrupt: threading.Event | None = None,
        skip_preview: bool = False,
        continue_on_error: bool = False,
    ) -> UpdateResult:
        """``pulumi up`` (``replace``: resource names or URNs, as ``--replace``): the preview first, unless
        ``skip_preview`` (``--skip-preview``), so a Check or Diff failure stops it before any change.
        After a failed step no other starts, unless ``continue_on_error`` (``--continue-on-error``: only
        what depends on the failed resource is skipped); the first failure is raised at the end.
        ``interrupt``: see :meth:`Engine.up`."""
        if skip_preview:
            return self._run(UpdateResult("up"), set(replace), interrupt, continue_on_error)
        # The update's host starts while the preview runs: that saves only the wait, it answers nothing
        # before the preview has passed.
        starting = _Starting(self._session)
        try:
            first = self.preview(replace=replace)
        except BaseException:
            starting.discard()
            raise
        result = UpdateResult("up", preview=first)
        return self._run(result, set(replace), interrupt, continue_on_error, starting.get())

    def refresh(self, *, clear_pending_creates: bool = False) -> UpdateResult:
        """``pulumi refresh`` (``--clear-pending-creates``): Read and the refresh diff for every resource."""
        with self._session() as (_host, engine):
            result = self.last_result = UpdateResult("refresh")
            if clear_pending_creates:
                engine.clear_pending_creates()
            else:
                result.warnings += engine.pending_warnings()
            for name in list(self.state):
                result.steps[name] = engine.refresh(name)
        return result

    def destroy(self) -> UpdateResult:
        """``pulumi destroy``: Delete every resource (last created first) and forget it; a protected one
        is refused (the others are still deleted) and the first refusal raised."""
        with self._session() as (_host, engine):
            result = self.last_result = UpdateResult("destroy")
            engine.delete_pending()
            refused: list[ResourceProtectedError] = []
            for name in reversed(list(self.state)):
                try:
                    result.steps[name] = engine.destroy(name)
                except ResourceProtectedError as exc:
                    refused.append(exc)
            for name in list(self.others):
                result.steps[name] = Step(name, "delete")
                del self.others[name]
            self.exports = {}
            if refused:
                raise refused[0]
        return result

    # -- machinery -------------------------------------------------------------------------------------

    def effective_config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config, secret config) under full key names, ``Pulumi.yaml``'s defaults filled in."""
        config = config_defaults(self.program_dir, self.project)
        secrets = {full_key(key, self.project): value for key, value in self.secret_config.items()}
        config.update({full_key(key, self.project): value for key, value in self.config.items()})
        return {key: value for key, value in config.items() if key not in secrets}, secrets

    def host_config(self) -> dict[str, Any]:
        """The stack config as the engine passes it to the provider host's Configure."""
        plain, secrets = self.effective_config()
        config: dict[str, Any] = dict(_config_strings(plain, self.project))
        for key, value in _config_strings(secrets, self.project).items():
            config[key] = secret(value)
        return config

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        env["PULUMI_PROJECT"] = self.project
        return env

    def _session(self) -> _Session:
        host = ProviderHost(
            cwd=self.program_dir,
            env=self._environment(),
            command=self.host_command,
            call_timeout=self.call_timeout,
        ).start()
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
            pending_updates=self.pending_updates,
            pending_deletes=self.pending_deletes,
            types=self.types,
        )
        return _Session(host, engine, self)

    def _run(
        self,
        result: UpdateResult,
        replace: set[str],
        interrupt: threading.Event | None = None,
        continue_on_error: bool = False,
        session: _Session | None = None,
    ) -> UpdateResult:
        self.last_result = result
        with session or self._session() as (_host, engine):
            if result.command != "preview":
                result.warnings += engine.pending_warnings()
            deployment = Deployment(
                self,
                engine,
                result,
                replace=replace,
                interrupt=interrupt,
                continue_on_error=continue_on_error,
            )
            plain, secrets = self.effective_config()
            try:
                exports = run_program(
                    self.program_dir,
                    deployment.handle,
                    project=self.project,
                    stack=self.stack,
                    config={**plain, **secrets},
                    secret_keys=secrets,
                    preview=result.command == "preview",
                    env=None if self.env is None else self._environment(),
                )
            except BaseException as exc:
                failure = deployment.failure or exc
                if continue_on_error and deployment.failure is not None:
                    deployment.delete_unregistered()
                raise failure from None
            if result.command != "preview":
                # Replaced resources go after every create and update, then what the program dropped.
                deployment.delete_unregistered()
                self.exports = exports
            result.outputs = reveal(exports)
            result.secret_outputs = frozenset(
                key for key, value in exports.items() if contains_secrets(value)
            )
        return result


@dataclass
class _Session:
    host: ProviderHost
    engine: Engine

    def __enter__(self) -> tuple[ProviderHost, Engine]:
        return self.host, self.engine

    stack: ProgramStack

    def __exit__(self, *exc: object) -> None:
        self.host.stop()
        # Complete once the host has stopped; kept for a command that raised too: what `pulumi up` shows.
        self.stack.last_host_output = self.host.stderr
        if self.stack.last_result is not None:
            self.stack.last_result.host_output = self.host.stderr


class _Starting:
    """A session being started in the background."""

    def __init__(self, start: Callable[[], _Session]) -> None:
        self._session: _Session | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(start,), daemon=True)
        self._thread.start()

    def _run(self, start: Callable[[], _Session]) -> None:
        try:
            self._session = start()
        except BaseException as exc:
            self._error = exc

    def get(self) -> _Session:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._session is not None
        return self._session

    def discard(self) -> None:
        self._thread.join()
        if self._session is not None:
            self._session.host.stop()
