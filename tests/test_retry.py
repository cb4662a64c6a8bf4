"""RetryPolicy and Backoff with a fake clock, a recording sleep and a fixed random source."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enos_pulumi.enos.errors import (
    AuthenticationError,
    DeletionRejectedError,
    EnosError,
    InvalidParameterError,
    PipelineAccessError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnsupportedStageError,
)
from enos_pulumi.enos.retry import Backoff, RetryPolicy, is_retryable


class FakeTime:
    """A clock that only moves when the code sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def policy(fake: FakeTime, *, deadline: float = 120.0, r: float = 0.5, **backoff: Any) -> RetryPolicy:
    return RetryPolicy(
        deadline=deadline, backoff=Backoff(**backoff), clock=fake.clock, sleep=fake.sleep, rng=lambda: r
    )


def server_error(status: int = 503, retry_after: float | None = None) -> ServerError:
    return ServerError(
        operation="Delete Stage State", message="unavailable", http_status=status, retry_after=retry_after
    )


class Script:
    """A call that raises the scripted errors in turn, then returns ``result``."""

    def __init__(self, *outcomes: BaseException, result: str = "done") -> None:
        self._outcomes = iter(outcomes)
        self.result = result
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        outcome = next(self._outcomes, None)
        if outcome is not None:
            raise outcome
        return self.result


def jittered(ceiling: float, r: float) -> float:
    """The documented wait: uniform in [0.1, 1] x ceiling, here for a fixed random value r."""
    return ceiling * (0.1 + 0.9 * r)


def test_503_503_200_succeeds_after_three_calls_with_recorded_waits() -> None:
    fake = FakeTime()
    call = Script(server_error(), server_error())
    assert policy(fake, r=0.5).run(call) == "done"
    assert call.calls == 3
    # initial 0.5 s, doubling: ceilings 0.5 and 1.0
    assert fake.sleeps == pytest.approx([jittered(0.5, 0.5), jittered(1.0, 0.5)])


def test_on_retry_is_told_the_error_the_wait_and_the_attempt() -> None:
    fake = FakeTime()
    first, second = server_error(502), TransportError("op", "connection reset")
    seen: list[tuple[BaseException, float, int]] = []
    policy(fake).run(Script(first, second), lambda exc, wait, attempt: seen.append((exc, wait, attempt)))
    assert [(exc, attempt) for exc, _, attempt in seen] == [(first, 1), (second, 2)]
    assert [wait for _, wait, _ in seen] == fake.sleeps


def test_success_at_once_does_not_sleep() -> None:
    fake = FakeTime()
    call = Script()
    assert policy(fake).run(call) == "done"
    assert call.calls == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(
    "error",
    [
        PipelineAccessError(operation="op", message="no privilege", code=61106),
        InvalidParameterError(operation="op", message="bad", code=61102),
        UnsupportedStageError(operation="op", message="nope", code=61107),
        AuthenticationError(operation="op", message="unauthorized", http_status=401),
        AuthenticationError(operation="op", message="forbidden", http_status=403),
        DeletionRejectedError(operation="op", message="data: false", code=0),
        TransportError("op", "TLS error", retryable=False),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_permanent_error_is_raised_after_one_call(error: EnosError) -> None:
    fake = FakeTime()
    call = Script(error, server_error())
    with pytest.raises(type(error)) as info:
        policy(fake).run(call)
    assert info.value is error
    assert call.calls == 1
    assert fake.sleeps == []
    assert "gave up" not in str(error)


def test_an_error_outside_the_hierarchy_is_not_retried() -> None:
    fake = FakeTime()
    call = Script(KeyError("bug"))
    with pytest.raises(KeyError):
        policy(fake).run(call)
    assert call.calls == 1


@pytest.mark.parametrize(
    "error",
    [
        server_error(500),
        server_error(502),
        server_error(504),
        ServerError(operation="op", message="other", code=61199),
        RateLimitedError(operation="op", message="API rate limit exceeded", http_status=429),
        TransportError("op", "timed out (ReadTimeout)"),
        TransportError("op", "connection failed"),
    ],
    ids=lambda e: str(e)[:40],
)
def test_transient_errors_are_retried(error: EnosError) -> None:
    assert is_retryable(error)
    fake = FakeTime()
    call = Script(error)
    assert policy(fake).run(call) == "done"
    assert call.calls == 2
    assert len(fake.sleeps) == 1


def test_retry_after_is_honoured() -> None:
    fake = FakeTime()
    limited = RateLimitedError(
        operation="op", message="API rate limit exceeded", http_status=429, retry_after=7.0
    )
    call = Script(limited)
    assert policy(fake, r=0.0).run(call) == "done"
    assert call.calls == 2
    assert fake.sleeps[0] >= 7.0


def test_a_short_retry_after_does_not_shorten_the_backoff() -> None:
    fake = FakeTime()
    call = Script(server_error(retry_after=0.0))
    policy(fake, r=1.0).run(call)
    assert fake.sleeps == [pytest.approx(jittered(0.5, 1.0))]


def test_the_last_wait_is_shortened_to_use_the_whole_budget() -> None:
    fake = FakeTime()
    errors_ = [server_error() for _ in range(10)]
    call = Script(*errors_)
    # r=1: waits 0.5, 1.0, then 2.0 would pass a 2 s budget: it is cut to the 0.5 s left, and a last
    # attempt comes at the end of the budget instead of giving up with time to spare.
    with pytest.raises(ServerError) as info:
        policy(fake, deadline=2.0, r=1.0).run(call)
    assert call.calls == 4
    assert fake.sleeps == pytest.approx([0.5, 1.0, 0.5])
    assert info.value is errors_[3]
    text = str(info.value)
    assert "gave up after 4 attempt(s) in 2.0 s" in text
    assert "retry budget 2 s per request" in text


def test_time_spent_in_calls_counts_against_the_deadline() -> None:
    fake = FakeTime()

    def slow_failure() -> str:
        fake.now += 10.0  # each attempt takes 10 s before failing
        raise TransportError("op", "timed out (ReadTimeout)")

    with pytest.raises(TransportError) as info:
        policy(fake, deadline=25.0, r=0.0).run(slow_failure)
    # 10 s + wait 0.05 -> 20.05 s + wait 0.1 would be 20.15 <= 25 -> 30.15 s + wait would pass.
    assert len(fake.sleeps) == 2
    assert "gave up after 3 attempt(s)" in str(info.value)


def test_a_retry_after_beyond_the_deadline_gives_up_at_once() -> None:
    fake = FakeTime()
    limited = RateLimitedError(operation="op", message="slow down", http_status=429, retry_after=300.0)
    call = Script(limited)
    with pytest.raises(RateLimitedError) as info:
        policy(fake, deadline=60.0).run(call)
    assert call.calls == 1
    assert fake.sleeps == []
    # Said as what it is: the server asked for a wait longer than the budget; nothing "held" for long.
    text = str(info.value)
    assert "not retried: the server asked to wait 300 s (Retry-After), more than the 60.0 s left" in text
    assert "held" not in text


def test_a_zero_deadline_never_retries() -> None:
    fake = FakeTime()
    call = Script(server_error())
    with pytest.raises(ServerError, match="retry budget 0 s per request"):
        policy(fake, deadline=0.0).run(call)
    assert call.calls == 1


def test_a_custom_predicate_decides() -> None:
    fake = FakeTime()
    never = RetryPolicy(predicate=lambda exc: False, clock=fake.clock, sleep=fake.sleep, rng=lambda: 0.5)
    call = Script(server_error())
    with pytest.raises(ServerError):
        never.run(call)
    assert call.calls == 1


# -- Backoff -------------------------------------------------------------------------------------------------


def take(it: Iterator[float], n: int) -> list[float]:
    return list(itertools.islice(it, n))


def test_backoff_grows_and_is_capped() -> None:
    waits = take(Backoff(initial=0.5, multiplier=2.0, maximum=5.0).delays(lambda: 1.0), 7)
    assert waits == pytest.approx([0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0])


def test_backoff_maximum_also_caps_the_first_wait() -> None:
    waits = take(Backoff(initial=30.0, multiplier=2.0, maximum=20.0).delays(lambda: 1.0), 2)
    assert waits == pytest.approx([20.0, 20.0])


def test_backoff_never_waits_less_than_a_tenth_of_the_ceiling() -> None:
    waits = take(Backoff(initial=1.0, multiplier=3.0, maximum=100.0).delays(lambda: 0.0), 4)
    assert waits == pytest.approx([0.1, 0.3, 0.9, 2.7])


@given(
    initial=st.floats(min_value=0.01, max_value=10),
    multiplier=st.floats(min_value=1.0, max_value=4),
    maximum=st.floats(min_value=0.01, max_value=60),
    randoms=st.lists(st.floats(min_value=0.0, max_value=1.0, exclude_max=True), min_size=1, max_size=30),
)
def test_backoff_stays_within_a_tenth_and_all_of_the_capped_ceiling(
    initial: float, multiplier: float, maximum: float, randoms: list[float]
) -> None:
    source = iter(randoms)
    rng: Callable[[], float] = lambda: next(source)  # noqa: E731
    waits = take(Backoff(initial, multiplier, maximum).delays(rng), len(randoms))
    ceiling = min(initial, maximum)  # wait n: [0.1, 1] x min(maximum, initial * multiplier**n)
    for n, wait in enumerate(waits):
        assert 0.1 * ceiling * (1 - 1e-9) <= wait <= ceiling * (1 + 1e-9), n
        ceiling = min(ceiling * multiplier, maximum)
