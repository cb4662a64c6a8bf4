"""The provider against the hostile peer: ``create`` called directly (properties over the catalogue), and a
few scenarios through Pulumi's real provider host, where the gRPC error details are what ``pulumi up``
shows. A whole reset (status check, delete, verify) is bounded by reset_timeout plus two attempts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from enos_pulumi.enos.errors import ConfigurationError
from enos_pulumi.provider import StageStateResetProvider
from enos_pulumi.testing import HostError
from tests.support.hostile_behaviours import Case, pipeline, pipelines_page
from tests.support.hostile_catalogue import (
    DELETE,
    GENERIC,
    GET,
    GET_UNREADABLE,
    LIST,
    STATUSES,
    TOKEN,
    by_name,
)
from tests.support.hostile_harness import (
    ACCESS_KEY,
    ATTEMPT_TIMEOUT,
    OPERATIONS,
    ORG,
    RESET_TIMEOUT,
    SECRET_KEY,
    SLACK,
    STAGE,
    Run,
    assert_holds,
    drive,
    fresh_caches,
    provider_env,
    provider_props,
    violations,
)
from tests.support.hostile_peer import PIPELINE, HostilePeer

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites

if TYPE_CHECKING:
    from tests.support.host_fixtures import HostFactory

pytest_plugins = ["tests.support.host_fixtures"]

#: A whole reset: no request or retry starts after reset_timeout; one may then run two attempts.
RESET_BOUND = RESET_TIMEOUT + 2 * ATTEMPT_TIMEOUT + SLACK
#: What a provider error may name: an operation, or the reset's own refusals (not paused, state left).
REFUSALS = ("Stage state reset refused", "Stage state reset for")
CASES = {
    "token": GENERIC + STATUSES + TOKEN,
    "list": GENERIC + STATUSES + LIST,
    "delete": GENERIC + STATUSES + DELETE,
    "get": GENERIC + STATUSES + GET,
}


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    fresh_caches()
    yield
    fresh_caches()


def create(peer: HostilePeer | str, **props: Any) -> Run:
    """``create`` of a provider configured from the environment, as the host runs it."""
    fresh_caches()
    provider = StageStateResetProvider()
    provider._environ = provider_env(peer if isinstance(peer, str) else peer.url)
    return drive(lambda: provider.create(provider_props(**props)))


def provider_violations(run: Run, peer: HostilePeer, expect: str = "any") -> list[str]:
    return violations(
        run,
        secrets=peer.secrets(),
        operations=[*OPERATIONS.values(), *REFUSALS],
        limit=RESET_BOUND,
        expect=expect,
    )


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.generate),
    report_multiple_bugs=False,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
@given(data=st.data(), endpoint=st.sampled_from(sorted(CASES)), verify=st.booleans())
def test_a_reset_through_any_misbehaviour(data: st.DataObject, endpoint: str, verify: bool) -> None:
    case = data.draw(st.sampled_from(CASES[endpoint]), label="case")
    # Without verify nothing reads stage state back: a misbehaving Get endpoint is never asked.
    expect = case.expect if verify or endpoint != "get" else "ok"
    with HostilePeer() as peer:
        peer.script(endpoint, case.behaviour)
        run = create(peer, verify=verify)
        found = provider_violations(run, peer, expect)
    if run.error is None:
        found += [] if run.value.outs["request_count"] >= 1 else ["a reset recorded no request"]
    assert_holds(run, found)


@pytest.mark.parametrize("case", GET_UNREADABLE, ids=[case.id for case in GET_UNREADABLE])
def test_verify_fails_closed(case: Case) -> None:
    # The delete succeeds; the read-back is an answer verify cannot read: that is a failure, not "no state".
    with HostilePeer() as peer:
        peer.script("get", case.behaviour)
        run = create(peer, verify=True)
        found = provider_violations(run, peer, expect="error")
    assert_holds(run, found)
    assert "Get Stage State" in str(run.error)


def test_a_pipeline_that_is_not_listed_is_reported_as_not_found() -> None:
    with HostilePeer() as peer:
        others = [pipeline("pl-a", "PAUSED"), pipeline("pl-b", "RUNNING")]
        peer.script("list", pipelines_page([others], count=2))
        run = create(peer)
        found = provider_violations(run, peer, expect="error")
    assert_holds(run, found)
    text = str(run.error)
    assert "not found" in text and "pipeline_id" in text and "org_id" in text, text
    assert "Pause it first" not in text and "require_paused=False" not in text, text
    assert peer.requests_to("delete") == []


PASSWORD = "Pw7Kq2Zx9Lm4Secret"


@pytest.mark.parametrize(
    "gateway",
    [f"https//ak:{PASSWORD}@gw.example.test", f"ak:{PASSWORD}@gw.example.test", f"http://ak:{PASSWORD}@[::1"],
)
def test_a_gateway_password_never_reaches_the_user(gateway: str) -> None:
    run = create(gateway)
    assert isinstance(run.error, ConfigurationError), run.outcome()
    assert_holds(run, violations(run, secrets=[PASSWORD], operations=["ENOS_API_GATEWAY"], limit=5.0))


# -- through the real provider host ----------------------------------------------------------------------

HOST_CASES = [
    ("token", by_name(TOKEN, "token-crlf"), False, "Get access token"),
    ("delete", by_name(GENERIC, "trickle-body"), False, "Delete Stage State"),
    ("list", by_name(GENERIC, "json-deep-arrays"), False, "List Pipelines"),
    ("get", by_name(GET, "get-data-items-not-objects"), True, "Get Stage State"),
    ("delete", by_name(STATUSES, "status-401-echoes-credentials"), False, "Delete Stage State"),
]


@pytest.mark.parametrize(
    ("endpoint", "case", "verify", "operation"),
    HOST_CASES,
    ids=[f"{endpoint}-{case.id}" for endpoint, case, _, _ in HOST_CASES],
)
def test_through_the_provider_host(
    host_factory: HostFactory, endpoint: str, case: Case, verify: bool, operation: str
) -> None:
    with HostilePeer() as peer:
        env = {
            key: value
            for key, value in provider_env(peer.url).items()
            if key not in ("ENOS_API_GATEWAY", "ENOS_ACCESS_KEY", "ENOS_SECRET_KEY")
        }
        hosted = host_factory(
            cast(Any, peer), gateway=peer.url, access_key=ACCESS_KEY, secret_key=SECRET_KEY, env=env
        )
        peer.script(endpoint, case.behaviour)
        inputs = hosted.inputs(
            org_id=ORG, pipeline_id=PIPELINE, stage_instance_name=STAGE, verify=verify, require_paused=True
        )
        started = time.monotonic()
        try:
            hosted.engine.up("hostile", inputs)
            details = ""
        except HostError as exc:
            details = exc.details
        elapsed = time.monotonic() - started
        time.sleep(0.3)  # the host's last stderr lines
        secrets = {SECRET_KEY, *peer.secrets()}
    found = [] if elapsed <= RESET_BOUND else [f"took {elapsed:.1f} s, bound {RESET_BOUND:.1f} s"]
    if not details:
        found.append("the up succeeded where an error was expected")
    elif operation not in details:
        found.append(f"the error does not name {operation}")
    for escaped in ("RecursionError", "UnicodeEncodeError", "TypeError", "ValueError"):
        if escaped in details:
            found.append(f"{escaped} in the details")
    for secret in secrets:
        for where, text in (("details", details), ("host stderr", hosted.host.stderr)):
            if secret in text or secret[:12] in text:
                found.append(f"a secret appears in the {where}")
    assert not found, "; ".join(dict.fromkeys(found)) + f"\n{details[-1500:]}"
