"""The :class:`Simulator`: a local EnOS API gateway on 127.0.0.1 — its public face, composed of parts.

The parts know nothing of this class: the HTTP server (:mod:`.httpserver`) serves one plain callable,
the front door (:mod:`.frontdoor`), which sends admin requests to :mod:`.admin` and API requests through
the request pipeline (:mod:`.dispatch`: gateway, token service and authentication, services, faults) and
into the request log (:mod:`.requestlog`). Handlers work on a :class:`.context.Context`: the model
(:mod:`.store`), the settings (:mod:`.config`), the clock.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import dispatch
from .config import LOG_LIMIT, Setting, Settings
from .context import Context
from .faultapi import FaultShortcuts
from .faults import Fault, parse_fault
from .frontdoor import FrontDoor
from .httpserver import SimHTTPServer
from .modelapi import ModelMethods
from .requestlog import Observer, RequestLog
from .seeds import load_seed_file
from .store import Store
from .wire import Call, Reply

__all__ = ["Simulator"]


class Simulator(ModelMethods, FaultShortcuts):
    """A local EnOS API gateway on 127.0.0.1 with an in-memory store and fault injection.

    Settings (``token_lifetime``, ``pair_limit``, ``require_paused``, ``get_format``, ``latency_ms``,
    ``pause_seconds``, ``start_seconds``, ``auth``, ``request_timeout``; see :mod:`.config`) are
    attributes that may be changed while it runs (unchecked; :meth:`configure` checks); they apply to
    the next request. :meth:`reset` restores the values given here. ``clock`` (seconds, like
    ``time.time``) drives token expiry, the 15-minute timestamp window, default state times and how long
    pause and start take, so a test can move time without sleeping. The request log keeps the newest
    ``request_log_limit`` requests (and transitions); ``on_request`` sees every one as it is logged.
    """

    token_lifetime = Setting[float]()
    pair_limit = Setting[int]()
    require_paused = Setting[bool]()
    get_format = Setting[str]()
    latency_ms = Setting[float]()
    pause_seconds = Setting[float]()
    start_seconds = Setting[float]()
    auth = Setting[str]()
    request_timeout = Setting[float]()

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
        on_request: Observer | None = None,
        request_log_limit: int = LOG_LIMIT,
    ) -> None:
        self._settings = Settings(
            {
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
        )
        self._initial_config = self._settings.as_dict()
        self.port = port
        self.clock = clock
        self._log = RequestLog(request_log_limit, clock, on_request)
        self._store = Store(clock, request_log_limit)
        self._context = Context(self._store, self._settings)
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
        # Looked up per request, not bound once: a test may wrap _handle to watch or hold requests.
        front = FrontDoor(lambda call: self._handle(call), self, self._log)
        server = SimHTTPServer(
            ("127.0.0.1", self.port),
            front,
            lambda: self._settings.request_timeout,
            self._store.count_connection,
        )
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
        app, first_org = self._store.identity(access_key)
        if app is not None:
            env["ENOS_ACCESS_KEY"], env["ENOS_SECRET_KEY"] = app.access_key, app.secret_key
        org = org_id or first_org
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
        return self._settings.as_dict()

    def configure(self, changes: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
        """Change settings (validated together: a bad value changes nothing); returns them all."""
        self._settings.update({**(changes or {}), **kwargs})
        return self.config()

    @property
    def on_request(self) -> Observer | None:
        """Called with (a copy of) every request log entry as it is recorded; may be replaced any time."""
        return self._log.on_request

    @on_request.setter
    def on_request(self, observer: Observer | None) -> None:
        self._log.on_request = observer

    @property
    def request_log_limit(self) -> int:
        """How many requests (and transitions) the log keeps: the newest ones."""
        return self._log.limit

    # -- reset -----------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget apps, tokens, pipelines, state, faults, the log, the transitions, the token count and
        every settings change, then re-apply the ``seed`` given to the constructor, if any."""
        with self._store.lock:
            self._store.clear()
            self._log.clear()
            self._settings.update(self._initial_config)
            if self._baseline is not None:
                self._store.seed(self._baseline)

    # -- observation -----------------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the request log, oldest first: the newest ``request_log_limit`` API requests (admin
        calls are not logged). Each entry: time (wall clock), sim_time (the simulator's clock), method,
        path, operation, action, query, status (None for a dropped connection), code, msg, request_id,
        org_id, pipeline_id, stage_instance_name, asset_count, point_count, pipeline_status (the
        pipeline's status as List Pipelines showed it when the request was served), deleted (Delete Stage
        State: whether state was deleted), operate_body (start's JSON body), auth (the scheme that
        authenticated it), connection, duration_ms, fault. Texts copied from a request are cut to a few
        hundred characters (see :mod:`.requestlog`)."""
        return self._log.entries()

    @property
    def requests_dropped(self) -> int:
        """How many of the oldest entries the log dropped to stay within its limit, since it was cleared."""
        return self._log.dropped

    @property
    def transitions(self) -> list[dict[str, Any]]:
        """Status changes made by Operate Pipeline, oldest first: org_id, pipeline_id, action, from, to,
        requested_at and effective_at (simulator clock seconds), request_id."""
        pipelines = self._store.pipelines
        with pipelines.lock:
            pipelines.settle_all()
            return [dict(entry) for entry in pipelines.transitions]

    def clear_log(self) -> None:
        """Forget the request log and the transitions."""
        self._log.clear()
        with self._store.lock:
            self._store.pipelines.transitions.clear()

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
        return self._store.summary()

    # -- faults ----------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault | str | Mapping[str, Any]) -> Fault:
        """Inject a fault: a :class:`Fault`, a spec string (``"status=503,count=2"``) or a mapping."""
        if isinstance(fault, str):
            fault = parse_fault(fault)
        elif not isinstance(fault, Fault):
            fault = Fault.from_mapping(fault)
        return self._store.faults.add(fault)

    @property
    def faults(self) -> list[Fault]:
        """The active faults (copies; counts show what is left)."""
        return self._store.faults.copies()

    def clear_faults(self) -> None:
        self._store.faults.clear()

    def expire_tokens(self) -> int:
        """Expire every token now; returns how many were live. Later calls with them get the 1203 401."""
        return self._store.expire_tokens()

    # -- request handling (called from the HTTP handler threads) ---------------------------------------

    def _handle(self, call: Call) -> Reply:
        """One API request through the request pipeline. Looked up on every request, so that a test can
        wrap it (``monkeypatch.setattr(sim, "_handle", spy)``) to watch or hold requests."""
        return dispatch.handle(self._context, call)
