"""The Pulumi dynamic provider behind :class:`enos_pulumi.StageStateReset`.

``StageStateResetProvider`` is stored by module path and class name in every stack's state (dill pickles
an importable class by reference): never rename or move it. Its pickled form carries no data at all;
connection settings arrive through ``configure`` in the provider host and from the environment at call
time, so credentials never enter state and rotating them needs no ``pulumi up``.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from .enos.client import EnosClient, RequestEvent
from .enos.config_check import config_problems
from .enos.settings import SETTINGS_KEYS, Settings, resolve_settings
from .inputs import check_inputs, diff_inputs
from .reset import run_reset

__all__ = ["StageStateResetProvider"]

_STDERR_LOCK = threading.Lock()


def _stderr_line(event: RequestEvent) -> None:
    # The host shows its stderr in `pulumi up`; a lock keeps lines from 4 host threads whole.
    with _STDERR_LOCK:
        print(event.describe(), file=sys.stderr, flush=True)


class StageStateResetProvider(ResourceProvider):
    """Create and update reset the stage state; check, diff, read and delete never call the delete API."""

    # The pickled provider holds no secret (see __getstate__), so it need not be encrypted in state.
    serialize_as_secret_always = False

    def __init__(self) -> None:
        super().__init__()
        self._config: dict[str, Any] = {}
        self._environ: Mapping[str, str] | None = None  # tests inject; None means os.environ
        self._client_factory: Callable[[Settings], EnosClient] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Whatever configure() or a test stored must never be pickled into a stack's state.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    # -- configuration ---------------------------------------------------------------------------------

    def configure(self, req: ConfigureRequest) -> None:
        """Keep the ``enos:*`` keys of the stack config (the host calls this once, at preview too).

        Nothing is refused here: the host would fail every call, refresh and destroy included. Check
        reports a mistyped key or a bad gateway instead (see :meth:`check`)."""
        # The SDK's Config offers no listing of its keys, only get(): its mapping is read where present,
        # so a mistyped enos:* key can be named. A program whose own project is called "enos" has its
        # keys in that namespace too, so then only the known keys are taken.
        raw = getattr(req.config, "_props", None)
        project = getattr(req.config, "_project_name", None)
        keys = {key for key, _ in SETTINGS_KEYS.values()}
        if isinstance(raw, Mapping) and project != "enos":
            keys |= {key for key in raw if isinstance(key, str) and key.startswith("enos:")}
        self._config = {key: value for key in keys if (value := req.config.get(key)) is not None}

    def _settings(self) -> Settings:
        environ = self._environ if self._environ is not None else os.environ
        return resolve_settings(None, self._config, environ)

    def _client(self) -> EnosClient:
        settings = self._settings()
        if self._client_factory is not None:
            return self._client_factory(settings)
        return EnosClient(settings, on_event=_stderr_line)

    # -- check / diff ----------------------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate and canonicalize the inputs; every problem is a CheckFailure naming its input.

        A mistyped ``enos:*`` key or a gateway URL that ``pulumi up`` would refuse is a failure too (of
        the resource rather than of an input), so ``pulumi preview`` shows it before any reset runs."""
        inputs, failures = check_inputs(news)
        environ = self._environ if self._environ is not None else os.environ
        problems = [CheckFailure("", text) for text in config_problems(self._config, environ)]
        return CheckResult(inputs, [*problems, *(CheckFailure(name, reason) for name, reason in failures)])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Replace on a new target; update on new IDs or a new non-empty trigger; nothing else changes.

        ``olds`` are the stored outputs (which hold ``ids_hash``), ``news`` the checked inputs.
        """
        diff = diff_inputs(olds, news)
        return DiffResult(
            changes=bool(diff.changed), replaces=diff.replaces, stables=[], delete_before_replace=False
        )

    # -- lifecycle -------------------------------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = run_reset(self._client(), props)
        return CreateResult(f"reset-{uuid.uuid4().hex}", outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(run_reset(self._client(), news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: there is nothing to read back, so the stored outputs stand and no call is made.

        Returning no inputs keeps the stored inputs: the engine then diffs the refreshed outputs against
        them, which finds no change (the stored inputs hash to the stored ``ids_hash``).
        """
        outs = {key: value for key, value in props.items() if key != "__provider"}
        # No third argument: ReadResult takes `inputs` only since pulumi 3.216, and None is its default.
        return ReadResult(id_, outs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Destroy forgets the resource; deleted state cannot be restored, so no call is made."""
