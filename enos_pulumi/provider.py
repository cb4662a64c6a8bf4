"""The Pulumi dynamic provider behind :class:`enos_pulumi.StageStateReset`.

``StageStateResetProvider`` is stored by module path and class name in every stack's state (dill pickles
an importable class by reference): never rename or move it. Its pickled form carries no data at all;
connection settings arrive through ``configure`` in the provider host and from the environment at call
time, so credentials never enter state and rotating them needs no ``pulumi up``.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
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
from pulumi.output import Unknown

from .client import EnosClient, RequestEvent, ResetReport, StageTarget
from .errors import InvalidIdsError, PipelineNotListedError, PipelineNotPausedError, StateRemainsError
from .ids import JoinedIds, canonical_ids, describe_value, ids_hash_joined
from .pause_inputs import check_pause_inputs, resume_of
from .pausing import COORDINATOR
from .settings import SETTINGS_KEYS, Settings, resolve_settings
from .stage_state import remaining_pairs

__all__ = ["LIST_FORM_MAX_IDS", "StageStateResetProvider"]

# Check hands back a canonical list (readable, item by item, in a preview) up to this many IDs, and
# one comma-joined string above it: a list of a million strings costs seconds on every gRPC crossing,
# the same IDs as one string cost milliseconds. Diffs compare ids_hash, so the form never causes a reset.
LIST_FORM_MAX_IDS = 1000

ID_INPUTS = ("asset_ids", "point_ids")
# The target: required strings, and a change of any of them is a replacement.
REPLACE_KEYS = ("org_id", "pipeline_id", "stage_instance_name")
BOOL_INPUTS = {"require_paused": True, "verify": False, "pause_pipeline": False}
_STDERR_LOCK = threading.Lock()


def _is_unknown(value: Any) -> bool:
    """An input that depends on a resource not created yet (only seen during preview)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, (list, tuple)):
        return any(_is_unknown(item) for item in value)
    return False


def normalize_trigger(value: Any) -> str | None:
    """Triggers compare as text: 3, 3.0 and "3" are the same trigger; None and "" mean no trigger.

    Numbers reach the provider as floats (exact only up to 2**53), so the resource sends an integer as
    its decimal text; a whole float is written without ".0".
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a trigger must be a string or a number, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"a trigger must be a finite number, got {value!r}")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise TypeError(f"a trigger must be a string or a number, got {describe_value(value)}")


def _joined(value: Any) -> str:
    """Canonical checked IDs (a list or a comma-joined string) as the comma-joined string."""
    return value if isinstance(value, str) else ",".join(value)


def _ids_changed(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    try:
        digest = ids_hash_joined(_joined(news["asset_ids"]), _joined(news["point_ids"]))
    except (KeyError, TypeError):  # missing, or Unknown (alone or inside a list) during preview
        return True
    return digest != olds.get("ids_hash")


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
        """Keep only the ``enos:*`` connection keys of the stack config (the host calls this once)."""
        config = {}
        for config_key, _ in SETTINGS_KEYS.values():
            value = req.config.get(config_key)
            if value is not None:
                config[config_key] = value
        self._config = config

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
        """Validate and canonicalize the inputs; every problem is a CheckFailure naming its input."""
        inputs = dict(news)
        failures: list[CheckFailure] = []
        for name in REPLACE_KEYS:
            value = news.get(name)
            if _is_unknown(value):
                continue
            if value is None or (isinstance(value, str) and not value.strip()):
                hint = (
                    ": pass org_id, or set stack config enos:orgId / ENOS_ORG_ID" if name == "org_id" else ""
                )
                failures.append(CheckFailure(name, f"required and must not be empty{hint}"))
            elif not isinstance(value, str):
                failures.append(CheckFailure(name, f"must be a string, got {describe_value(value)}"))
            else:
                inputs[name] = value.strip()
        for name in ID_INPUTS:
            value = news.get(name)
            if isinstance(value, Unknown):
                continue
            if value is None:
                failures.append(
                    CheckFailure(name, "required: a non-empty list of IDs or one comma-separated string")
                )
                continue
            try:
                ids = canonical_ids(value, name)
            except InvalidIdsError as exc:
                # Only now look for unknown items: scanning a million-item list on every check is slow.
                if not _is_unknown(value):
                    # The engine shows the input's name with the reason; the reason need not repeat it.
                    failures.append(CheckFailure(name, exc.reason))
                continue
            as_list = isinstance(value, (list, tuple)) and len(ids) <= LIST_FORM_MAX_IDS
            inputs[name] = list(ids) if as_list else ",".join(ids)
        for name, default in BOOL_INPUTS.items():
            value = news.get(name)
            if value is None:
                inputs[name] = default
            elif not isinstance(value, bool) and not _is_unknown(value):
                failures.append(CheckFailure(name, f"must be true or false, got {describe_value(value)}"))
        trigger = news.get("trigger")
        if not _is_unknown(trigger):
            try:
                inputs["trigger"] = normalize_trigger(trigger)
            except TypeError as exc:
                failures.append(CheckFailure("trigger", str(exc)))
        failures += check_pause_inputs(news, inputs)
        return CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Replace on a new target; update on new IDs or a new non-empty trigger; nothing else changes.

        ``olds`` are the stored outputs (which hold ``ids_hash``), ``news`` the checked inputs.
        """
        replaces = [
            key for key in REPLACE_KEYS if _is_unknown(news.get(key)) or news.get(key) != olds.get(key)
        ]
        changed = list(replaces)
        if _ids_changed(olds, news):
            changed.append("ids_hash")
        trigger = news.get("trigger")
        if _is_unknown(trigger) or (trigger is not None and trigger != olds.get("trigger")):
            changed.append("trigger")
        return DiffResult(
            changes=bool(changed),
            replaces=replaces,
            stables=[],
            delete_before_replace=False,
        )

    # -- lifecycle -------------------------------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._reset(props)
        return CreateResult(f"reset-{uuid.uuid4().hex}", outs)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._reset(news))

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

    # -- the reset -------------------------------------------------------------------------------------

    def _reset(self, props: dict[str, Any]) -> dict[str, Any]:
        """Paused check (optional) -> delete every batch -> read back (optional); raises on any failure."""
        target = StageTarget(props["org_id"], props["pipeline_id"], props["stage_instance_name"])
        assets_joined = _joined(props["asset_ids"])
        points_joined = _joined(props["point_ids"])
        assets, points = JoinedIds(assets_joined), JoinedIds(points_joined)
        client = self._client()
        client.share_bound()  # the status check, the deletes and the verify reads: one bounded whole

        def check_paused() -> None:
            if not props.get("require_paused", True):
                return
            status = client.pipeline_status(target.org_id, target.pipeline_id)
            if status is None:
                raise PipelineNotListedError(target.pipeline_id, target.org_id)
            if status != "PAUSED":
                raise PipelineNotPausedError(target.pipeline_id, target.org_id, status)

        def delete_and_verify() -> ResetReport:
            report = client.delete_stage_state(target, assets, points)
            if props.get("verify", False):
                items, request_ids = client.get_stage_state(target, assets, points)
                remaining = remaining_pairs(items, assets, points)
                if remaining:
                    raise StateRemainsError(str(target), len(remaining), remaining[:5], list(request_ids))
            return report

        # With pause_pipeline the coordinator pauses a RUNNING pipeline first (or joins a pause of it
        # already under way in this process) and starts it again afterwards.
        report, paused_by_reset = COORDINATOR.run(
            client, target, resume_of(props), delete_and_verify, check_paused
        )
        return {
            "org_id": target.org_id,
            "pipeline_id": target.pipeline_id,
            "stage_instance_name": target.stage_instance_name,
            "trigger": props.get("trigger"),
            "ids_hash": ids_hash_joined(assets_joined, points_joined),
            "asset_count": len(assets),
            "point_count": len(points),
            "request_count": report.request_count,
            "request_ids": list(report.request_ids),
            "reset_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "paused_by_reset": paused_by_reset,
        }
