"""The admin endpoint (``/__admin/...``): inspect and steer a running simulator over HTTP, JSON in and out.

It has no authentication, so it must not be reachable from anything but this machine's own tools:
requests must come from a loopback address, carry a loopback ``Host`` (a web page that rebinds its DNS
name to 127.0.0.1 still sends its own name), carry no ``Origin`` but a loopback one (browsers send it on
every cross-site write), and writes (POST, DELETE) must say ``Content-Type: application/json`` — a type
a web page cannot send cross-site without a CORS preflight, which this endpoint never grants.

It steers the simulator through its public face only (:class:`Control`, which ``Simulator`` is).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from .faults import Fault
from .seeds import SeedError
from .wire import ADMIN_PREFIX, parse_json

__all__ = ["ENDPOINTS", "Control", "admin", "refusal"]

#: For ``enos-simulator --help``.
ENDPOINTS = """\
Admin endpoint (no authentication: loopback clients, loopback Host/Origin only; POST and DELETE need
Content-Type: application/json), JSON in and out:
  GET    /__admin/health          {"ok": true}
  GET    /__admin/state           apps (access keys), pipelines with status and pairs per stage, faults
  GET    /__admin/requests        the request log (no secrets; the newest --request-log-limit, with
                                  "limit" and "dropped"); DELETE clears it and the transitions
  GET    /__admin/transitions     pipeline status changes: action, from, to, requested_at, effective_at
  GET    /__admin/faults          active faults; DELETE clears them
  POST   /__admin/faults          {"spec": "status=503,count=2"} or {"kind": "drop", "op": "delete",
                                  "count": 1}, or a list of those
  POST   /__admin/expire-tokens   expire every issued token now (next calls get HTTP 401, code 1203)
  POST   /__admin/seed            add a seed (same shape as the seed files)
  POST   /__admin/reset           forget everything (faults too; config back to its startup values),
                                  then re-apply the startup seed
  GET/POST /__admin/config        token_lifetime, pair_limit, require_paused, get_format, latency_ms,
                                  pause_seconds, start_seconds, auth, request_timeout
  e.g. curl -X POST -H 'Content-Type: application/json' -d '{"pause_seconds": 5}' URL/__admin/config
"""

_LOOPBACK_NAMES = ("localhost",)


class Control(Protocol):
    """What the admin endpoint may do to a simulator (``Simulator`` is one)."""

    @property
    def requests(self) -> list[dict[str, Any]]: ...
    @property
    def requests_dropped(self) -> int: ...
    @property
    def request_log_limit(self) -> int: ...
    @property
    def transitions(self) -> list[dict[str, Any]]: ...
    @property
    def faults(self) -> list[Fault]: ...
    def clear_log(self) -> None: ...
    def clear_faults(self) -> None: ...
    def add_fault(self, fault: Fault) -> Fault: ...
    def expire_tokens(self) -> int: ...
    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]: ...
    def reset(self) -> None: ...
    def config(self) -> dict[str, Any]: ...
    def configure(self, changes: Mapping[str, Any] | None = None) -> dict[str, Any]: ...
    def summary(self) -> dict[str, Any]: ...


def _is_loopback(host: str) -> bool:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(authority: str) -> str:
    """The host of ``host[:port]`` (``[v6]:port`` too)."""
    if authority.startswith("["):
        return authority[: authority.find("]") + 1] if "]" in authority else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def refusal(method: str, headers: Mapping[str, str], client_host: str) -> tuple[int, str] | None:
    """Why an admin request must be refused (status, message), or None. ``headers`` are lower-cased."""
    if not _is_loopback(client_host):
        return 403, "admin endpoint is loopback only"
    host = headers.get("host")
    if host is not None and not _is_loopback(_host_of(host)):
        return 403, "admin endpoint refuses a non-loopback Host header"
    origin = headers.get("origin")
    if origin is not None:
        try:
            parts = urlsplit(origin.strip())
            origin_host = parts.hostname or ""
        except ValueError:
            parts, origin_host = None, ""
        if parts is None or parts.scheme not in ("http", "https") or not _is_loopback(origin_host):
            return 403, "admin endpoint refuses cross-origin requests"
    if method not in ("GET", "HEAD"):
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return 415, "admin writes need Content-Type: application/json"
    return None


def admin(sim: Control, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Serve one admin request (already past :func:`refusal`): (HTTP status, JSON payload)."""
    name = path[len(ADMIN_PREFIX) :].strip("/")
    try:
        payload: Any = parse_json(body) if body.strip() else {}
    except ValueError:
        return 400, {"error": "body is not JSON"}
    try:
        return _route(sim, method, name, payload)
    except (SeedError, ValueError, TypeError, OverflowError) as exc:
        return 400, {"error": str(exc)}


def _route(sim: Control, method: str, name: str, payload: Any) -> tuple[int, Any]:
    if (method, name) == ("GET", "health"):
        return 200, {"ok": True}
    if name == "requests" and method in ("GET", "DELETE"):
        if method == "DELETE":
            sim.clear_log()
        logged = sim.requests if method == "GET" else []
        return 200, {"requests": logged, "limit": sim.request_log_limit, "dropped": sim.requests_dropped}
    if (method, name) == ("GET", "transitions"):
        return 200, {"transitions": sim.transitions}
    if name == "faults" and method in ("GET", "POST", "DELETE"):
        if method == "DELETE":
            sim.clear_faults()
        elif method == "POST":
            raws = payload if isinstance(payload, list) else [payload]
            if not all(isinstance(raw, Mapping) for raw in raws):
                return 400, {"error": "a fault is an object: {kind, ...} or {spec}"}
            faults = [Fault.from_mapping(raw) for raw in raws]  # all valid before any is added
            for fault in faults:
                sim.add_fault(fault)
        return 200, {"faults": [f.to_dict() for f in sim.faults]}
    if (method, name) == ("POST", "expire-tokens"):
        return 200, {"expired": sim.expire_tokens()}
    if (method, name) == ("POST", "seed"):
        return 200, sim.seed(payload)
    if (method, name) == ("POST", "reset"):
        sim.reset()
        return 200, {"ok": True}
    if name == "config" and method in ("GET", "POST"):
        if method == "POST":
            sim.configure(payload)
        return 200, sim.config()
    if (method, name) == ("GET", "state"):
        return 200, sim.summary()
    return 404, {"error": f"no admin endpoint {method} /__admin/{name}"}
