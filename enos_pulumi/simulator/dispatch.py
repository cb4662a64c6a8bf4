"""The API request pipeline: one request through the stages it meets on EnOS, and what each fault does.

1. The gateway: latency (``latency_ms`` plus latency faults), then a gateway fault — ``drop`` (close
   unanswered), ``status``/``html`` (a proxy's answer), ``expire`` (every token expires, then on).
2. An unknown route: 404.
3. The token service (:func:`.gateway.token_service`); a ``code`` fault answers its refusal instead.
4. Authentication (:func:`.gateway.authenticate`): a 401 ends it.
5. A service fault — ``data-false`` (``code 0, data false``, nothing done), ``code`` (that EnOS code) —
   else the service (:mod:`.services`), which a ``no-effect`` fault lets answer without effect and a
   ``becomes`` fault leads to another status. A fault marked ``after`` (``status``, ``html``, ``drop``,
   ``code``) comes once the service has acted: the operation takes effect, its answer is lost.
"""

from __future__ import annotations

from .context import Context
from .faults import Fault
from .gateway import authenticate, gateway_reply, token_refusal, token_service
from .services import envelope, serve
from .wire import SERVICE_MESSAGES, Call, Reply, describe, known_route

__all__ = ["handle"]


def handle(ctx: Context, call: Call) -> Reply:
    """Answer one API request (admin requests never come here)."""
    describe(call)
    reply = _gateway(ctx, call)
    if reply is not None:
        return reply
    if not known_route(call.method, call.path):
        return Reply(404, {"msg": "not found", "requestId": call.request_id}, msg="not found")
    if call.op in ("token", "refresh"):
        return _token(ctx, call)
    app = authenticate(ctx, call)
    if isinstance(app, Reply):
        return app
    _, fault = ctx.store.faults.take(call.op, gateway=False)
    if fault is not None and fault.after:
        serve(ctx, call, app)  # the service acts; its answer is what gets lost
        return _answer_lost(call, fault)
    if fault is not None and fault.kind not in ("no-effect", "becomes"):
        return _service_fault(ctx, call, fault)
    becomes = fault.to if fault is not None and fault.kind == "becomes" else None
    reply = serve(ctx, call, app, effect=fault is None or becomes is not None, to=becomes)
    if fault is not None and reply.code == 0:
        call.fault = fault.kind  # the operation was accepted and did nothing, or leads elsewhere
    return reply


def _gateway(ctx: Context, call: Call) -> Reply | None:
    """What the gateway in front of EnOS does: delay, and a gateway fault's answer (None: pass on)."""
    delay_ms, fault = ctx.store.faults.take(call.op, gateway=True)
    if delay_ms > 0:
        call.fault = "latency"
    delay_ms += ctx.settings.latency_ms
    if delay_ms > 0:
        ctx.sleep(delay_ms / 1000)
    if fault is None:
        return None
    call.fault = fault.kind
    if fault.kind == "drop":
        return Reply(0, drop=True)
    if fault.kind in ("status", "html"):
        return gateway_reply(fault, call.request_id)
    if fault.kind == "expire":
        ctx.store.expire_tokens()
    return None


def _token(ctx: Context, call: Call) -> Reply:
    """The token service, or the refusal a ``code`` fault aimed at it asks for."""
    _, fault = ctx.store.faults.take(call.op, gateway=False)
    if fault is not None and fault.kind == "code":
        call.fault = fault.kind
        assert fault.code is not None
        return token_refusal(fault.code) if fault.msg is None else token_refusal(fault.code, fault.msg)
    return token_service(ctx, call)


def _answer_lost(call: Call, fault: Fault) -> Reply:
    """What reaches the client once the service has acted: the fault's answer instead of the service's."""
    call.fault = f"{fault.kind} after"
    if fault.kind == "drop":
        return Reply(0, drop=True)
    if fault.kind in ("status", "html"):
        return gateway_reply(fault, call.request_id)
    assert fault.code is not None
    return envelope(call, fault.code, None, fault.msg or SERVICE_MESSAGES.get(fault.code, "Error"))


def _service_fault(ctx: Context, call: Call, fault: Fault) -> Reply:
    """A service fault's answer, with the named pipeline's status noted (the service never saw it)."""
    call.fault = fault.kind
    if call.org_id and call.pipeline_id:
        pipeline = ctx.store.pipelines.get(call.org_id, call.pipeline_id)
        call.pipeline_status = None if pipeline is None else pipeline.status
    if fault.kind == "data-false":
        call.deleted = False if call.op == "delete" else None
        return envelope(call, 0, False)
    assert fault.code is not None
    return envelope(call, fault.code, None, fault.msg or SERVICE_MESSAGES.get(fault.code, "Error"))
