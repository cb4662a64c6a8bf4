"""The simulator's authentication schemes over real sockets: ``apim-signature`` (default), ``bearer``
(``Authorization: Bearer <accessToken>``) and ``any``; raw requests, independent of the client."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from enos_pulumi.simulator import Simulator
from tests.support.fixtures_simulator import (
    LIST_PATH,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_STAGE,
    FakeClock,
    SimApi,
)

Factory = Callable[..., Simulator]
LIST_QUERY = [("orgId", SIM_ORG_ID)]


def bearer_get(api: SimApi, authorization: str | None) -> tuple[int, dict[str, object]]:
    """A List Pipelines call with exactly this Authorization header (None: without one), nothing else."""
    headers = {} if authorization is None else {"Authorization": authorization}
    reply = api.session.get(api.base + LIST_PATH, params=LIST_QUERY, headers=headers, timeout=5)
    return reply.status_code, reply.json()


def test_bearer_scheme_serves_a_bearer_token(simulator_factory: Factory) -> None:
    sim = simulator_factory(auth="bearer")
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a"], ["p"])
    api = SimApi(sim, scheme="bearer")
    reply = api.state("delete", "a", "p")
    assert reply.status_code == 200 and reply.json()["data"] is True
    assert "apim-signature" not in reply.request.headers
    assert sim.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == set()
    assert bearer_get(api, f"bearer {api.token}")[1]["code"] == 0  # the scheme name is case-insensitive
    log = sim.requests
    assert [(e["operation"], e["auth"]) for e in log] == [
        ("token", None),
        ("delete", "bearer"),
        ("list", "bearer"),
    ]
    assert api.token not in repr(log)


@pytest.mark.parametrize(
    ("authorization", "msg"),
    [
        (None, "missing or malformed Authorization: Bearer header"),
        ("Bearer", "missing or malformed Authorization: Bearer header"),
        ("Bearer   ", "missing or malformed Authorization: Bearer header"),
        ("Basic dXNlcjpwYXNz", "missing or malformed Authorization: Bearer header"),
        ("Bearer forged-token", "unknown access token"),
    ],
)
def test_bearer_scheme_rejects_requests_without_a_valid_token(
    simulator_factory: Factory, authorization: str | None, msg: str
) -> None:
    sim = simulator_factory(auth="bearer")
    status, body = bearer_get(SimApi(sim), authorization)
    assert status == 401 and body["msg"] == msg and "code" not in body


def test_bearer_scheme_does_not_accept_signature_headers(simulator_factory: Factory) -> None:
    sim = simulator_factory(auth="bearer")
    reply = SimApi(sim).call("GET", LIST_PATH, LIST_QUERY)  # correctly signed, no Authorization header
    assert reply.status_code == 401 and "Bearer" in reply.json()["msg"]


def test_an_expired_bearer_token_gets_1203(simulator_factory: Factory) -> None:
    clock = FakeClock()
    sim = simulator_factory(auth="bearer", clock=clock, token_lifetime=100)
    api = SimApi(sim, clock=clock, scheme="bearer")
    assert api.call("GET", LIST_PATH, LIST_QUERY).status_code == 200
    clock.now += 101
    reply = api.call("GET", LIST_PATH, LIST_QUERY)
    assert reply.status_code == 401
    assert reply.json() == {
        "code": 1203,
        "msg": "access token expired",
        "requestId": sim.requests[-1]["request_id"],
    }


def test_the_default_scheme_refuses_a_bearer_token(simulator: Simulator) -> None:
    api = SimApi(simulator)
    status, body = bearer_get(api, f"Bearer {api.token}")
    assert status == 401 and "apim-signature" in str(body["msg"])


def test_any_scheme_accepts_either(simulator_factory: Factory) -> None:
    sim = simulator_factory(auth="any")
    signed, bearer = SimApi(sim), SimApi(sim, scheme="bearer")
    assert signed.call("GET", LIST_PATH, LIST_QUERY).json()["code"] == 0
    assert bearer.call("GET", LIST_PATH, LIST_QUERY).json()["code"] == 0
    assert [e["auth"] for e in sim.requests if e["operation"] == "list"] == ["apim-signature", "bearer"]
    status, body = bearer_get(signed, None)
    assert status == 401 and "missing credentials" in str(body["msg"])
    # Signature headers, when present, are what is checked: a valid bearer token does not excuse a bad one.
    bad = signed.call(
        "GET", LIST_PATH, LIST_QUERY, secret="wrong", headers={"Authorization": f"Bearer {signed.token}"}
    )
    assert bad.status_code == 401 and bad.json()["msg"] == "signature mismatch"


def test_the_scheme_can_change_while_running(simulator: Simulator) -> None:
    api = SimApi(simulator, scheme="bearer")
    assert api.call("GET", LIST_PATH, LIST_QUERY).status_code == 401
    simulator.configure(auth="bearer")
    assert api.call("GET", LIST_PATH, LIST_QUERY).status_code == 200
