"""One bounded attempt over real sockets: wall-clock bound, size cap, and errors in our own words.

The bounds asserted here are correctness (an attempt must end), with generous slack for a loaded
machine; they are not speed targets.
"""

from __future__ import annotations

import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from enos_pulumi.enos.errors import TransportError
from enos_pulumi.enos.request import Request
from enos_pulumi.enos.settings import Settings
from enos_pulumi.enos.transport import SessionPool, Transport
from tests.support.rawserver import RawServer, http_answer, raw_server, trickle

SLACK = 2.0  # seconds a loaded 2-core machine may add to a bound
GET_X = Request("GET", "/x", {}, None, "Op", "target")


def transport(url: str, **fields: object) -> Transport:
    values: dict[str, object] = {"connect_timeout": 1.0, "read_timeout": 1.0, "attempt_timeout": 0.5}
    values.update(fields)
    settings = Settings(api_gateway=url, access_key="ak", secret_key="sk-transport-secret", **values)  # type: ignore[arg-type]
    return Transport(settings, SessionPool())


def send(t: Transport) -> object:
    request = Request("POST", "/streaming/v2.0/stage-state", {"action": "delete"}, b"{}", "Op", "target")
    return t.send(request, {})


@pytest.fixture
def sessions() -> Iterator[SessionPool]:
    pool = SessionPool()
    yield pool
    pool.clear()


def timed_failure(t: Transport) -> tuple[TransportError, float]:
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        send(t)
    return info.value, time.monotonic() - started


# -- the wall-clock bound ----------------------------------------------------------------------------------


def test_a_trickled_body_is_cut_at_the_attempt_bound() -> None:
    # Each byte arrives well within the read timeout, so only a bound on the whole attempt ends it
    # (before: one attempt lasted as long as the server cared to trickle, 34 s seen).
    def handler(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
        trickle(conn, b"x" * 400, 0.05)

    with raw_server(handler) as server:
        error, elapsed = timed_failure(transport(server.url))
    assert error.kind == "timeout" and error.retryable
    assert "no complete answer from 127.0.0.1" in str(error)
    assert "within 0.5 s (enos:attemptTimeoutSeconds)" in str(error)
    assert elapsed < 0.5 + SLACK


def test_a_trickled_status_line_and_headers_are_cut_at_the_attempt_bound() -> None:
    def handler(conn: socket.socket, _head: bytes) -> None:
        trickle(conn, http_answer(b'{"code":0,"data":true}'), 0.05)

    with raw_server(handler) as server:
        error, elapsed = timed_failure(transport(server.url))
    assert error.kind == "timeout"
    assert elapsed < 0.5 + SLACK


def test_a_body_read_until_close_is_not_trusted_when_the_bound_cut_it() -> None:
    # No Content-Length: the watchdog's shutdown looks like the normal end of the body. A truncated
    # answer must not pass for a complete one.
    def handler(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        conn.sendall(b'{"code":0,"data":true')
        trickle(conn, b" " * 100, 0.05)

    with raw_server(handler) as server:
        error, _ = timed_failure(transport(server.url))
    assert error.kind == "timeout"


def test_a_silent_server_is_a_read_timeout() -> None:
    def handler(conn: socket.socket, _head: bytes) -> None:
        time.sleep(1.5)

    with raw_server(handler) as server:
        error, elapsed = timed_failure(transport(server.url, read_timeout=0.2, attempt_timeout=5.0))
    assert error.kind == "timeout" and error.retryable
    assert "no data from 127.0.0.1" in str(error)
    assert elapsed < 0.2 + SLACK


def test_a_complete_answer_within_the_bound_is_returned_and_the_connection_reused(
    sessions: SessionPool,
) -> None:
    connections: list[int] = []

    def handler(conn: socket.socket, _head: bytes) -> None:
        connections.append(1)
        conn.sendall(http_answer(b'{"code":0}').replace(b"Connection: close\r\n", b""))
        # keep-alive: answer a second request on the same connection
        from tests.support.rawserver import read_head

        read_head(conn)
        conn.sendall(http_answer(b'{"code":0,"n":2}'))

    with raw_server(handler) as server:
        t = Transport(transport(server.url).settings, sessions)
        first = t.send(GET_X, {})
        second = t.send(GET_X, {})
    assert first.status == 200 and first.body == b'{"code":0}'
    assert second.body == b'{"code":0,"n":2}'
    assert len(connections) == 1


# -- the size cap ------------------------------------------------------------------------------------------


def test_an_endless_body_is_capped_without_growing_memory() -> None:
    # Before: answers were read whole (a 200 MB error page grew the client by 800 MB).
    def handler(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
        chunk = b"<p>" + b"x" * 65533
        for _ in range(200 * 16):  # 200 MB, unless the client stops reading
            conn.sendall(chunk)

    with raw_server(handler) as server:
        tracemalloc.start()
        try:
            error, _ = timed_failure(
                transport(server.url, max_answer_bytes=1024 * 1024, attempt_timeout=30.0)
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert error.kind == "too-large"
    assert "larger than 1 MiB" in str(error) and "HTTP 502" in str(error)
    assert error.retryable  # a 502 is transient, whatever its page
    assert peak < 16 * 1024 * 1024


def test_a_declared_length_over_the_cap_is_refused_unread_and_not_retried_for_a_200() -> None:
    def handler(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 209715200\r\n\r\n")
        time.sleep(0.5)

    with raw_server(handler) as server:
        error, _ = timed_failure(transport(server.url, max_answer_bytes=1024 * 1024))
    assert error.kind == "too-large"
    assert not error.retryable


# -- failures in our own words -----------------------------------------------------------------------------


def test_a_name_that_does_not_resolve_says_so_and_names_the_setting() -> None:
    error, _ = timed_failure(transport("https://enos-gw.invalid"))
    assert error.kind == "dns"
    assert "cannot resolve host enos-gw.invalid — check enos:apiGateway" in str(error)
    assert "NameResolution" not in str(error) and "Max retries" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__


def test_a_refused_connection_is_one_short_line_naming_the_gateway() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    error, _ = timed_failure(transport(f"http://127.0.0.1:{port}"))
    assert error.kind == "refused" and error.retryable
    text = str(error)
    assert f"cannot connect to 127.0.0.1:{port}: connection refused — check enos:apiGateway" in text
    assert "\n" not in text and "urllib3" not in text and "Max retries" not in text


@pytest.mark.parametrize(
    "answer",
    [
        b"",  # closed before the status line
        b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"code":',  # mid-body
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # a bad chunk size
        b"SSH-2.0-OpenSSH_9.6\r\n",  # not HTTP at all
    ],
)
def test_a_broken_answer_is_a_retryable_transport_error(answer: bytes) -> None:
    def handler(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(answer)

    with raw_server(handler) as server:
        error, _ = timed_failure(transport(server.url))
    assert error.retryable
    assert error.kind in ("closed", "timeout")
    assert "failed before a complete answer" in str(error) or error.kind == "timeout"


@pytest.mark.parametrize("answer", [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Type: appl"])
def test_headers_cut_short_read_as_an_empty_body_read_until_close(answer: bytes) -> None:
    # HTTP cannot tell these from a complete answer without a length; the envelope check refuses them.
    with raw_server(lambda conn, head: conn.sendall(answer)) as server:
        result = send(transport(server.url))
    assert result.status == 200 and result.body == b""  # type: ignore[attr-defined]


def test_a_header_value_the_stack_refuses_is_not_quoted() -> None:
    secret_token = "tok-SECRET\r\nX-Evil: 1"
    with raw_server(lambda conn, head: conn.sendall(http_answer(b"{}"))) as server:
        t = transport(server.url)
        with pytest.raises(TransportError) as info:
            t.send(GET_X, {"apim-accesstoken": secret_token})
    assert "SECRET" not in str(info.value)
    assert info.value.kind == "invalid" and not info.value.retryable


def test_server_helper_records_requests() -> None:
    # The raw server is a test tool: make sure it records what it received, or other tests prove little.
    with raw_server(lambda conn, head: conn.sendall(http_answer(b"{}"))) as server:
        send(transport(server.url))
        assert isinstance(server, RawServer)
        assert server.requests[0].startswith(b"POST /streaming/v2.0/stage-state?action=delete HTTP/1.1")
        assert b"\r\nAccept-Encoding: identity\r\n" in server.requests[0]


# -- the watchdog only ever cuts its own attempt's connection ---------------------------------------------


def test_an_expiring_watch_never_cuts_a_socket_that_reused_its_descriptor_number() -> None:
    from enos_pulumi.enos.watchdog import _attach, watched

    left, right = socket.socketpair()
    with watched(0.2):
        _attach(left)
        number = left.fileno()
        left.close()
        right.close()
        # An unrelated connection now gets the freed descriptor number (the lowest free one).
        mine, theirs = socket.socketpair()
        reused = number in (mine.fileno(), theirs.fileno())
        time.sleep(0.4)  # the bound passes while this attempt is still open
    try:
        assert reused, "the test needs the descriptor number to be reused"
        mine.sendall(b"still open")
        assert theirs.recv(100) == b"still open"
    finally:
        mine.close()
        theirs.close()


def test_a_finished_watch_leaves_the_kept_alive_connection_alone() -> None:
    from enos_pulumi.enos.watchdog import _attach, watched

    left, right = socket.socketpair()
    with watched(0.2) as watch:
        _attach(left)
    time.sleep(0.4)
    try:
        assert not watch.expired and watch.dups == []
        left.sendall(b"x")
        assert right.recv(1) == b"x"
    finally:
        left.close()
        right.close()


# -- sessions carry nothing from one answer to the next -----------------------------------------------------


def test_cookies_from_the_gateway_are_not_kept_or_sent_back(sessions: SessionPool) -> None:
    def handler(conn: socket.socket, _head: bytes) -> None:
        cookie = "Set-Cookie: big=" + "c" * 4000 + "; Path=/\r\n"
        conn.sendall(http_answer(b'{"code":0}', headers=cookie))

    with raw_server(handler) as server:
        t = Transport(transport(server.url).settings, sessions)
        for _ in range(3):
            t.send(GET_X, {})
        assert not any(b"Cookie:" in head for head in server.requests)


def test_a_netrc_entry_never_replaces_the_bearer_header(
    sessions: SessionPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with raw_server(lambda conn, head: conn.sendall(http_answer(b"{}"))) as server:
        # https gateways keep trust_env (proxies, CA bundles): mimic one on loopback.
        t = Transport(transport(server.url).settings, sessions)
        with sessions.session(t.settings.api_gateway) as session:
            session.trust_env = True
        t.send(GET_X, {"Authorization": "Bearer tok-bearer-1234"})
        assert b"Authorization: Bearer tok-bearer-1234\r\n" in server.requests[0]


def test_a_malformed_answer_head_is_retryable_and_said_to_be_the_answer() -> None:
    def handler(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 503 X\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcdefg")

    with raw_server(handler) as server:
        error, _ = timed_failure(transport(server.url))
    assert error.retryable
    assert "could not be made" not in str(error)


# -- the failure table: the first cause that fits ----------------------------------------------------------


def _classified(exc: Exception, *, expired: bool = False, sent: bool = False) -> TransportError:
    from enos_pulumi.enos.failures import Failure, transport_error
    from enos_pulumi.enos.timeouts import Timeouts

    timeouts = Timeouts(connect=3.0, read=90.0, attempt=30.0)
    return transport_error(Failure(exc, expired, sent, "gw.example.test", 443, timeouts), "Op", "target")


def _certificate_error() -> Exception:
    import ssl

    import requests

    cause = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    cause.verify_message = "self-signed certificate"
    error = requests.exceptions.SSLError("handshake")
    error.__context__ = cause
    return error


def test_the_failure_table_takes_the_first_cause_that_fits() -> None:
    import requests

    from enos_pulumi.enos.errors import TransportKind

    # An attempt its bound cut is a timeout, whatever the stack made of the shutdown.
    cut = _classified(requests.exceptions.ConnectionError("reset"), expired=True, sent=True)
    assert cut.kind is TransportKind.TIMEOUT and "within 30 s (enos:attemptTimeoutSeconds)" in cut.detail
    # A connect timeout is also a Timeout and a ConnectionError: the connect timeout comes first.
    slow = _classified(requests.exceptions.ConnectTimeout("slow"))
    assert slow.kind is TransportKind.CONNECT_TIMEOUT and "within 3 s" in slow.detail and slow.retryable
    # A certificate error is also a TLS error: it is the one that cannot be mended by another attempt.
    cert = _classified(_certificate_error())
    assert cert.kind is TransportKind.TLS and not cert.retryable
    assert "(self-signed certificate)" in cert.detail and "enos:caBundle" in cert.detail
    tls = _classified(requests.exceptions.SSLError("handshake"))
    assert tls.kind is TransportKind.TLS and tls.retryable
    assert "handshake with gw.example.test:443 failed" in tls.detail
    # A read waits no longer than the attempt, and says so.
    read = _classified(requests.exceptions.ReadTimeout("slow"))
    assert read.kind is TransportKind.TIMEOUT and "for 30 s" in read.detail
    # What is left is the answer's fault once the request went out, ours before.
    odd = _classified(ValueError("odd"), sent=True)
    assert odd.kind is TransportKind.BAD_ANSWER and odd.retryable and "(ValueError)" in odd.detail
    bad = _classified(ValueError("odd"))
    assert bad.kind is TransportKind.INVALID and not bad.retryable
