"""Pytest fixtures around the local EnOS simulator (registered from conftest.py via ``pytest_plugins``).

``simulator``: a started :class:`Simulator` with one app, org ``o-test``, a PAUSED and a RUNNING pipeline;
stopped after the test. ``simulator_factory``: build more of them with other options.
``simulator_env``: the ``simulator`` plus ENOS_* variables pointing at it.
``sim_api``: a :class:`SimApi` for the ``simulator`` - a minimal raw client (``requests`` plus the
documented signing rule), independent of ``enos_pulumi.enos.client``, for tests that need exact requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import pytest
import requests

from enos_pulumi.enos.auth import params_data, request_signature, token_encryption
from enos_pulumi.simulator import Simulator

__all__ = [
    "SIM_ACCESS_KEY",
    "SIM_ORG_ID",
    "SIM_OTHER_ORG_ID",
    "SIM_OTHER_PIPELINE",
    "SIM_PAUSED_PIPELINE",
    "SIM_RUNNING_PIPELINE",
    "SIM_SECRET_KEY",
    "SIM_STAGE",
    "FakeClock",
    "SimApi",
    "make_simulator",
    "module_simulator",
    "sim_api",
    "simulator",
    "simulator_env",
    "simulator_factory",
    "started_by",
]

SIM_ACCESS_KEY = "test-access-key"
SIM_SECRET_KEY = "test-secret-key"  # test value for the local simulator only
SIM_ORG_ID = "o-test"
SIM_PAUSED_PIPELINE = "pl-paused"
SIM_RUNNING_PIPELINE = "pl-running"
SIM_STAGE = "FixedTimeWindowAggregator_1"
#: A pipeline of another organization, which the test app may not touch (for 61106 / 61108 checks).
SIM_OTHER_ORG_ID = "o-other"
SIM_OTHER_PIPELINE = "pl-other-org"

TOKEN_PATH = "/apim-token-service/v2.0/token/get"
REFRESH_PATH = "/apim-token-service/v2.0/token/refresh"
STATE_PATH = "/streaming/v2.0/stage-state"
LIST_PATH = "/streaming/v2.0/streaming/pipelines"
OPERATE_PATH = "/streaming/v2.0/streaming/pipeline/"
START_BODY = {"executionMode": 1, "kafkaRate": 1000}


def make_simulator(**options: Any) -> Simulator:
    """A started simulator with the standard test app and pipelines; ``options`` go to :class:`Simulator`.

    The app may act on ``SIM_ORG_ID`` only; ``SIM_OTHER_PIPELINE`` (PAUSED) lives in ``SIM_OTHER_ORG_ID``.
    No stage state is seeded: tests add what they need with ``set_state`` / ``set_pairs``.
    """
    sim = Simulator(**options)
    sim.add_app(SIM_ACCESS_KEY, SIM_SECRET_KEY, orgs=[SIM_ORG_ID])
    sim.add_pipeline(SIM_ORG_ID, SIM_PAUSED_PIPELINE, status="PAUSED")
    sim.add_pipeline(SIM_ORG_ID, SIM_RUNNING_PIPELINE, status="RUNNING")
    sim.add_pipeline(SIM_OTHER_ORG_ID, SIM_OTHER_PIPELINE, status="PAUSED")
    return sim.start()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = make_simulator()
    try:
        yield sim
    finally:
        sim.stop()


class Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)


def started_by(start: Callable[..., S]) -> Iterator[Callable[..., S]]:
    """A factory fixture's body: ``start`` as the factory, and whatever it started stopped afterwards."""
    started: list[S] = []

    def factory(*args: Any, **options: Any) -> S:
        thing = start(*args, **options)
        started.append(thing)
        return thing

    try:
        yield factory
    finally:
        for thing in started:
            thing.stop()


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    """``simulator_factory(pair_limit=10, clock=...)``: a started standard simulator, stopped afterwards."""
    yield from started_by(make_simulator)


@pytest.fixture(scope="module")
def module_simulator() -> Iterator[Simulator]:
    """A standard simulator shared by one test module (its provider host or plugin talks to it); tests
    isolate themselves with distinct resource and stage names."""
    sim = make_simulator()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def simulator_env(simulator: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """The ``simulator``, with ENOS_API_GATEWAY / ACCESS_KEY / SECRET_KEY / ORG_ID set to reach it."""
    monkeypatch.setenv("ENOS_API_GATEWAY", simulator.base_url)
    monkeypatch.setenv("ENOS_ACCESS_KEY", SIM_ACCESS_KEY)
    monkeypatch.setenv("ENOS_SECRET_KEY", SIM_SECRET_KEY)
    monkeypatch.setenv("ENOS_ORG_ID", SIM_ORG_ID)
    return simulator


class FakeClock:
    """A clock for ``Simulator(clock=...)`` that moves only when told: ``clock.now += 5``."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SimApi:
    """A minimal signing client written from docs/design.md, independent of enos_pulumi.enos.client.

    ``sim`` is a simulator or its base URL. ``scheme="bearer"`` sends ``Authorization: Bearer <token>``
    instead of the apim-* signature headers.
    """

    def __init__(
        self,
        sim: Simulator | str,
        key: str = SIM_ACCESS_KEY,
        secret: str = SIM_SECRET_KEY,
        clock: Callable[[], float] = time.time,
        scheme: str = "apim-signature",
    ) -> None:
        self.base = sim if isinstance(sim, str) else sim.base_url
        self.key, self.secret, self.clock, self.scheme = key, secret, clock, scheme
        self.session = requests.Session()
        self.session.trust_env = False
        self._token: str | None = None
        self._last_ts = 0

    def now_ms(self) -> int:
        # Distinct timestamps, so two token requests in one millisecond are not replays.
        ts = max(int(self.clock() * 1000), self._last_ts + 1)
        self._last_ts = ts
        return ts

    def token_body(self, ts: int | None = None) -> dict[str, Any]:
        ts = self.now_ms() if ts is None else ts
        return {
            "appKey": self.key,
            "encryption": token_encryption(self.key, ts, self.secret),
            "timestamp": ts,
        }

    def post_token(self, body: Any, path: str = TOKEN_PATH) -> requests.Response:
        return self.session.post(self.base + path, json=body, timeout=5)

    @property
    def token(self) -> str:
        if self._token is None:
            reply = self.post_token(self.token_body()).json()
            assert reply["status"] == 0, reply
            self._token = reply["data"]["accessToken"]
        return self._token

    def call(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        body: Any = None,
        *,
        token: str | None = None,
        ts: int | None = None,
        secret: str | None = None,
        sign_query: Iterable[tuple[str, str]] | None = None,
        sign_body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 5,
    ) -> requests.Response:
        query = list(query)
        raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        token = self.token if token is None else token
        sent = {"Content-Type": "application/json;charset=UTF-8"}
        if self.scheme == "bearer":
            sent["Authorization"] = f"Bearer {token}"
        else:
            ts = self.now_ms() if ts is None else ts
            signed_params = params_data(
                query if sign_query is None else sign_query, raw if sign_body is None else sign_body
            )
            sent["apim-accesstoken"] = token
            sent["apim-timestamp"] = str(ts)
            sent["apim-signature"] = request_signature(token, signed_params, ts, secret or self.secret)
        sent.update(headers or {})
        url = self.base + path + ("?" + urlencode(query) if query else "")
        return self.session.request(method, url, data=raw or None, headers=sent, timeout=timeout)

    def state(
        self,
        action: str,
        assets: str,
        points: str,
        pipeline: str = SIM_PAUSED_PIPELINE,
        stage: str = SIM_STAGE,
        org: str = SIM_ORG_ID,
    ) -> requests.Response:
        body = {"pipelineId": pipeline, "stageInstanceName": stage, "assetIds": assets, "pointIds": points}
        return self.call("POST", STATE_PATH, [("action", action), ("orgId", org)], body)

    def operate(
        self, pipeline: str, action: str, body: Any = None, org: str = SIM_ORG_ID
    ) -> requests.Response:
        return self.call("POST", OPERATE_PATH + pipeline, [("action", action), ("orgId", org)], body)

    def pause(self, pipeline: str = SIM_RUNNING_PIPELINE) -> dict[str, Any]:
        reply: dict[str, Any] = self.operate(pipeline, "pause").json()
        return reply

    def start(self, pipeline: str = SIM_RUNNING_PIPELINE, body: Any = None) -> dict[str, Any]:
        reply: dict[str, Any] = self.operate(pipeline, "start", START_BODY if body is None else body).json()
        return reply

    def list(self, page_no: int = 1, page_size: int = 10, released: str = "true") -> requests.Response:
        query = [("orgId", SIM_ORG_ID), ("pageNo", str(page_no)), ("pageSize", str(page_size))]
        return self.call("GET", LIST_PATH, [*query, ("ifReleased", released)])

    def listed_status(self, pipeline: str) -> str | None:
        """The status List Pipelines shows for ``pipeline`` (first page of 100)."""
        for entry in self.list(1, 100).json()["data"]["pipelines"]:
            if entry["pipelineId"] == pipeline:
                return str(entry["status"])
        return None

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def sim_api(simulator: Simulator) -> Iterator[SimApi]:
    client = SimApi(simulator)
    try:
        yield client
    finally:
        client.close()
