"""The :class:`Simulator`: a local EnOS API gateway on 127.0.0.1 — its public face and request pipeline.

Requests go through the same stages as on EnOS: gateway faults (latency, status bursts, dropped
connections, HTML pages), then the token service or authentication (:mod:`.gateway`), then service
faults, then the service (:mod:`.services`). The HTTP side lives in :mod:`.httpserver`, the admin
endpoint in :mod:`.admin`, the model in :mod:`.store`.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import config as settings
from . import services
from .faultapi import FaultShortcuts
from .faults import Fault, parse_fault
from .gateway import authenticate, gateway_reply, token_service
from .httpserver import SimHTTPServer
from .seeds import load_seed_file
from .store import App, Store
from .wire import SERVICE_MESSAGES, Call, Reply, describe, known_route

__all__ = ["Simulator"]


class Simulator(FaultShortcuts):
    """A local EnOS API gateway on 127.0.0.1 with an in-memory store and fault injection.

    Settings (``token_lifetime``, ``pair_limit``, ``require_paused``, ``get_format``, ``latency_ms``,
    ``pause_seconds``, ``start_seconds``, ``auth``, ``request_timeout``; see :mod:`.config`) are plain
    attributes that may be changed while it runs; they apply to the next request. :meth:`reset` restores
    the values given here. ``clock`` (seconds, like ``time.time``) drives token expiry, the 15-minute
    timestamp window, default state times and how long pause and start take, so a test can move time
    without sleeping.
    """

    token_lifetime: float
    pair_limit: int
    require_paused: bool
    get_format: str
    latency_ms: float
    pause_seconds: float
    start_seconds: float
    auth: str
    request_timeout: float

    def __init__(
        self,
        port: int = 0,
        *,
        token_lifetime: float = 7200.0,
        pair_limit: int = 100_000,
        require_paused: bool = True,
        get_format: str = "list",
        latency_ms: float = 0.0,
        pause_seconds: float = 0.0,
        start_seconds: float = 0.0,
        auth: str = "apim-signature",
        request_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        seed: Mapping[str, Any] | str | Path | None = None,
        on_request: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        given = {
            "token_lifetime": token_lifetime,
            "pair_limit": pair_limit,
            "require_paused": require_paused,
            "get_format": get_format,
            "latency_ms": latency_ms,
            "pause_seconds": pause_seconds,
            "start_seconds": start_seconds,
            "auth": auth,
            "request_timeout": request_timeout,
        }
        self._initial_config = settings.check_all(given)
        self.__dict__.update(self._initial_config)
        self.port = port
        self.clock = clock
        self.on_request = on_request
        self._store = Store(clock)
        self._baseline: Mapping[str, Any] | None = (
            load_seed_file(seed) if isinstance(seed, (str, Path)) else seed
        )
        if self._baseline is not None:
            self._store.seed(self._baseline)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind and serve in a background (daemon) thread; returns self."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        server = SimHTTPServer(("127.0.0.1", self.port), self)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_until_stopped, name="enos-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (idle keep-alive ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        server.close_connections()
        server.server_close()

    def __enter__(self) -> Simulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://127.0.0.1:{self.port}"

    def environment(self, access_key: str | None = None, org_id: str | None = None) -> dict[str, str]:
        """The ``ENOS_*`` variables that point a program at this simulator as app ``access_key`` (default:
        the first app) in ``org_id`` (default: the app's first organization, else the first pipeline's).
        They hold the app's secret key: a simulator-only value. ``ENOS_AUTH_SCHEME`` is added when the
        simulator accepts bearer tokens only."""
        env = {"ENOS_API_GATEWAY": self.base_url}
        with self._store.lock:
            app: App | None = (
                self._store.apps.get(access_key)
                if access_key is not None
                else next(iter(self._store.apps.values()), None)
            )
            if access_key is not None and app is None:
                raise KeyError(f"no app {access_key!r}")
            orgs = sorted(app.orgs) if app is not None and app.orgs else []
            first_pipeline = next(iter(self._store.pipelines.values()), None)
        if app is not None:
            env["ENOS_ACCESS_KEY"], env["ENOS_SECRET_KEY"] = app.access_key, app.secret_key
        org = org_id or (orgs[0] if orgs else first_pipeline.org_id if first_pipeline else None)
        if org is not None:
            env["ENOS_ORG_ID"] = org
        if self.auth == "bearer":
            env["ENOS_AUTH_SCHEME"] = "bearer"
        return env

    def export_lines(self) -> str:
        """:meth:`environment` as a shell ``export`` line to paste."""
        return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in self.environment().items())

    # -- settings --------------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The current settings (what ``GET /__admin/config`` shows)."""
        return {key: getattr(self, key) for key in settings.DEFAULTS}

    def configure(self, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Change settings (validated together: a bad value changes nothing); returns them all."""
        checked = settings.check_all({**(changes or {}), **kwargs})
        self.__dict__.update(checked)
        return self.config()

    # -- model -----------------------------------------------------------------------------------------

    def add_app(self, access_key: str, secret_key: str, orgs: Iterable[str] | None = None) -> None:
        """Register an application; ``orgs`` limits the organizations it may act on (None: any)."""
        self._store.add_app(access_key, secret_key, orgs)

    def add_pipeline(
        self,
        org_id: str,
        pipeline_id: str,
        status: str = "PAUSED",
        name: str | None = None,
        released: bool = True,
    ) -> None:
        """Add (or update) a pipeline; pipeline IDs are unique across organizations."""
        self._store.add_pipeline(org_id, pipeline_id, status, name, released)

    def pipeline_status(self, org_id: str, pipeline_id: str) -> str:
        """The status List Pipelines shows now (an operation still in progress has not changed it)."""
        pipeline = self._store.pipeline(org_id, pipeline_id)
        if pipeline is None:
            raise KeyError(f"no pipeline {pipeline_id} in org {org_id}")
        return pipeline.status

    def set_pipeline_status(self, org_id: str, pipeline_id: str, status: str) -> None:
        """Set a status at once (no transition is recorded; an operation in progress is dropped)."""
        self._store.set_status(org_id, pipeline_id, status)

    def set_state(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        asset_id: str,
        point_id: str,
        value: Any = 0.0,
        time: int | None = None,
    ) -> None:
        """Give one (asset, point) pair state; ``time`` is Unix ms (default: the clock's now)."""
        self._store.set_pairs(org_id, pipeline_id, stage, [asset_id], [point_id], value, time)

    def set_pairs(
        self,
        org_id: str,
        pipeline_id: str,
        stage: str,
        asset_ids: Iterable[str],
        point_ids: Sequence[str],
        value: Any = 0.0,
        time: int | None = None,
    ) -> int:
        """Give every pair of ``asset_ids`` x ``point_ids`` state; returns the number of pairs."""
        return self._store.set_pairs(org_id, pipeline_id, stage, asset_ids, point_ids, value, time)

    def stage_pairs(self, org_id: str, pipeline_id: str, stage: str) -> set[tuple[str, str]]:
        """The (asset, point) pairs that currently have state in one stage."""
        return self._store.stage_pairs(org_id, pipeline_id, stage)

    def pair_count(self) -> int:
        """The number of pairs with state, over every org, pipeline and stage."""
        return self._store.pair_count()

    def seed(self, seed: Mapping[str, Any]) -> dict[str, int]:
        """Add apps, pipelines and state from a mapping; returns counts of apps, pipelines and pairs."""
        return self._store.seed(seed)

    def load_seed(self, path: str | Path) -> dict[str, int]:
        """Like :meth:`seed`, from a JSON (``.json``) or YAML file."""
        return self._store.seed(load_seed_file(path))

    def reset(self) -> None:
        """Forget apps, tokens, pipelines, state, faults, the log, the transitions, the token count and
        every settings change, then re-apply the ``seed`` given to the constructor, if any."""
        with self._store.lock:
            self._store.clear()
            self.__dict__.update(self._initial_config)
            if self._baseline is not None:
                self._store.seed(self._baseline)

    # -- observation -----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log (admin calls excluded). Each entry: time (wall clock), sim_time (the
        simulator's clock), method, path, operation, action, query, status (None for a dropped
        connection), code, msg, request_id, org_id, pipeline_id, stage_instance_name, asset_count,
        point_count, pipeline_status (the pipeline's status as List Pipelines showed it when the request
        was served), deleted (Delete Stage State: whether state was deleted), operate_body (start's JSON
        body), auth (the scheme that authenticated it), connection, duration_ms, fault."""
        with self._store.lock:
            return [dict(entry) for entry in self._store.log]

    @property
    def transitions(self) -> list[dict[str, Any]]:
        """Status changes made by Operate Pipeline, oldest first: org_id, pipeline_id, action, from, to,
        requested_at and effective_at (simulator clock seconds), request_id."""
        with self._store.lock:
            self._store.settle_all()
            return [dict(entry) for entry in self._store.transitions]

    def clear_log(self) -> None:
        """Forget the request log and the transitions."""
        with self._store.lock:
            self._store.log.clear()
            self._store.transitions.clear()

    @property
    def tokens_issued(self) -> int:
        """Tokens handed out by token/get and token/refresh."""
        return self._store.tokens_issued

    @property
    def connections_opened(self) -> int:
        """TCP connections accepted since start (shows whether clients reuse keep-alive connections)."""
        return self._store.connections_opened

    def summary(self) -> dict[str, Any]:
        """Apps (access keys only), pipelines with status and pair counts per stage, faults, counters."""
        with self._store.lock:
            self._store.settle_all()
            pipelines = []
            for p in self._store.pipelines.values():
                stages = {
                    stage: sum(len(per_asset) for per_asset in state.values())
                    for (org, pid, stage), state in self._store.state.items()
                    if org == p.org_id and pid == p.pipeline_id
                }
                pending = None if p.pending is None else {"action": p.pending.action, "to": p.pending.target}
                pipelines.append(
                    {
                        **services.pipeline_json(p),
                        "orgId": p.org_id,
                        "released": p.released,
                        "stages": stages,
                        "pending": pending,
                    }
                )
            return {
                "apps": sorted(self._store.apps),
                "pipelines": pipelines,
                "faults": [f.to_dict() for f in self._store.faults],
                "tokens_issued": self._store.tokens_issued,
                "connections_opened": self._store.connections_opened,
            }

    # -- faults ----------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault | str | Mapping[str, Any]) -> Fault:
        """Inject a fault: a :class:`Fault`, a spec string (``"status=503,count=2"``) or a mapping."""
        if isinstance(fault, str):
            fault = parse_fault(fault)
        elif not isinstance(fault, Fault):
            fault = Fault.from_mapping(fault)
        return self._store.add_fault(fault)

    @property
    def faults(self) -> list[Fault]:
        """The active faults (copies; counts show what is left)."""
        with self._store.lock:
            return [Fault(**vars(f)) for f in self._store.faults]

    def clear_faults(self) -> None:
        with self._store.lock:
            self._store.faults.clear()

    def expire_tokens(self) -> int:
        """Expire every token now; returns how many were live. Later calls with them get the 1203 401."""
        return self._store.expire_tokens()

    # -- request handling (called from the HTTP handler threads) ---------------------------------------

    def _handle(self, call: Call) -> Reply:
        describe(call)
        delay_ms, fault = self._store.take_faults(call.op, gateway=True)
        if delay_ms > 0:
            call.fault = "latency"
        delay_ms += self.latency_ms
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)
        if fault is not None:
            call.fault = fault.kind
            if fault.kind == "drop":
                return Reply(0, drop=True)
            if fault.kind in ("status", "html"):
                return gateway_reply(fault, call.request_id)
            if fault.kind == "expire":
                self._store.expire_tokens()
        if not known_route(call.method, call.path):
            return Reply(404, {"msg": "not found", "requestId": call.request_id}, msg="not found")
        if call.op in ("token", "refresh"):
            return token_service(self, call)
        app = authenticate(self, call)
        if isinstance(app, Reply):
            return app
        _, fault = self._store.take_faults(call.op, gateway=False)
        if fault is not None and fault.after:
            reply = services.serve(self, call, app, None)
            return self._answer_lost(call, fault, reply)
        if fault is not None and fault.kind not in ("no-effect", "becomes"):
            call.fault = fault.kind
            self._note_status(call)
            if fault.kind == "data-false":
                call.deleted = False if call.op == "delete" else None
                return services.envelope(call, 0, False)
            assert fault.code is not None
            return services.envelope(
                call, fault.code, None, fault.msg or SERVICE_MESSAGES.get(fault.code, "Error")
            )
        return services.serve(self, call, app, fault)

    def _answer_lost(self, call: Call, fault: Fault, served: Reply) -> Reply:
        """The service acted (``served`` is what it answered); what reaches the client is the fault."""
        call.fault = f"{fault.kind} after"
        if fault.kind == "drop":
            return Reply(0, drop=True)
        if fault.kind in ("status", "html"):
            return gateway_reply(fault, call.request_id)
        assert fault.code is not None
        msg = fault.msg or SERVICE_MESSAGES.get(fault.code, "Error")
        return services.envelope(call, fault.code, None, msg)

    def _note_status(self, call: Call) -> None:
        """Record the named pipeline's status on a request the service never saw (a faulted one)."""
        if call.org_id and call.pipeline_id:
            pipeline = self._store.pipeline(call.org_id, call.pipeline_id)
            call.pipeline_status = None if pipeline is None else pipeline.status

    def _record(self, call: Call, reply: Reply, started: float, connection: int) -> None:
        entry: dict[str, Any] = {
            "time": time.time(),
            "sim_time": self.clock(),
            "method": call.method,
            "path": call.path,
            "operation": call.op,
            "action": call.action,
            "query": call.query,
            "status": None if reply.drop else reply.status,
            "code": reply.code,
            "msg": reply.msg,
            "request_id": call.request_id,
            "org_id": call.org_id,
            "pipeline_id": call.pipeline_id,
            "stage_instance_name": call.stage,
            "asset_count": call.asset_count,
            "point_count": call.point_count,
            "pipeline_status": call.pipeline_status,
            "deleted": call.deleted,
            "operate_body": call.operate_body,
            "auth": call.auth,
            "connection": connection,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "fault": call.fault,
        }
        self._store.record(entry)
        if self.on_request is not None:
            try:
                self.on_request(dict(entry))
            except Exception:  # a broken observer must not break serving
                traceback.print_exc(file=sys.stderr)
