"""The stream-processing services behind the gateway: Delete/Get Stage State, List Pipelines and Operate
Pipeline, answering with the ``{"code", "msg", "requestId", "data"}`` envelope.

Delete Stage State on a pipeline that is not PAUSED answers ``code 0, data false`` and deletes nothing.
The EnOS API documents PAUSED as the prerequisite but no error code for a pipeline in another status
(its codes are 61102, 61105, 61106, 61107 and 61199), and documents ``data: false`` as "the deletion
failed even though the call succeeded" — the answer an unmet prerequisite most plausibly gets. It is also
the answer a client must treat most carefully (a success envelope that deleted nothing), so a client
that passes against the simulator fails closed against EnOS whichever way EnOS answers. The status
checked is the one List Pipelines shows at that moment: a pause still in progress does not count.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from .context import Context
from .faults import OPERATE_ACTIONS
from .pipelines import Pipeline
from .stagestate import STAGE_PREFIXES
from .store import App
from .wire import (
    LIST_PATH,
    OK_MSG,
    OPERATE_PREFIX,
    SERVICE_MESSAGES,
    STAGE_STATE_PATH,
    Call,
    ParamError,
    Reply,
    finite_number,
    id_list,
    json_object,
    positive_int,
)

__all__ = ["envelope", "serve"]


def envelope(call: Call, code: int, data: Any, msg: str | None = None) -> Reply:
    text = msg if msg is not None else (OK_MSG if code == 0 else SERVICE_MESSAGES.get(code, "Error"))
    payload = {"code": code, "msg": text, "requestId": call.request_id, "data": data}
    return Reply(200, payload, code=code, msg=text)


def serve(ctx: Context, call: Call, app: App, effect: bool = True, to: str | None = None) -> Reply:
    """Answer an authenticated request; without ``effect`` an accepted Operate Pipeline request changes
    nothing (a ``no-effect`` fault); with ``to`` it leads there instead (a ``becomes`` fault)."""
    try:
        if call.path == STAGE_STATE_PATH:
            return _stage_state(ctx, call, app)
        if call.path == LIST_PATH:
            return _list(ctx, call, app)
        return _operate(ctx, call, app, effect, to)
    except ParamError as exc:
        return envelope(call, 61102, None, f"{SERVICE_MESSAGES[61102]}: {exc.detail}")


def _org(call: Call) -> str:
    org_id = call.query.get("orgId", "")
    if not org_id:
        raise ParamError("orgId")
    call.org_id = org_id
    return org_id


def _stage_state(ctx: Context, call: Call, app: App) -> Reply:
    if call.op not in ("delete", "get"):
        raise ParamError("action must be delete or get")
    org_id = _org(call)
    body = json_object(call.body)
    fields = {}
    for name in ("pipelineId", "stageInstanceName", "assetIds", "pointIds"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ParamError(name)
        fields[name] = value
    pipeline_id, stage = fields["pipelineId"], fields["stageInstanceName"]
    assets = id_list(fields["assetIds"], "assetIds")
    points = id_list(fields["pointIds"], "pointIds")
    call.pipeline_id, call.stage = pipeline_id, stage
    call.asset_count, call.point_count = len(assets), len(points)
    store, settings = ctx.store, ctx.settings
    with store.lock:
        pipeline = store.pipelines.get(org_id, pipeline_id)
        if pipeline is None or not app.may_access(org_id):
            return envelope(call, 61106, None)
        call.pipeline_status = pipeline.status
        if not stage.startswith(STAGE_PREFIXES):
            return envelope(call, 61107, None)
        if len(assets) * len(points) > settings.pair_limit:
            return envelope(call, 61105, None)
        if call.op == "get":
            items = store.state.get_pairs(org_id, pipeline_id, stage, assets, points)
            return envelope(call, 0, items if settings.get_format == "list" else {"items": items})
        if settings.require_paused and pipeline.status != "PAUSED":
            call.deleted = False
            return envelope(call, 0, False)
        store.state.delete_pairs(org_id, pipeline_id, stage, assets, points)
        call.deleted = True
        return envelope(call, 0, True)


def _list(ctx: Context, call: Call, app: App) -> Reply:
    org_id = _org(call)
    query = call.query
    page_no = positive_int(query.get("pageNo", "1"), "pageNo")
    page_size = positive_int(query.get("pageSize", "10"), "pageSize")
    released = query.get("ifReleased", "false").lower()
    if released not in ("true", "false"):
        raise ParamError("ifReleased must be true or false")
    page: list[Pipeline] = []
    count = 0
    if app.may_access(org_id):
        count, page = ctx.store.pipelines.page(org_id, released == "true", page_no, page_size)
    return envelope(call, 0, {"count": count, "pipelines": [p.to_json() for p in page]})


def _start_body(call: Call) -> dict[str, Any]:
    """Start's documented body: ``executionMode`` 0 or 1, ``kafkaRate`` > 0, optional ``resourceConfig``."""
    body = json_object(call.body)
    call.operate_body = body
    mode = body.get("executionMode")
    if mode not in (0, 1) or isinstance(mode, bool):
        raise ParamError("executionMode must be 0 (standalone) or 1 (cluster)")
    rate = finite_number(body.get("kafkaRate"))
    if rate is None or rate <= 0:
        raise ParamError("kafkaRate must be a number greater than 0")
    if "resourceConfig" in body and not isinstance(body["resourceConfig"], dict):
        raise ParamError("resourceConfig must be an object")
    return body


def _operate(ctx: Context, call: Call, app: App, effect: bool, to: str | None) -> Reply:
    pipeline_id = unquote(call.path[len(OPERATE_PREFIX) :])
    call.pipeline_id = pipeline_id
    action = call.query.get("action", "")
    if action not in OPERATE_ACTIONS:
        raise ParamError("action must be pause, start or stop (release/save are not simulated)")
    org_id = _org(call)
    if action == "start":
        _start_body(call)
    pipelines, settings = ctx.store.pipelines, ctx.settings
    with pipelines.lock:
        pipeline = pipelines.get(org_id, pipeline_id)
        if pipeline is None or not app.may_access(org_id):
            return envelope(call, 61108, None)
        call.pipeline_status = pipeline.status
        delay = {"pause": settings.pause_seconds, "start": settings.start_seconds}.get(action, 0.0)
        code = pipelines.operate(pipeline, action, delay, call.request_id, effect=effect, to=to)
        if code != 0:
            now = pipeline.status + (f", {pipeline.pending.action} in progress" if pipeline.pending else "")
            return envelope(call, code, None, f"{SERVICE_MESSAGES[code]}: {now}")
    return envelope(call, 0, None)
