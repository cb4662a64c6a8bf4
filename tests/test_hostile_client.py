"""The client against the hostile peer: every catalogued misbehaviour case by case (the generic ones on
the delete endpoint, the specific ones on theirs), and properties (hypothesis) over any misbehaviour on any
endpoint, a cut at any byte, any error status and generated JSON answers. Each run must end within its
bound, as a success or an ``EnosError`` naming the operation, with no secret in anything a user reads (see
``tests.support.hostile_harness``).

Runs that need no retry to pass use a 0.3 s retry deadline instead of 1 s: hundreds of transient failures
each retried for a whole second would make this module alone take minutes. The bound they are held to
follows the deadline (``bound``), so nothing is loosened; the retry properties use the full second.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from enos_pulumi.enos.client import EnosClient, RequestEvent
from enos_pulumi.enos.settings import Settings
from tests.support.hostile_behaviours import STATUS_BODIES, Case, cut_at, json_answer, status_answer
from tests.support.hostile_catalogue import DELETE, GENERIC, GET, LIST, STATUSES, TOKEN
from tests.support.hostile_harness import (
    OPERATIONS,
    Run,
    assert_holds,
    bound,
    call_for,
    drive,
    fresh_caches,
    make_settings,
    violations,
)
from tests.support.hostile_peer import PIPELINE, WELL_FORMED, Behaviour, HostilePeer

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

# Hypothesis: bounded, reproducible runs; no shrinking (each example costs up to seconds, and the
# example's behaviour name already says what went wrong).
HOSTILE = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),
    report_multiple_bugs=False,
    suppress_health_check=(
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ),
)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    fresh_caches()
    yield
    fresh_caches()


QUICK_RETRY_DEADLINE = 0.3


def run_client(
    peer: HostilePeer, endpoint: str, retry_deadline: float = QUICK_RETRY_DEADLINE
) -> tuple[Run, EnosClient, Settings]:
    """One client operation reaching ``endpoint`` (the token endpoint: a delete), on fresh caches."""
    fresh_caches()
    settings_ = make_settings(peer.url, retry_deadline=retry_deadline)
    events: list[RequestEvent] = []
    client = EnosClient(settings_, on_event=events.append)
    return drive(call_for(endpoint, client), events), client, settings_


def check(
    peer: HostilePeer, endpoint: str, run: Run, client: EnosClient, settings_: Settings, expect: str = "any"
) -> list[str]:
    return violations(
        run,
        secrets=peer.secrets(),
        operations=[OPERATIONS[endpoint]],
        limit=bound(settings_),
        expect=expect,
        extra_texts={"repr(client)": repr(client), "repr(settings)": repr(settings_)},
    )


def hostile_run(
    endpoint: str, *behaviours: Behaviour, expect: str = "any", retry_deadline: float = QUICK_RETRY_DEADLINE
) -> tuple[Run, list[str]]:
    """A fresh peer whose ``endpoint`` plays ``behaviours``; the run and its violations."""
    with HostilePeer() as peer:
        peer.script(endpoint, *behaviours)
        run, client, settings_ = run_client(peer, endpoint, retry_deadline)
        return run, check(peer, endpoint, run, client, settings_, expect)


def _ids(cases: list[Case]) -> list[str]:
    return [case.id for case in cases]


# -- the catalogue, case by case ------------------------------------------------------------------------


@pytest.mark.parametrize("case", GENERIC + STATUSES, ids=_ids(GENERIC + STATUSES))
def test_every_misbehaviour_of_the_delete_endpoint(case: Case) -> None:
    run, found = hostile_run("delete", case.behaviour, expect=case.expect)
    assert_holds(run, found)


@pytest.mark.parametrize("case", TOKEN, ids=_ids(TOKEN))
def test_every_misbehaviour_of_the_token_service(case: Case) -> None:
    run, found = hostile_run("token", case.behaviour, expect=case.expect)
    assert_holds(run, found)


@pytest.mark.parametrize("case", DELETE, ids=_ids(DELETE))
def test_every_delete_answer(case: Case) -> None:
    run, found = hostile_run("delete", case.behaviour, expect=case.expect)
    assert_holds(run, found)


@pytest.mark.parametrize("case", GET, ids=_ids(GET))
def test_every_get_stage_state_answer(case: Case) -> None:
    run, found = hostile_run("get", case.behaviour, expect=case.expect)
    if run.error is None:
        items, _ = run.value
        # Fail closed: whatever comes back as a success is items verify can read.
        found += [f"unreadable item {item!r} returned as state" for item in items if not _readable_item(item)]
    assert_holds(run, found)


@pytest.mark.parametrize("case", LIST, ids=_ids(LIST))
def test_every_list_pipelines_answer(case: Case) -> None:
    run, found = hostile_run("list", case.behaviour, expect=case.expect)
    if run.error is None and not (run.value is None or isinstance(run.value, str)):
        found.append(f"pipeline_status returned {run.value!r}, not a status string or None")
    assert_holds(run, found)


# -- properties ------------------------------------------------------------------------------------------

ENDPOINTS = ("token", "delete", "get", "list")
ANY_ENDPOINT = GENERIC + STATUSES


@HOSTILE
@given(endpoint=st.sampled_from(ENDPOINTS), case=st.sampled_from(ANY_ENDPOINT))
def test_any_misbehaviour_on_any_endpoint(endpoint: str, case: Case) -> None:
    run, found = hostile_run(endpoint, case.behaviour, expect=case.expect)
    assert_holds(run, found)


@HOSTILE
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    offset=st.integers(min_value=0, max_value=400),
    how=st.sampled_from(("close", "reset")),
)
def test_a_connection_cut_at_any_byte_is_retried(endpoint: str, offset: int, how: str) -> None:
    # The first answer is cut after `offset` bytes (all of it if shorter); the next one is whole.
    run, found = hostile_run(endpoint, cut_at(offset, how), WELL_FORMED, expect="ok", retry_deadline=1.0)
    assert_holds(run, found)


@HOSTILE
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    status=st.integers(min_value=400, max_value=599),
    body=st.sampled_from(STATUS_BODIES),
)
def test_any_error_status_is_an_error(endpoint: str, status: int, body: str) -> None:
    run, found = hostile_run(endpoint, status_answer(status, body), expect="error")
    assert_holds(run, found)


# JSON values of every kind, NaN and infinities included.
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CODES = (
    st.just(0)
    | st.sampled_from([0, 1, 61102, 61105, 61106, 61199, 1203, 1001, -1, False, 0.0, "0"])
    | SCALARS
)
TOKEN_CORE = "tokHypothesisCoreQ7v9Zp2"
TOKEN_SHAPES = st.sampled_from(
    [TOKEN_CORE, " " + TOKEN_CORE, TOKEN_CORE + "\r\nX: 1", TOKEN_CORE + "\u2603", TOKEN_CORE + "\x00", ""]
)
PIPELINE_ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "pipelineId": st.sampled_from([PIPELINE, "pl-other"]) | VALUES,
        "status": st.sampled_from(["PAUSED", "RUNNING", "paused"]) | VALUES,
        "pipelineName": VALUES,
    },
)
STATE_ITEM = st.fixed_dictionaries(
    {},
    optional={
        "assetId": st.sampled_from(["a1", "a2"]) | VALUES,
        "pointId": st.sampled_from(["p1", "p2"]) | VALUES,
        "value": VALUES,
    },
)
DATA = {
    "token": st.fixed_dictionaries(
        {}, optional={"accessToken": TOKEN_SHAPES | VALUES, "expire": st.sampled_from([7200, 60]) | SCALARS}
    )
    | VALUES,
    "delete": st.just(True) | VALUES,
    "get": st.lists(STATE_ITEM, max_size=3)
    | st.fixed_dictionaries({"items": st.lists(STATE_ITEM, max_size=3)})
    | VALUES,
    "list": st.fixed_dictionaries(
        {},
        optional={
            "count": st.integers(0, 5) | SCALARS,
            "pipelines": st.lists(PIPELINE_ENTRY, max_size=3) | VALUES,
        },
    )
    | VALUES,
}


def answers(endpoint: str) -> st.SearchStrategy[Any]:
    code_key = "status" if endpoint == "token" else "code"
    # Mostly envelopes with a code and data (that is where a client must judge a shape), some anything.
    envelope = st.fixed_dictionaries(
        {code_key: CODES, "data": DATA[endpoint]}, optional={"msg": VALUES, "requestId": VALUES}
    )
    return st.integers(0, 3).flatmap(lambda kind: VALUES if kind == 0 else envelope)


def _is_zero(code: Any) -> bool:
    return type(code) is int and code == 0


def _readable_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("assetId"), str)
        and isinstance(item.get("pointId"), str)
    )


def _expected(endpoint: str, answer: Any) -> str:
    """What a correct client must make of ``answer`` given to every request of ``endpoint``."""
    if endpoint == "delete":
        # Only code 0 (an int) with data true is a deletion; everything else is an error.
        ok = isinstance(answer, dict) and _is_zero(answer.get("code")) and answer.get("data") is True
        return "ok" if ok else "error"
    if endpoint == "get":
        if not (isinstance(answer, dict) and _is_zero(answer.get("code"))):
            return "error"
        data = answer.get("data")
        if isinstance(data, dict) and "items" in data:
            data = data["items"]
        if data is None:
            return "any"
        return "ok" if isinstance(data, list) and all(_readable_item(i) for i in data) else "error"
    return "any"


def successes(endpoint: str) -> st.SearchStrategy[Any]:
    """Success envelopes (code 0) whose data has any shape: what a client must read or refuse."""
    code_key = "status" if endpoint == "token" else "code"
    return st.fixed_dictionaries(
        {code_key: st.just(0), "data": DATA[endpoint]}, optional={"msg": VALUES, "requestId": VALUES}
    )


@settings(HOSTILE, max_examples=60)
@given(data=st.data(), endpoint=st.sampled_from(ENDPOINTS))
def test_any_json_answer(data: st.DataObject, endpoint: str) -> None:
    json_property(endpoint, data.draw(answers(endpoint), label="answer"))


@settings(HOSTILE, max_examples=60)
@given(data=st.data(), endpoint=st.sampled_from(ENDPOINTS))
def test_any_data_in_a_success_envelope(data: st.DataObject, endpoint: str) -> None:
    json_property(endpoint, data.draw(successes(endpoint), label="answer"))


def json_property(endpoint: str, answer: Any) -> None:
    """Every request to ``endpoint`` gets ``answer``: the invariants, and what a success may return."""
    expect = _expected(endpoint, answer)
    with HostilePeer() as peer:
        peer.issue_token(TOKEN_CORE)  # whatever shape it is sent in, it is a secret
        peer.script(endpoint, json_answer("generated", answer, keep=True))
        run, client, settings_ = run_client(peer, endpoint)
        found = check(peer, endpoint, run, client, settings_, expect)
    if run.error is None and endpoint == "get":
        items, _ = run.value
        found += [f"unreadable item {item!r} returned as state" for item in items if not _readable_item(item)]
    if run.error is None and endpoint == "list" and not (run.value is None or isinstance(run.value, str)):
        found.append(f"pipeline_status returned {run.value!r}")
    assert_holds(run, [*found, f"answer was {json.dumps(answer)[:300]}"] if found else [])
