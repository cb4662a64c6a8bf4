"""Run a Pulumi program in this process with Pulumi's mock runtime, answering its registrations.

The program really runs: its config reads, its ``StageStateReset`` constructors (the program-side join
of big lists, the org default, the provider's pickling) and its ``pulumi.export`` calls. Only the
resource monitor is replaced: each registration goes to a handler, which for a ``ProgramStack`` is the
engine over Pulumi's real provider host.
"""

from __future__ import annotations

import json
import runpy
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._project import full_key, program_main, running_in

__all__ = ["Registration", "StepFailed", "capture_program", "reset_pulumi_runtime", "run_program"]

#: A mocked program run at a time: Pulumi's runtime settings and config are process-wide.
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class Registration:
    """A resource the program registered, with the options the engine acts on."""

    type: str
    name: str
    #: Secrets in wire form (see :func:`secret`), unknowns (preview) as ``pulumi.output.Unknown``.
    inputs: dict[str, Any]
    custom: bool
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: bool | None = None
    #: ``customTimeouts`` in seconds (0: none), as the engine passes them to Create/Update/Delete.
    timeouts: tuple[float, float, float] = (0.0, 0.0, 0.0)
    urn: str = ""
    protect: bool = False
    retain_on_delete: bool = False
    #: The ``replacement_trigger`` option (SDK 3.214+), wire form; None when not set.
    replacement_trigger: Any = None
    #: URNs of the ``replace_with`` option's resources.
    replace_with: tuple[str, ...] = ()
    #: URNs this resource depends on (``depends_on`` and the resources its inputs came from).
    dependencies: frozenset[str] = frozenset()


Handler = Callable[[Registration], tuple[str, Mapping[str, Any]]]


class StepFailed(Exception):
    """Raised by a handler for a step that failed (or was skipped) while the deployment goes on
    (``--continue-on-error``): the program hears "failed"/"skipped" and resolves its outputs as unknown,
    as the engine answers it, instead of an error that ends the program."""

    def __init__(self, cause: BaseException, *, skipped: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.skipped = skipped


def _duration(text: str) -> float:
    """A Go duration ("90s", "5m", "1h30m") in seconds, as the engine reads customTimeouts."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, number = 0.0, ""
    index = 0
    while index < len(text):
        char = text[index]
        if char.isdigit() or char == ".":
            number += char
            index += 1
            continue
        unit = "ms" if text.startswith("ms", index) else char
        total += float(number) * units[unit]
        number, index = "", index + len(unit)
    return total


class _QuietAboutRaised:
    """Event loop exception handler: an error ``run_program`` raises to its caller is not logged again as
    "Task exception was never retrieved" when older SDKs drop the futures that carried it."""

    def __init__(self, previous: Any) -> None:
        self.previous = previous

    def __call__(self, loop: Any, context: dict[str, Any]) -> None:
        from ._deployment import NotStartedError
        from ._host import HostError
        from ._paths import IgnoreChangesError
        from ._steps import CheckFailedError, DeploymentError, Interrupted, ResourceProtectedError

        raised = (HostError, CheckFailedError, Interrupted, ResourceProtectedError, DeploymentError)
        if isinstance(context.get("exception"), (*raised, IgnoreChangesError, NotStartedError)):
            return
        if self.previous is not None:
            self.previous(loop, context)
        else:
            loop.default_exception_handler(context)


def _quiet_loop() -> None:
    from pulumi.runtime.sync_await import _ensure_event_loop

    loop = _ensure_event_loop()  # type: ignore[no-untyped-call]
    if not isinstance(loop.get_exception_handler(), _QuietAboutRaised):
        loop.set_exception_handler(_QuietAboutRaised(loop.get_exception_handler()))


def reset_pulumi_runtime() -> None:
    """Leave no mocks, config or root stack behind for whatever runs next in this process."""
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime import settings as runtime_settings

    runtime_config.set_all_config({}, [])
    runtime_settings.reset_options(project="project", stack="stack", organization="organization")


def _config_strings(config: Mapping[str, Any], project: str) -> dict[str, str]:
    # The CLI hands a program its config as strings, objects as JSON; a bare key is the project's own.
    return {
        full_key(key, project): value if isinstance(value, str) else json.dumps(value)
        for key, value in config.items()
    }


def run_program(
    program_dir: str | Path,
    handler: Handler,
    *,
    project: str,
    stack: str = "dev",
    config: Mapping[str, Any] | None = None,
    secret_keys: Iterable[str] = (),
    preview: bool = False,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run the program of the project in ``program_dir`` as the language host runs it (cwd the project
    directory, the program directory on ``sys.path``, ``env`` as its environment when given), every
    registration answered by ``handler`` (an id and the outputs); returns the stack's exports, secrets in
    wire form. The first error ``handler`` raised is raised again once the program has finished, as
    ``pulumi up`` fails after its in-flight steps."""
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime import mocks
    from pulumi.runtime import settings as runtime_settings

    errors: list[BaseException] = []
    unused, monitor = _monitor(handler, errors)
    project_dir = Path(program_dir)
    main = program_main(project_dir)
    strings = _config_strings(config or {}, project)
    secrets = [key if ":" in key else f"{project}:{key}" for key in secret_keys]
    exports: dict[str, Any] = {}
    with _RUN_LOCK:
        _quiet_loop()
        try:
            reset_pulumi_runtime()
            runtime_config.set_all_config(strings, secrets)
            mocks.set_mocks(unused, project=project, stack=stack, preview=preview, monitor=monitor)

            def run() -> Any:
                runpy.run_path(target, run_name="__main__")
                root = runtime_settings.get_root_resource()
                return _collect(dict(getattr(root, "outputs", {}) or {}), exports)

            try:
                with running_in(project_dir, main, env) as target:
                    mocks.test(run)()  # type: ignore[no-untyped-call]
            except BaseException:
                if not errors:
                    raise
        finally:
            reset_pulumi_runtime()
    if errors:
        raise errors[0]
    return exports


def _collect(outputs: dict[str, Any], into: dict[str, Any]) -> Any:
    """Resolve each export (value and secretness) into ``into``; an awaitable the mock runtime waits for."""
    import pulumi

    from ._wire import UNKNOWN, secret

    async def resolve() -> None:
        for key, value in outputs.items():
            output = pulumi.Output.from_input(value)
            known = await output.is_known()
            plain = await output.future() if known else UNKNOWN
            into[key] = secret(plain) if await output.is_secret() else plain

    return pulumi.Output.from_input(resolve())


def _option(request: Any, name: str) -> Any:
    """A RegisterResourceRequest field this SDK may not have (``replace_with`` and
    ``replacement_trigger`` are newer than the oldest SDK allowed): None when absent or unset."""
    fields = request.DESCRIPTOR.fields_by_name
    if name not in fields:
        return None
    if fields[name].message_type is not None and not request.HasField(name):
        return None
    return getattr(request, name)


def _registration(request: Any, urn: str) -> Registration:
    from google.protobuf import struct_pb2
    from pulumi.runtime import rpc

    timeouts = request.customTimeouts
    trigger = _option(request, "replacement_trigger")
    if trigger is not None:
        holder = struct_pb2.Struct()
        holder.fields["trigger"].CopyFrom(trigger)
        trigger = dict(rpc.deserialize_properties(holder, True) or {}).get("trigger")
    dependencies = set(request.dependencies)
    for urns in request.propertyDependencies.values():
        dependencies.update(urns.urns)
    return Registration(
        type=request.type,
        name=request.name,
        inputs=dict(rpc.deserialize_properties(request.object, True) or {}),
        custom=bool(request.custom),
        ignore_changes=tuple(request.ignoreChanges),
        replace_on_changes=tuple(request.replaceOnChanges),
        delete_before_replace=request.deleteBeforeReplace if request.deleteBeforeReplaceDefined else None,
        timeouts=(_duration(timeouts.create), _duration(timeouts.update), _duration(timeouts.delete)),
        urn=urn,
        protect=bool(request.protect),
        retain_on_delete=bool(request.retainOnDelete),
        replacement_trigger=trigger,
        replace_with=tuple(_option(request, "replace_with") or ()),
        dependencies=frozenset(dependencies),
    )


def _monitor(handler: Handler, errors: list[BaseException]) -> tuple[Any, Any]:
    from pulumi.runtime import mocks, rpc
    from pulumi.runtime.proto import resource_pb2
    from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

    class Unused(mocks.Mocks):
        def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
            raise AssertionError("registrations go to the handler")

        def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            return {}, None

    class Monitor(mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:
            urn = self.make_urn(request.parent, request.type, request.name)
            if request.type == "pulumi:pulumi:Stack":
                return resource_pb2.RegisterResourceResponse(urn=urn)
            _ensure_event_loop()  # type: ignore[no-untyped-call]
            registration = _registration(request, urn)
            try:
                id_, state = handler(registration)
            except StepFailed as failed:
                errors.append(failed.cause)
                if "result" not in resource_pb2.RegisterResourceResponse.DESCRIPTOR.fields_by_name:
                    raise failed.cause from None  # an SDK that cannot hear "failed, go on" stops here
                result = resource_pb2.Result.SKIP if failed.skipped else resource_pb2.Result.FAIL
                return resource_pb2.RegisterResourceResponse(urn=urn, result=result)
            except BaseException as exc:
                errors.append(exc)
                raise
            obj = _sync_await(rpc.serialize_properties(dict(state), {}))
            self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, dict(state))
            return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

    unused = Unused()
    return unused, Monitor(unused)


def capture_program(
    program_dir: str | Path,
    config: Mapping[str, Any],
    project: str,
    stack: str = "dev",
    *,
    secret_keys: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """Run a program and return each resource's registered inputs by name, answering every registration
    with its own inputs (no provider is called). Secrets stay in wire form."""
    captured: dict[str, dict[str, Any]] = {}

    def record(registration: Registration) -> tuple[str, Mapping[str, Any]]:
        captured[registration.name] = registration.inputs
        return f"{registration.name}-id", registration.inputs

    run_program(program_dir, record, project=project, stack=stack, config=config, secret_keys=secret_keys)
    return captured
