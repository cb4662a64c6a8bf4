"""The simulator's admin endpoint and settings: faults, seeds, the log, config, reset — over HTTP.

(Its defences against web pages and hostile input are in test_simulator_http.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from enos_pulumi.simulator import Simulator
from tests.support.fixtures_simulator import SIM_ORG_ID, SIM_SECRET_KEY, SIM_STAGE, SimApi


class Admin:
    """The admin endpoint as a script would use it: JSON bodies with their Content-Type."""

    def __init__(self, sim: Simulator) -> None:
        self.base = sim.base_url + "/__admin/"
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(self, method: str, name: str, payload: Any = None, *, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else b"" if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if method != "GET" else {}
        return self.session.request(method, self.base + name, data=data, headers=headers, timeout=5)


@pytest.fixture
def admin(simulator: Simulator) -> Iterator[Admin]:
    made = Admin(simulator)
    yield made
    made.session.close()


def test_admin_endpoint(simulator: Simulator, sim_api: SimApi, admin: Admin) -> None:
    api = sim_api
    faults = admin("POST", "faults", {"spec": "status=503,op=list,count=1"})
    assert faults.json()["faults"][0]["kind"] == "status"
    admin("POST", "faults", [{"kind": "code", "code": 61199, "op": "get", "count": 1}])
    assert api.list(1, 10).status_code == 503
    assert api.state("get", "a", "p").json()["code"] == 61199
    assert admin("GET", "faults").json() == {"faults": []}

    seed = {
        "pipelines": [
            {"org": SIM_ORG_ID, "id": "pl-seeded", "state": {SIM_STAGE: {"assets": "x", "points": "y"}}}
        ]
    }
    assert admin("POST", "seed", seed).json() == {"apps": 0, "pipelines": 1, "pairs": 1}
    assert simulator.stage_pairs(SIM_ORG_ID, "pl-seeded", SIM_STAGE) == {("x", "y")}
    state = admin("GET", "state").json()
    assert {"pipelineId": "pl-seeded", "orgId": SIM_ORG_ID, "stages": {SIM_STAGE: 1}}.items() <= next(
        p for p in state["pipelines"] if p["pipelineId"] == "pl-seeded"
    ).items()
    assert SIM_SECRET_KEY not in json.dumps(state)

    logged = admin("GET", "requests").json()["requests"]
    assert [e["operation"] for e in logged] == ["token", "list", "get"]
    assert admin("DELETE", "requests").status_code == 200
    assert simulator.requests == []

    config = admin("POST", "config", {"pair_limit": 1, "get_format": "items"}).json()
    assert config["pair_limit"] == 1 and simulator.get_format == "items"
    assert api.state("get", "a,b", "p").json()["code"] == 61105

    assert admin("POST", "expire-tokens").json() == {"expired": 1}
    assert admin("POST", "seed", {"apps": [{"access_key": "k"}]}).status_code == 400
    assert admin("POST", "faults", {"kind": "bogus"}).status_code == 400
    assert admin("POST", "faults", raw=b"{").status_code == 400
    assert admin("GET", "nothing").status_code == 404

    assert admin("POST", "reset").json() == {"ok": True}
    assert simulator.summary()["pipelines"] == [] and simulator.tokens_issued == 0


def test_config_shows_and_changes_every_setting(simulator: Simulator, admin: Admin) -> None:
    assert admin("GET", "config").json() == {
        "token_lifetime": 7200.0,
        "pair_limit": 100_000,
        "require_paused": True,
        "get_format": "list",
        "latency_ms": 0.0,
        "pause_seconds": 0.0,
        "start_seconds": 0.0,
        "auth": "apim-signature",
        "request_timeout": 30.0,
    }
    changes = {"pause_seconds": 2.5, "start_seconds": 1, "auth": "any", "request_timeout": 5}
    assert admin("POST", "config", changes).json().items() >= changes.items()
    assert (simulator.pause_seconds, simulator.start_seconds, simulator.auth) == (2.5, 1.0, "any")
    refused = admin("POST", "config", {"pause_seconds": 1, "nonsense": 1})
    assert refused.status_code == 400 and "nonsense" in refused.json()["error"]
    assert simulator.pause_seconds == 2.5  # a bad request changes nothing, not even its good keys


def test_reset_forgets_config_changes_too(simulator_factory: Any) -> None:
    sim = simulator_factory(pair_limit=50, pause_seconds=1)
    admin = Admin(sim)
    try:
        admin("POST", "config", {"pair_limit": 7, "latency_ms": 5, "auth": "bearer", "pause_seconds": 9})
        sim.require_paused = False
        assert admin("POST", "reset").json() == {"ok": True}
        assert admin("GET", "config").json() == {
            **sim.config(),
            "pair_limit": 50,
            "latency_ms": 0.0,
            "auth": "apim-signature",
            "pause_seconds": 1.0,
            "require_paused": True,
        }
        assert (sim.pair_limit, sim.require_paused) == (50, True)
    finally:
        admin.session.close()


def test_reset_restores_the_constructor_seed() -> None:
    seed = {
        "apps": [{"access_key": "k", "secret_key": "s"}],
        "pipelines": [{"org": "o", "id": "p", "state": {SIM_STAGE: {"assets": ["a"], "points": ["x"]}}}],
    }
    with Simulator(seed=seed) as sim:
        sim.add_pipeline("o", "p2")
        sim.set_state("o", "p", SIM_STAGE, "b", "x")
        sim.reset()
        assert sim.stage_pairs("o", "p", SIM_STAGE) == {("a", "x")}
        assert [p["pipelineId"] for p in sim.summary()["pipelines"]] == ["p"]


def test_constructor_refuses_unusable_settings() -> None:
    for options in ({"pair_limit": 0}, {"get_format": "xml"}, {"auth": "basic"}, {"pause_seconds": -1}):
        with pytest.raises(ValueError, match=next(iter(options))):
            Simulator(**options)


def test_environment_points_a_program_at_the_simulator(simulator: Simulator) -> None:
    assert simulator.environment() == {
        "ENOS_API_GATEWAY": simulator.base_url,
        "ENOS_ACCESS_KEY": "test-access-key",
        "ENOS_SECRET_KEY": SIM_SECRET_KEY,
        "ENOS_ORG_ID": SIM_ORG_ID,
    }
    simulator.auth = "bearer"
    assert simulator.environment(org_id="o-x")["ENOS_ORG_ID"] == "o-x"
    assert simulator.environment()["ENOS_AUTH_SCHEME"] == "bearer"
    with pytest.raises(KeyError):
        simulator.environment("no-such-app")
