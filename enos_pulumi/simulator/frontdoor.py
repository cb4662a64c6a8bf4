"""What the simulator does with each HTTP request: the admin endpoint, or the API request pipeline and
the request log. :class:`FrontDoor` is the plain callable the HTTP server (:mod:`.httpserver`) serves.

API requests are logged, those the HTTP layer refused included (so that a client's malformed request
shows in the log); admin requests are not.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

from . import admin
from .httpserver import HttpRequest, Refusal
from .requestlog import RequestLog
from .wire import ADMIN_PREFIX, Call, Reply, make_call

__all__ = ["FrontDoor"]


class FrontDoor:
    """``api`` answers one API request (the request pipeline); ``control`` is what the admin endpoint
    steers; ``log`` records every API request."""

    def __init__(self, api: Callable[[Call], Reply], control: admin.Control, log: RequestLog) -> None:
        self.api, self.control, self.log = api, control, log

    def __call__(self, request: HttpRequest) -> Reply:
        split = _split(request.target)
        if request.refusal is not None or split is None:
            return self._refused(request, request.refusal or Refusal(400, "invalid request target"), split)
        if split.path.startswith(ADMIN_PREFIX):
            return self._admin(request, split.path)
        call = make_call(request.method, split.path, split.query, request.body, request.headers)
        try:
            reply = self.api(call)
        except Exception:  # a bug in a handler: a 500 the log shows, not a dead connection
            traceback.print_exc(file=sys.stderr)
            reply = Reply(500, {"msg": "internal simulator error", "requestId": call.request_id})
        # Logged before the answer leaves: a client reading the log right after its reply must see it.
        self.log.record(call, reply, request.started, request.connection)
        return reply

    def _admin(self, request: HttpRequest, path: str) -> Reply:
        why = admin.refusal(request.method, request.headers, request.client_host)
        if why is not None:
            return Refusal(*why).reply()
        try:
            status, payload = admin.admin(self.control, request.method, path, request.body)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            status, payload = 500, {"error": "internal simulator error"}
        return Reply(status, payload)

    def _refused(self, request: HttpRequest, refusal: Refusal, split: SplitResult | None) -> Reply:
        """A refused request's answer; logged if it named an API path."""
        reply = refusal.reply()
        if split is not None and split.path.startswith("/") and not split.path.startswith(ADMIN_PREFIX):
            call = make_call(request.method, split.path, split.query, b"", request.headers)
            reply.payload["requestId"] = call.request_id
            call.org_id = call.query.get("orgId") or None
            self.log.record(call, reply, request.started, request.connection)
        return reply


def _split(target: str) -> SplitResult | None:
    try:
        return urlsplit(target)
    except ValueError:
        return None
