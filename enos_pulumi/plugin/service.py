"""The ResourceProvider gRPC service of ``pulumi-resource-enos``: request and reply messages around
:mod:`.adapter` and :mod:`.config`.

Preview runs Check, Diff and Create/Update with ``preview`` set, and calls EnOS for none of them. Read
hands back what is stored (there is nothing to read back from EnOS), Delete forgets. Cancel (the CLI's
first Ctrl-C) lets resets under way finish, so a paused pipeline is started again, and refuses new ones;
so does :meth:`EnosProvider.stop_resets` (the plugin told to stop), after which
:meth:`EnosProvider.wait_for_resets` returns once the resets under way have their answers.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from ..enos.client import EnosClient, RequestEvent
from ..enos.errors import EnosError
from ..enos.settings import Settings, resolve_settings
from ..reset import run_reset
from . import adapter
from .config import SECRET_SETTING, check_config, configured, diff_config
from .schema import PACKAGE, package_schema
from .wire import Decoded, Scrubber, decode, encode

__all__ = ["CANCELLED", "MAX_RESETS", "STOPPING", "EnosProvider"]

#: Resets run at once (each sends up to ``enos:parallelRequests`` requests): as many as the dynamic
#: provider's host runs. Other calls (Check, Diff, Cancel) are served beside them.
MAX_RESETS = 4
CANCELLED = (
    "the update was cancelled (Ctrl-C) before this reset started: nothing was called. Run `pulumi up` "
    "again to reset."
)
STOPPING = (
    "the provider plugin was stopping (SIGTERM or SIGINT) before this reset started: nothing was called. "
    "Run `pulumi up` again to reset."
)
_STDERR_LOCK = threading.Lock()
R = TypeVar("R")


class _Refused(Exception):
    """An answer to give as the call's error, already fit to show (no secret in it)."""


def _text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, EnosError) else f"{type(exc).__name__}: {exc}"


def _rpc(method: Callable[..., R]) -> Callable[..., R]:
    """Errors become the call's status: the message the user reads, with no traceback."""

    @functools.wraps(method)
    def call(self: EnosProvider, request: Any, context: Any) -> R:
        try:
            return method(self, request, context)
        except _Refused as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        except Exception as exc:
            context.abort(grpc.StatusCode.UNKNOWN, _text(exc))
        raise AssertionError("unreachable: abort raises")

    return call


def _progress(scrub: Callable[[str], str]) -> Callable[[RequestEvent], None]:
    def line(event: RequestEvent) -> None:
        # stderr is shown by `pulumi up`; a lock keeps lines from concurrent resets whole.
        with _STDERR_LOCK:
            print(scrub(event.describe()), file=sys.stderr, flush=True)

    return line


class EnosProvider(provider_pb2_grpc.ResourceProviderServicer):
    """One provider process: its settings from Configure, the environment at call time."""

    def __init__(
        self,
        version: str,
        environ: Mapping[str, str] | None = None,
        client_factory: Callable[[Settings, Callable[[RequestEvent], None]], EnosClient] | None = None,
    ) -> None:
        self.version = version
        self.engine_address: str | None = None
        self._environ = environ  # None: os.environ, read at each call (rotated credentials need no up)
        self._client_factory = client_factory
        self._config: dict[str, Any] = {}
        self._config_secrets: frozenset[str] = frozenset()
        self._resets = threading.BoundedSemaphore(MAX_RESETS)
        self._calls = threading.Condition()
        self._under_way = 0  # reset calls inside _reset: running, or waiting for a turn
        self._refusal: str | None = None  # why new resets are refused: CANCELLED or STOPPING

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    # -- the plugin and its settings -------------------------------------------------------------------

    def Handshake(self, request: Any, context: Any) -> Any:
        self.engine_address = request.engine_address or self.engine_address
        return provider_pb2.ProviderHandshakeResponse(
            accept_secrets=True, accept_resources=False, accept_outputs=False
        )

    def Attach(self, request: Any, context: Any) -> Any:
        self.engine_address = request.address
        return empty_pb2.Empty()

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=self.version)

    def GetSchema(self, request: Any, context: Any) -> Any:
        return provider_pb2.GetSchemaResponse(schema=json.dumps(package_schema(self.version)))

    @_rpc
    def CheckConfig(self, request: Any, context: Any) -> Any:
        news = decode(request.news)
        failures = check_config(news, self.environ, news.secrets)
        # Stored with the provider's inputs: encrypted even when it was not set with --secret.
        secrets = news.secrets | ({SECRET_SETTING} if SECRET_SETTING in news else set())
        return provider_pb2.CheckResponse(
            inputs=encode(news, secrets),
            failures=[provider_pb2.CheckFailure(property=k, reason=r) for k, r in failures],
        )

    @_rpc
    def DiffConfig(self, request: Any, context: Any) -> Any:
        changed = diff_config(decode(request.olds), decode(request.news))
        kind = provider_pb2.DiffResponse.DIFF_SOME if changed else provider_pb2.DiffResponse.DIFF_NONE
        return provider_pb2.DiffResponse(changes=kind, diffs=changed)

    @_rpc
    def Configure(self, request: Any, context: Any) -> Any:
        args = decode(request.args)
        self._config = configured(args, dict(request.variables))
        self._config_secrets = frozenset(f"{PACKAGE}:{key}" for key in args.secrets)
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=False, acceptOutputs=False
        )

    def Cancel(self, request: Any, context: Any) -> Any:
        self._refuse(CANCELLED)
        return empty_pb2.Empty()

    # -- stopping ----------------------------------------------------------------------------------------

    def stop_resets(self) -> int:
        """Refuse every reset from now on (the plugin is stopping); how many are under way."""
        self._refuse(STOPPING)
        with self._calls:
            return self._under_way

    def wait_for_resets(self) -> None:
        """Return once no reset call is under way: each has returned its answer (or its error) to gRPC.

        No bound of its own: each reset ends within the bounds of its settings, and cutting the wait
        short would not end the process any sooner (its worker thread must finish, to start a paused
        pipeline again) but would lose the answer, and with it the engine's record of the reset."""
        with self._calls:
            while self._under_way:
                self._calls.wait()

    def _refuse(self, why: str) -> None:
        with self._calls:
            self._refusal = self._refusal or why

    # -- StageStateReset -------------------------------------------------------------------------------

    @_rpc
    def Check(self, request: Any, context: Any) -> Any:
        news = decode(request.news)
        # The failures quote no secret input: the checks are told which are secret.
        checked = adapter.check(news, news.secrets, self._config, self._config_secrets, self.environ)
        return provider_pb2.CheckResponse(
            inputs=encode(checked.inputs, checked.secrets),
            failures=[provider_pb2.CheckFailure(property=k, reason=r) for k, r in checked.failures],
        )

    @_rpc
    def Diff(self, request: Any, context: Any) -> Any:
        old_inputs = decode(request.old_inputs)
        plan = adapter.diff(decode(request.olds), decode(request.news), old_inputs)
        kinds = provider_pb2.PropertyDiff
        detailed = {}
        for name in plan.changed:
            replace = name in plan.replaces
            if name in old_inputs:
                kind = kinds.UPDATE_REPLACE if replace else kinds.UPDATE
            else:
                kind = kinds.ADD_REPLACE if replace else kinds.ADD
            detailed[name] = kinds(kind=kind, inputDiff=True)
        changes = provider_pb2.DiffResponse.DIFF_SOME if plan.changed else provider_pb2.DiffResponse.DIFF_NONE
        return provider_pb2.DiffResponse(
            changes=changes,
            replaces=plan.replaces,
            diffs=plan.changed,
            detailedDiff=detailed,
            hasDetailedDiff=True,
            deleteBeforeReplace=False,
        )

    @_rpc
    def Create(self, request: Any, context: Any) -> Any:
        props = decode(request.properties)
        outs = self._reset_or_preview(props, bool(request.preview))
        id_ = "" if request.preview else f"reset-{uuid.uuid4().hex}"
        return provider_pb2.CreateResponse(id=id_, properties=outs)

    @_rpc
    def Update(self, request: Any, context: Any) -> Any:
        outs = self._reset_or_preview(decode(request.news), bool(request.preview))
        return provider_pb2.UpdateResponse(properties=outs)

    @_rpc
    def Read(self, request: Any, context: Any) -> Any:
        if not request.properties.fields:
            raise _Refused(
                f"{request.urn or request.id}: a StageStateReset cannot be imported or read without its "
                "stored state (EnOS keeps no record of a reset): declare it in the program instead"
            )
        # Nothing to read back: the stored outputs stand, and the stored inputs keep the next diff clean.
        reply = provider_pb2.ReadResponse(id=request.id, properties=request.properties)
        if request.HasField("inputs"):
            reply.inputs.CopyFrom(request.inputs)
        return reply

    def Delete(self, request: Any, context: Any) -> Any:
        # Deleted state cannot be restored: destroy forgets the resource and calls nothing.
        return empty_pb2.Empty()

    # -- helpers ---------------------------------------------------------------------------------------

    def _reset_or_preview(self, props: Decoded, preview: bool) -> Any:
        snake, unknown = adapter.to_snake(props)
        if unknown:  # Check refuses these first; a call that skipped it is told the same
            raise _Refused("; ".join(f"{name} {reason}" for name, reason in unknown))
        scrub = Scrubber(props, props.secrets)
        outs = adapter.preview_outputs(snake) if preview else self._reset(snake, scrub)
        named, secrets = adapter.outputs(outs, props.secrets)
        return encode(named, secrets)

    def _reset(self, props: dict[str, Any], scrub: Callable[[str], str]) -> dict[str, Any]:
        with self._calls:
            if self._refusal is not None:
                raise _Refused(self._refusal)
            self._under_way += 1
        try:
            return self._reset_in_turn(props, scrub)
        finally:
            with self._calls:
                self._under_way -= 1
                self._calls.notify_all()

    def _reset_in_turn(self, props: dict[str, Any], scrub: Callable[[str], str]) -> dict[str, Any]:
        with self._resets:
            with self._calls:
                refusal = self._refusal  # cancelled or stopped while it waited for a turn
            if refusal is not None:
                raise _Refused(refusal)
            try:
                settings = resolve_settings(None, self._config, self.environ)
                on_event = _progress(scrub)
                if self._client_factory is not None:
                    client = self._client_factory(settings, on_event)
                else:
                    client = EnosClient(settings, on_event=on_event)
                return run_reset(client, props)
            except Exception as exc:
                raise _Refused(scrub(_text(exc))) from None
