"""APIM signing (the test vectors of docs/design.md), signed headers, and the process-wide token cache."""

from __future__ import annotations

import hashlib
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enos_pulumi.enos import auth

# The test vectors of docs/design.md ("Authentication (APIM)", item 4), verbatim.
VECTOR_TOKEN = "my-access-token"
VECTOR_SECRET = "my-app-secret"
VECTOR_APP_KEY = "my-app-key"
VECTOR_TIMESTAMP = 1700000000000
VECTOR_QUERY = {"action": "delete", "orgId": "o123"}
VECTOR_BODY = (
    b'{"pipelineId":"p1","stageInstanceName":"LastRecordAppender_01","assetIds":"a1,a2","pointIds":"pt1,pt2"}'
)
VECTOR_SIGNATURE = "9e7d57563fb3b4bdb2111e2c8521baeaee35ec9d41bb80434e49a5a3a4f13af9"
VECTOR_ENCRYPTION = "e6efa580db557dbce254465b1550c0b0898deb7048a398de289230d7dacbfe97"

KEY = ("https://gw.example.com", "app-key")


# -- signing -------------------------------------------------------------------------------------------------


def test_token_encryption_matches_the_documented_vector() -> None:
    assert auth.token_encryption(VECTOR_APP_KEY, VECTOR_TIMESTAMP, VECTOR_SECRET) == VECTOR_ENCRYPTION


def test_request_signature_matches_the_documented_vector() -> None:
    params = auth.params_data(VECTOR_QUERY, VECTOR_BODY)
    assert params == b"actiondeleteorgIdo123" + VECTOR_BODY
    signature = auth.request_signature(VECTOR_TOKEN, params, VECTOR_TIMESTAMP, VECTOR_SECRET)
    assert signature == VECTOR_SIGNATURE


def test_signed_headers_match_the_documented_vector() -> None:
    headers = auth.signed_headers(VECTOR_TOKEN, VECTOR_QUERY, VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP)
    assert headers == {
        "apim-accesstoken": VECTOR_TOKEN,
        "apim-timestamp": "1700000000000",
        "apim-signature": VECTOR_SIGNATURE,
    }


def test_signed_headers_change_with_the_timestamp() -> None:
    first = auth.signed_headers(VECTOR_TOKEN, VECTOR_QUERY, VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP)
    later = auth.signed_headers(VECTOR_TOKEN, VECTOR_QUERY, VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP + 1)
    assert later["apim-timestamp"] == str(VECTOR_TIMESTAMP + 1)
    assert later["apim-signature"] != first["apim-signature"]


def test_params_data_sorts_names_in_ascii_order_uppercase_first() -> None:
    query = {"orgId": "o1", "action": "get", "Zeta": "z", "alpha": "A", "B": "b"}
    # ASCII: "B" (66) < "Zeta" (90) < "action" (97) < "alpha" < "orgId".
    assert auth.params_data(query) == b"BbZetazactiongetalphaAorgIdo1"


def test_params_data_accepts_pairs_and_keeps_the_order_of_a_repeated_name() -> None:
    pairs = [("b", "2"), ("a", "x"), ("b", "1")]
    assert auth.params_data(pairs) == b"axb2b1"


def test_params_data_without_query_or_body_is_empty() -> None:
    assert auth.params_data({}) == b""
    assert auth.params_data({}, b"") == b""


def test_params_data_appends_the_body_bytes_raw() -> None:
    body = '{"assetIds":"Zähler-01","pointIds":"温度"}'.encode()
    assert auth.params_data({"orgId": "o"}, body) == b"orgIdo" + body
    # Bytes that are not UTF-8 at all are signed as they are, too.
    odd = b"\xff\xfe\x00raw"
    assert auth.params_data({}, odd) == odd


def test_params_data_encodes_non_ascii_query_values_as_utf8() -> None:
    assert auth.params_data({"name": "é"}) == "nameé".encode()


def test_request_signature_hashes_the_exact_body_bytes() -> None:
    body = "Zähler".encode()
    params = auth.params_data({"orgId": "o"}, body)
    expected = hashlib.sha256(b"tok" + b"orgIdo" + body + b"123" + b"sec").hexdigest()
    assert auth.request_signature("tok", params, 123, "sec") == expected
    latin1 = "Zähler".encode("latin-1")
    assert auth.request_signature("tok", b"orgIdo" + latin1, 123, "sec") != expected


@given(
    token=st.text(min_size=1, max_size=20),
    secret=st.text(min_size=1, max_size=20),
    timestamp=st.integers(min_value=0, max_value=10**14),
    query=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=5),
    body=st.binary(max_size=64),
)
def test_signature_follows_the_documented_rule(
    token: str, secret: str, timestamp: int, query: dict[str, str], body: bytes
) -> None:
    # paramsData rebuilt independently: names sorted by code point, name+value, then the body.
    ordered = "".join(name + query[name] for name in sorted(query, key=lambda n: [ord(c) for c in n]))
    params = ordered.encode() + body
    expected = hashlib.sha256(token.encode() + params + str(timestamp).encode() + secret.encode()).hexdigest()
    headers = auth.signed_headers(token, query, body, secret, timestamp)
    assert headers["apim-signature"] == expected
    assert headers["apim-timestamp"] == str(timestamp)
    assert headers["apim-accesstoken"] == token


# -- Token ---------------------------------------------------------------------------------------------------


def test_token_repr_hides_the_value() -> None:
    token = auth.Token("super-secret-token-value", 12.5)
    assert "super-secret-token-value" not in repr(token)
    assert "super-secret-token-value" not in str(token)
    assert "hidden" in repr(token)
    assert "12.5" in repr(token)


# -- renew_time ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "renew_after"),
    [
        (7200.0, 5760.0),  # the documented 2 h token: at 80 %
        (300.0, 240.0),  # 80 % is exactly a minute early
        (200.0, 140.0),  # 80 % would be 40 s early: a full minute instead
        (100.0, 50.0),  # too short for a minute: half the lifetime
        (0.0, 0.0),
    ],
)
def test_renew_time_margins(lifetime: float, renew_after: float) -> None:
    assert auth.renew_time(1000.0, lifetime) == pytest.approx(1000.0 + renew_after)


@given(
    now=st.floats(min_value=0, max_value=1e9),
    lifetime=st.floats(min_value=0, max_value=1e6),
)
def test_renew_time_is_within_the_lifetime_and_at_least_a_minute_early_when_possible(
    now: float, lifetime: float
) -> None:
    renew = auth.renew_time(now, lifetime)
    tolerance = 1e-6 * max(1.0, now)
    assert now - tolerance <= renew <= now + 0.8 * lifetime + tolerance
    assert (now + lifetime) - renew >= min(60.0, lifetime / 2) - tolerance


# -- TokenCache ----------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingFetch:
    """Hands out Token("t1"), Token("t2"), ... each valid until ``now + lifetime``."""

    def __init__(self, clock: FakeClock, lifetime: float = 100.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0

    def __call__(self) -> auth.Token:
        self.calls += 1
        return auth.Token(f"t{self.calls}", self.clock.now + self.lifetime)


def test_cache_fetches_once_and_reuses_the_token() -> None:
    clock = FakeClock()
    cache = auth.TokenCache(clock=clock)
    fetch = CountingFetch(clock)
    first = cache.get(KEY, fetch)
    clock.now = 50.0
    again = cache.get(KEY, fetch)
    assert fetch.calls == 1
    assert again is first
    assert first.value == "t1"


def test_cache_keeps_keys_apart() -> None:
    clock = FakeClock()
    cache = auth.TokenCache(clock=clock)
    fetch = CountingFetch(clock)
    a = cache.get(("https://gw", "key-a"), fetch)
    b = cache.get(("https://gw", "key-b"), fetch)
    c = cache.get(("https://other-gw", "key-a"), fetch)
    assert fetch.calls == 3
    assert len({a.value, b.value, c.value}) == 3
    assert cache.get(("https://gw", "key-a"), fetch) is a


def test_cache_renews_once_the_clock_reaches_renew_at() -> None:
    clock = FakeClock()
    cache = auth.TokenCache(clock=clock)
    fetch = CountingFetch(clock, lifetime=100.0)
    first = cache.get(KEY, fetch)
    clock.now = 99.999
    assert cache.get(KEY, fetch) is first
    assert fetch.calls == 1
    clock.now = 100.0
    renewed = cache.get(KEY, fetch)
    assert fetch.calls == 2
    assert renewed.value == "t2"
    assert renewed.renew_at == 200.0
    clock.now = 150.0
    assert cache.get(KEY, fetch) is renewed
    assert fetch.calls == 2


def test_invalidate_drops_the_stale_token() -> None:
    clock = FakeClock()
    cache = auth.TokenCache(clock=clock)
    fetch = CountingFetch(clock)
    stale = cache.get(KEY, fetch)
    cache.invalidate(KEY, stale)
    fresh = cache.get(KEY, fetch)
    assert fetch.calls == 2
    assert fresh.value == "t2"


def test_invalidate_keeps_a_newer_token() -> None:
    clock = FakeClock()
    cache = auth.TokenCache(clock=clock)
    fetch = CountingFetch(clock)
    stale = cache.get(KEY, fetch)
    cache.invalidate(KEY, stale)
    newer = cache.get(KEY, fetch)
    # A second thread that also saw the stale token reports it late: the newer one must survive.
    cache.invalidate(KEY, stale)
    assert cache.get(KEY, fetch) is newer
    assert fetch.calls == 2


def test_invalidate_an_equal_but_different_token_object_keeps_the_cached_one() -> None:
    clock = FakeClock()
    cache = auth.TokenCache(clock=clock)
    cached = cache.get(KEY, lambda: auth.Token("same", 100.0))
    cache.invalidate(KEY, auth.Token("same", 100.0))
    assert cache.get(KEY, lambda: auth.Token("other", 100.0)) is cached


def test_invalidate_of_an_unknown_key_is_harmless() -> None:
    cache = auth.TokenCache(clock=FakeClock())
    cache.invalidate(KEY, auth.Token("x", 1.0))
    assert cache.get(KEY, lambda: auth.Token("y", 1.0)).value == "y"


def test_clear_forgets_every_token() -> None:
    clock = FakeClock()
    cache = auth.TokenCache(clock=clock)
    fetch = CountingFetch(clock)
    cache.get(KEY, fetch)
    cache.get(("g", "k2"), fetch)
    cache.clear()
    assert cache.get(KEY, fetch).value == "t3"
    assert fetch.calls == 3


def test_a_failed_fetch_caches_nothing() -> None:
    cache = auth.TokenCache(clock=FakeClock())

    def broken() -> auth.Token:
        raise RuntimeError("token service down")

    with pytest.raises(RuntimeError):
        cache.get(KEY, broken)
    assert cache.get(KEY, lambda: auth.Token("ok", 100.0)).value == "ok"


class _ObservedLock:
    """Wraps a key lock to report that a thread is about to block on it."""

    def __init__(self, lock: threading.Lock, on_wait: threading.Semaphore) -> None:
        self._lock = lock
        self._on_wait = on_wait

    def __enter__(self) -> None:
        self._on_wait.release()
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class _ObservedCache(auth.TokenCache):
    def __init__(self) -> None:
        super().__init__(clock=FakeClock())
        self.arrivals = threading.Semaphore(0)

    def _key_lock(self, key: tuple[str, str]) -> threading.Lock:
        return _ObservedLock(super()._key_lock(key), self.arrivals)  # type: ignore[return-value]


def test_many_threads_share_one_fetch() -> None:
    cache = _ObservedCache()
    fetching = threading.Event()
    release = threading.Event()
    fetches: list[str] = []

    def fetch() -> auth.Token:
        fetches.append(threading.current_thread().name)
        fetching.set()
        assert release.wait(10), "the test never released the fetch"
        return auth.Token("shared", 1e9)

    results: list[auth.Token] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(cache.get(KEY, fetch))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"w{i}") for i in range(8)]
    threads[0].start()
    assert fetching.wait(10)
    assert cache.arrivals.acquire(timeout=10)  # the fetching thread itself
    for thread in threads[1:]:
        thread.start()
    # Every other thread has reached the key lock while the fetch is still held.
    for _ in threads[1:]:
        assert cache.arrivals.acquire(timeout=10)
    release.set()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert fetches == ["w0"]
    assert len(results) == 8
    assert all(token is results[0] for token in results)
    assert results[0].value == "shared"


def test_threads_with_different_keys_do_not_wait_for_each_other() -> None:
    cache = auth.TokenCache(clock=FakeClock())
    release = threading.Event()
    fetching = threading.Event()

    def slow() -> auth.Token:
        fetching.set()
        assert release.wait(10)
        return auth.Token("slow", 1e9)

    holder = threading.Thread(target=lambda: cache.get(("g", "slow"), slow))
    holder.start()
    assert fetching.wait(10)
    try:
        # Would deadlock (until the timeout) if one lock guarded every key.
        assert cache.get(("g", "fast"), lambda: auth.Token("fast", 1e9)).value == "fast"
    finally:
        release.set()
        holder.join(10)
