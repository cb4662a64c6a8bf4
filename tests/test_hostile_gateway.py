"""The client against a hostile gateway, finding by finding: tokens, URLs, time, memory, answer shapes,
retry budgets, paging, token failures and small ones (each also holds the suite's invariants)."""

from __future__ import annotations

import pickle
import socket
import traceback
import tracemalloc
from collections.abc import Iterator

import pytest

from enos_pulumi.enos.client import EnosClient, RequestEvent
from enos_pulumi.enos.errors import AuthenticationError, ConfigurationError, DeletionRejectedError, EnosError
from enos_pulumi.enos.settings import Settings, resolve_settings
from tests.support.hostile_behaviours import (
    MIB,
    Case,
    delayed,
    envelope,
    gzip_bomb,
    huge,
    pipeline,
    pipelines_page,
    status_answer,
    trickle,
)
from tests.support.hostile_catalogue import GENERIC, LIST, STATUSES, TOKEN, by_name
from tests.support.hostile_harness import (
    ACCESS_KEY,
    OPERATIONS,
    ORG,
    SECRET_KEY,
    TARGET,
    Run,
    assert_holds,
    bound,
    drive,
    fresh_caches,
    make_settings,
    violations,
)
from tests.support.hostile_peer import PIPELINE, WELL_FORMED, Behaviour, HostilePeer

pytestmark = pytest.mark.slow  # starts provider hosts or plugins, or runs the hostile suites


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    fresh_caches()
    yield
    fresh_caches()


@pytest.fixture
def peer() -> Iterator[HostilePeer]:
    with HostilePeer() as started:
        yield started


def delete(
    settings_: Settings, assets: tuple[str, ...] = ("a1", "a2"), points: tuple[str, ...] = ("p1", "p2")
) -> tuple[Run, EnosClient]:
    events: list[RequestEvent] = []
    client = EnosClient(settings_, on_event=events.append)
    return drive(lambda: client.delete_stage_state(TARGET, assets, points), events), client


def status_of(settings_: Settings, pipeline_id: str = PIPELINE) -> tuple[Run, EnosClient]:
    events: list[RequestEvent] = []
    client = EnosClient(settings_, on_event=events.append)
    return drive(lambda: client.pipeline_status(ORG, pipeline_id), events), client


def holds(
    run: Run,
    peer: HostilePeer | None,
    settings_: Settings,
    *endpoints: str,
    expect: str = "any",
    whole_reset: bool = False,
) -> None:
    assert_holds(
        run,
        violations(
            run,
            secrets=peer.secrets() if peer else (),
            operations=[OPERATIONS[e] for e in endpoints],
            limit=bound(settings_, whole_reset=whole_reset),
            expect=expect,
        ),
    )


def error_of(run: Run) -> EnosError:
    assert isinstance(run.error, EnosError), run.outcome()
    return run.error


# -- the contract's new settings -------------------------------------------------------------------------


def test_settings_carry_the_new_bounds() -> None:
    names = {"attempt_timeout", "reset_timeout", "max_answer_bytes", "connect_timeout", "retry_deadline"}
    missing = names - set(Settings.__dataclass_fields__)
    assert not missing, f"Settings lacks {sorted(missing)}"
    resolved = resolve_settings(
        environ={
            "ENOS_API_GATEWAY": "https://gw.example.test",
            "ENOS_ACCESS_KEY": ACCESS_KEY,
            "ENOS_SECRET_KEY": SECRET_KEY,
            "ENOS_ATTEMPT_TIMEOUT_SECONDS": "2.5",
            "ENOS_RESET_TIMEOUT_SECONDS": "7",
            "ENOS_CONNECT_TIMEOUT_SECONDS": "3",
        }
    )
    assert getattr(resolved, "attempt_timeout", None) == 2.5
    assert getattr(resolved, "reset_timeout", None) == 7
    assert resolved.connect_timeout == 3
    assert getattr(resolved, "max_answer_bytes", None) == 16 * MIB
    assert SECRET_KEY not in repr(resolved)


# -- 1. a token that is not a header value ---------------------------------------------------------------

NOT_HEADER_VALUES = ["token-leading-space", "token-crlf", "token-lf", "token-non-latin1", "token-nul"]


@pytest.mark.parametrize("name", NOT_HEADER_VALUES)
def test_a_token_that_is_not_a_header_value_is_refused_without_echo(peer: HostilePeer, name: str) -> None:
    peer.script("token", by_name(TOKEN, name).behaviour)
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    assert isinstance(run.error, AuthenticationError), run.outcome()
    assert "Get access token" in str(run.error)
    assert peer.requests_to("delete") == []  # refused on arrival, never sent
    holds(run, peer, settings_, "token", expect="error")


# -- 2. a password in a mistyped gateway -----------------------------------------------------------------

PASSWORD = "Pw7Kq2Zx9Lm4Secret"
MISTYPED = [
    f"https//ak:{PASSWORD}@gw.example.test",
    f"https:/ak:{PASSWORD}@gw.example.test",
    f"ak:{PASSWORD}@gw.example.test",
    f"https://ak:{PASSWORD}@gw.example.test",
    f"ftp://ak:{PASSWORD}@gw.example.test",
    f"http://ak:{PASSWORD}@[::1",
    f"https://ak:{PASSWORD}@gw.example.test:port",
]


@pytest.mark.parametrize("gateway", MISTYPED, ids=range(len(MISTYPED)))
def test_a_gateway_with_a_password_is_never_echoed(gateway: str) -> None:
    environ = {"ENOS_API_GATEWAY": gateway, "ENOS_ACCESS_KEY": ACCESS_KEY, "ENOS_SECRET_KEY": SECRET_KEY}
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(environ=environ)
    error = info.value
    for text in (
        str(error),
        repr(error),
        "".join(traceback.format_exception(error)),
        str(pickle.dumps(error)),
    ):
        assert PASSWORD not in text and PASSWORD[:8] not in text
    assert "ENOS_API_GATEWAY" in str(error)


def test_an_unclosed_ipv6_gateway_is_a_configuration_error() -> None:
    environ = {
        "ENOS_API_GATEWAY": "http://[::1",
        "ENOS_ACCESS_KEY": ACCESS_KEY,
        "ENOS_SECRET_KEY": SECRET_KEY,
    }
    with pytest.raises(ConfigurationError, match="ENOS_API_GATEWAY"):
        resolve_settings(environ=environ)


# -- 3. unbounded time -----------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["status", "headers", "body"])
def test_a_trickled_answer_ends_within_the_attempt_bound(peer: HostilePeer, phase: str) -> None:
    peer.script("delete", trickle(phase))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    holds(run, peer, settings_, "delete", expect="error")


def test_a_trickled_token_fetch_does_not_hold_every_worker(peer: HostilePeer) -> None:
    # Four parallel requests wait on the one token fetch; it must end within an attempt, for all four.
    peer.script("token", trickle("body"))
    settings_ = make_settings(peer.url, parallel_requests=4, max_pairs_per_request=1)
    run, _ = delete(settings_)
    holds(run, peer, settings_, "token", expect="error", whole_reset=True)


# -- 4. unbounded memory ---------------------------------------------------------------------------------

BIG = 200 * MIB
MEMORY_CASES = [
    huge(BIG, status=503, html=True),
    huge(BIG, chunked=True),
    huge(BIG),
    gzip_bomb(BIG),
]


@pytest.mark.parametrize("behaviour", MEMORY_CASES, ids=[str(b) for b in MEMORY_CASES])
def test_a_200_mib_answer_does_not_grow_the_client(peer: HostilePeer, behaviour: Behaviour) -> None:
    peer.script("delete", behaviour)
    settings_ = make_settings(peer.url, max_answer_bytes=16 * MIB)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        run, _ = delete(settings_)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = (peak - before) / MIB
    found = [] if growth <= 64 else [f"traced memory grew by {growth:.0f} MiB (at most 64)"]
    found += violations(
        run, secrets=peer.secrets(), operations=[OPERATIONS["delete"]], limit=bound(settings_), expect="error"
    )
    assert_holds(run, found)


# -- 5. escapes from the error hierarchy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "case"),
    [
        ("delete", by_name(STATUSES, "status-429-envelope-Retry-After:\u00b2")),
        ("delete", by_name(GENERIC, "json-deep-arrays")),
        ("delete", by_name(GENERIC, "json-deep-objects")),
        ("list", by_name(LIST, "list-pipeline-id-list")),
        ("list", by_name(LIST, "list-pipeline-id-number")),
    ],
    ids=lambda value: value if isinstance(value, str) else value.id,
)
def test_every_answer_ends_as_an_enos_error(peer: HostilePeer, endpoint: str, case: Case) -> None:
    peer.script(endpoint, case.behaviour)
    settings_ = make_settings(peer.url)
    run, _ = status_of(settings_) if endpoint == "list" else delete(settings_)
    assert isinstance(run.error, EnosError), run.outcome()
    holds(run, peer, settings_, endpoint, expect="error")


# -- 7. one request's retry budget is its own ------------------------------------------------------------


def test_each_request_has_its_own_retry_budget(peer: HostilePeer) -> None:
    # Ten requests of 150 ms, deadline 1 s; the ninth gets one 503 at ~1.3 s into the reset.
    slow = delayed(WELL_FORMED, 0.15)
    peer.script("delete", *[slow] * 8, status_answer(503, "html"), slow)
    settings_ = make_settings(peer.url, max_pairs_per_request=1, parallel_requests=1, reset_timeout=10.0)
    assets = tuple(f"a{i}" for i in range(10))
    run, _ = delete(settings_, assets, ("p1",))
    assert run.error is None, run.outcome()
    assert len(peer.requests_to("delete")) == 11


# -- 8. paging -------------------------------------------------------------------------------------------


def _pipelines(first: int, count: int) -> list[dict[str, object]]:
    return [pipeline(f"pl-{i}", "RUNNING") for i in range(first, first + count)]


def _pages_seen(peer: HostilePeer) -> list[str]:
    return [r.query.get("pageNo", "?") for r in peer.requests_to("list")]


def test_paging_continues_past_short_pages_until_count(peer: HostilePeer) -> None:
    # A gateway that caps pageSize at 10, whatever we ask for; ours is the 23rd of 25.
    last = [*_pipelines(20, 2), pipeline(), *_pipelines(23, 2)]
    peer.script("list", pipelines_page([_pipelines(0, 10), _pipelines(10, 10), last], count=25))
    settings_ = make_settings(peer.url)
    run, _ = status_of(settings_)
    assert run.value == "PAUSED", run.outcome()
    assert _pages_seen(peer) == ["1", "2", "3"]


def test_paging_stops_at_an_empty_page(peer: HostilePeer) -> None:
    peer.script("list", pipelines_page([_pipelines(0, 10)], count=25))
    settings_ = make_settings(peer.url)
    run, _ = status_of(settings_)
    assert run.error is None and run.value is None, run.outcome()
    assert _pages_seen(peer) == ["1", "2"]


def test_paging_stops_when_count_is_reached(peer: HostilePeer) -> None:
    peer.script("list", pipelines_page([_pipelines(0, 10), _pipelines(10, 10), _pipelines(20, 10)], count=20))
    settings_ = make_settings(peer.url)
    run, _ = status_of(settings_)
    assert run.error is None and run.value is None, run.outcome()
    assert _pages_seen(peer) == ["1", "2"]


def test_paging_ends_on_a_gateway_that_ignores_page_numbers(peer: HostilePeer) -> None:
    page = _pipelines(0, 10)
    peer.script("list", pipelines_page([page] * 1000, count=25))
    settings_ = make_settings(peer.url)
    run, _ = status_of(settings_)
    assert run.error is None or isinstance(run.error, EnosError), run.outcome()
    assert len(_pages_seen(peer)) <= 3
    holds(run, peer, settings_, "list", whole_reset=True)


# -- 9. token answers never split a batch; token failures are labelled as such ---------------------------


def test_a_413_from_the_token_service_never_splits_a_batch(peer: HostilePeer) -> None:
    peer.script("token", status_answer(413, "html"))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_, ("a1", "a2", "a3", "a4"), ("p1", "p2", "p3", "p4"))
    assert "Get access token" in str(error_of(run))
    assert len(peer.requests_to("token")) <= 2, f"{len(peer.requests_to('token'))} token requests"
    assert peer.requests_to("delete") == []
    assert not any("split" in line for line in run.lines), run.lines
    holds(run, peer, settings_, "token", expect="error")


def test_a_failing_token_request_is_labelled_as_the_token_operation(peer: HostilePeer) -> None:
    peer.script("token", status_answer(503, "html"))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    about_503 = [line for line in run.lines if "503" in line]
    assert about_503, run.lines
    assert all(line.startswith("enos: Get access token") for line in about_503), about_503


# -- 11. smaller ones ------------------------------------------------------------------------------------


def test_http_408_is_retried(peer: HostilePeer) -> None:
    peer.script("delete", status_answer(408, "envelope"), WELL_FORMED)
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    assert run.error is None, run.outcome()
    assert len(peer.requests_to("delete")) == 2


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_a_transient_status_is_retried(peer: HostilePeer, status: int) -> None:
    peer.script("delete", status_answer(status, "html"), WELL_FORMED)
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    assert run.error is None, run.outcome()
    assert len(peer.requests_to("delete")) == 2


def test_a_413_split_is_progress_not_failure(peer: HostilePeer) -> None:
    peer.script("delete", status_answer(413, "html"), WELL_FORMED)
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_, ("a1", "a2"), ("p1",))
    assert run.error is None, run.outcome()
    assert len(peer.requests_to("delete")) == 3  # the whole, then its two halves
    outcomes = [event.outcome for event in run.events if event.operation == "Delete Stage State"]
    assert "failed" not in outcomes, run.lines
    assert "split" in outcomes, run.lines


def test_a_success_without_request_id_uses_the_header(peer: HostilePeer) -> None:
    peer.script("delete", envelope("header-id", drop=("requestId",), headers=(("x-request-id", "hdr-7"),)))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    assert run.error is None, run.outcome()
    assert run.value.request_ids == ("hdr-7",)


def test_a_success_without_any_request_id_records_no_empty_one(peer: HostilePeer) -> None:
    peer.script("delete", envelope("no-request-id", drop=("requestId",)))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    assert run.error is None, run.outcome()
    assert "" not in run.value.request_ids


def test_data_false_does_not_read_like_an_error_code(peer: HostilePeer) -> None:
    peer.script("delete", envelope("data-false", data=False))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    error = error_of(run)
    assert isinstance(error, DeletionRejectedError)
    assert "EnOS 0" not in str(error)


def test_a_500_with_a_json_body_is_not_called_non_json(peer: HostilePeer) -> None:
    peer.script("delete", status_answer(500, "spring"))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    assert "non-JSON" not in str(error_of(run))


def test_a_retry_after_beyond_the_budget_is_not_said_to_have_held(peer: HostilePeer) -> None:
    peer.script("delete", status_answer(429, "envelope", headers=(("Retry-After", "30"),)))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    assert "rate limit held" not in str(error_of(run))
    holds(run, peer, settings_, "delete", expect="error")


# -- 12. a gateway that is not there ---------------------------------------------------------------------


def test_a_gateway_name_that_does_not_resolve() -> None:
    settings_ = make_settings("https://enos-gw.invalid")
    run, _ = delete(settings_)
    text = str(error_of(run))
    assert "cannot resolve" in text and "enos-gw.invalid" in text, text
    assert sum(event.outcome == "retrying" for event in run.events) <= 1, run.lines
    holds(run, None, settings_, "token", "delete", expect="error")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_ends_in_one_short_line() -> None:
    port = _closed_port()
    settings_ = make_settings(f"http://127.0.0.1:{port}")
    run, _ = delete(settings_)
    text = str(error_of(run))
    raw = [r for r in ("Max retries", "urllib3", "object at 0x", "Caused by") if r in text]
    assert not raw, f"raw HTTP-stack text {raw} in: {text}"
    assert "\n" not in text, text
    assert len(text) <= 400, f"{len(text)} characters: {text}"
    assert f"127.0.0.1:{port}" in text, text
    assert not any("Max retries" in line or "Caused by" in line for line in run.lines), run.lines
    holds(run, None, settings_, "token", "delete", expect="error")


# -- beyond the issue: text from the server cannot forge progress lines or flood them --------------------

FORGING = {
    "crlf": "boom\r\nenos: Delete Stage State pipeline pl-x | ok | 1 ms",
    "ansi": "\x1b[2J\x1b[31mred alert\x1b[0m",
    "huge": "m" * MIB,
}


@pytest.mark.parametrize("msg", list(FORGING.values()), ids=list(FORGING))
def test_server_text_cannot_forge_or_flood_lines(peer: HostilePeer, msg: str) -> None:
    peer.script("delete", envelope("hostile-msg", code=61102, msg=msg))
    settings_ = make_settings(peer.url)
    run, _ = delete(settings_)
    text = str(error_of(run))
    assert not any(c in text for c in "\r\n\x1b"), repr(text[:300])
    assert len(text) <= 2000, len(text)
    for line in run.lines:
        assert not any(ord(c) < 0x20 for c in line), repr(line[:300])
        assert len(line) <= 1000, len(line)
