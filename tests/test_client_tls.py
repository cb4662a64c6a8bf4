"""TLS over real sockets: a certificate that does not verify is final (with advice), a cut handshake is
not, and enos:caBundle (or REQUESTS_CA_BUNDLE) trusts a self-signed gateway: the simulator behind TLS."""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from enos_pulumi.enos import auth
from enos_pulumi.enos.client import EnosClient, SessionPool, StageTarget
from enos_pulumi.enos.errors import TransportError
from enos_pulumi.enos.retry import Backoff, RetryPolicy
from enos_pulumi.enos.settings import Settings, resolve_settings
from enos_pulumi.simulator import Simulator
from tests.support.fakes import FakeTime
from tests.support.fixtures_simulator import (
    SIM_ACCESS_KEY,
    SIM_ORG_ID,
    SIM_PAUSED_PIPELINE,
    SIM_SECRET_KEY,
    SIM_STAGE,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class Server:
    """Accepts connections on loopback; each is handed to ``handle`` in a thread."""

    def __init__(self, handle: object) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._handle = handle
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()  # type: ignore[arg-type]

    def close(self) -> None:
        self.sock.close()


def client_for(port: int, fake: FakeTime) -> EnosClient:
    settings = Settings(api_gateway=f"https://localhost:{port}", access_key="k", secret_key="s")
    retry = RetryPolicy(deadline=5.0, backoff=Backoff(0.5, 2.0, 2.0), clock=fake.clock, sleep=fake.sleep)
    return EnosClient(settings, retry=retry, tokens=auth.TokenCache(), sessions=SessionPool())


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def tls_server(self_signed: tuple[Path, Path]) -> Iterator[Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)

    def handshake_then_close(conn: socket.socket) -> None:
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    server = Server(handshake_then_close)
    yield server
    server.close()


@pytest.fixture
def cutting_server() -> Iterator[Server]:
    def cut(conn: socket.socket) -> None:
        conn.recv(1024)  # the ClientHello
        conn.close()

    server = Server(cut)
    yield server
    server.close()


def test_a_certificate_that_does_not_verify_fails_at_once(tls_server: Server, fake: FakeTime) -> None:
    client = client_for(tls_server.port, fake)
    with pytest.raises(TransportError) as info:
        client.delete_stage_state(StageTarget("o", "p", "LastRecordAppender_1"), ["a"], ["b"])
    assert info.value.retryable is False
    assert "certificate verify failed" in str(info.value)
    assert tls_server.connections == 1
    assert fake.sleeps == []


def test_a_handshake_cut_short_is_retried_until_the_deadline(cutting_server: Server, fake: FakeTime) -> None:
    client = client_for(cutting_server.port, fake)
    with pytest.raises(TransportError) as info:
        client.delete_stage_state(StageTarget("o", "p", "LastRecordAppender_1"), ["a"], ["b"])
    assert info.value.retryable is True
    assert "gave up after" in str(info.value)
    assert cutting_server.connections == len(fake.sleeps) + 1 > 1


@pytest.fixture
def breaking_server(self_signed: tuple[Path, Path]) -> Iterator[Server]:
    """Completes the handshake, reads the request head, then sends a TLS record that cannot decrypt while
    the client is still writing the body."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    bad_record = b"\x17\x03\x03\x00\x20" + b"\x00" * 32

    def break_mid_request(conn: socket.socket) -> None:
        with contextlib.suppress(ssl.SSLError, OSError):
            tls = context.wrap_socket(conn, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                head += tls.recv(65536)
            conn.sendall(bad_record)  # under the TLS layer: garbage where a record should be
            select.select([], [], [], 0.3)
        conn.close()

    server = Server(break_mid_request)
    yield server
    server.close()


def test_a_tls_break_while_the_request_goes_out_is_no_handshake_failure(
    breaking_server: Server, self_signed: tuple[Path, Path]
) -> None:
    """The handshake was done and the request was going out: how much of it the gateway got is unknown,
    so it is a connection cut (which may have landed, as a pause or start must know), not a handshake."""
    from enos_pulumi.enos.errors import TransportKind
    from enos_pulumi.enos.request import Request
    from enos_pulumi.enos.transport import Transport

    settings = Settings(f"https://localhost:{breaking_server.port}", "k", "s", ca_bundle=str(self_signed[0]))
    transport = Transport(settings, SessionPool())
    body = b"x" * (8 * 1024 * 1024)  # still being written when the record arrives
    request = Request("POST", "/streaming/v2.0/stage-state", {"action": "delete"}, body, "Op", "target")
    with pytest.raises(TransportError) as info:
        transport.send(request, {})
    assert info.value.kind == TransportKind.CLOSED
    assert "broke while the request was being sent" in str(info.value)
    assert "handshake" not in str(info.value)


def test_a_handshake_cut_short_is_worded_as_a_handshake_failure(
    cutting_server: Server, fake: FakeTime
) -> None:
    client = client_for(cutting_server.port, fake)
    with pytest.raises(TransportError) as info:
        client.delete_stage_state(StageTarget("o", "p", "LastRecordAppender_1"), ["a"], ["b"])
    assert "TLS handshake with localhost" in str(info.value)
    assert "while the request was being sent" not in str(info.value)


# -- trusting a corporate or self-signed CA: the simulator behind TLS ------------------------------------


class TlsFront:
    """TLS in front of a plain simulator, as a gateway with a self-signed certificate: bytes both ways."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend_port = backend_port
        self.server = Server(self._relay)

    def _relay(self, conn: socket.socket) -> None:
        try:
            front = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        back = socket.create_connection(("127.0.0.1", self.backend_port))
        # One thread for both directions: an SSL socket must not be read and written from two threads.
        try:
            while True:
                readable, _, _ = select.select([front, back], [], [], 10)
                if not readable:
                    break
                if front in readable or front.pending():
                    data = front.recv(65536)
                    if not data:
                        break
                    back.sendall(data)
                if back in readable:
                    data = back.recv(65536)
                    if not data:
                        break
                    front.sendall(data)
        except OSError:
            pass
        finally:
            for s in (front, back):
                with contextlib.suppress(OSError):
                    s.close()


@pytest.fixture
def tls_simulator(self_signed: tuple[Path, Path], simulator: Simulator) -> Iterator[tuple[str, Path]]:
    front = TlsFront(simulator.port, *self_signed)
    yield f"https://localhost:{front.server.port}", self_signed[0]
    front.server.close()


def reset_through(gateway: str, environ: dict[str, str], sim: Simulator) -> None:
    settings = resolve_settings(
        None,
        None,
        {
            "ENOS_API_GATEWAY": gateway,
            "ENOS_ACCESS_KEY": SIM_ACCESS_KEY,
            "ENOS_SECRET_KEY": SIM_SECRET_KEY,
            **environ,
        },
    )
    sim.set_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE, ["a1"], ["p1"])
    client = EnosClient(
        settings, retry=RetryPolicy(deadline=0), tokens=auth.TokenCache(), sessions=SessionPool()
    )
    client.delete_stage_state(StageTarget(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE), ["a1"], ["p1"])
    assert sim.stage_pairs(SIM_ORG_ID, SIM_PAUSED_PIPELINE, SIM_STAGE) == set()


def test_a_self_signed_gateway_is_refused_with_advice_to_set_the_ca_bundle(
    tls_simulator: tuple[str, Path], simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    gateway, _ = tls_simulator
    with pytest.raises(TransportError) as info:
        reset_through(gateway, {}, simulator)
    assert "TLS certificate verify failed for localhost (self-signed certificate)" in str(info.value)
    assert "set enos:caBundle / ENOS_CA_BUNDLE to its PEM file" in str(info.value)


def test_enos_ca_bundle_trusts_the_gateway(
    tls_simulator: tuple[str, Path], simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    gateway, cert = tls_simulator
    reset_through(gateway, {"ENOS_CA_BUNDLE": str(cert)}, simulator)
    assert [e["operation"] for e in simulator.requests] == ["token", "delete"]


def test_requests_ca_bundle_is_honoured_too(
    tls_simulator: tuple[str, Path], simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, cert = tls_simulator
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    reset_through(gateway, {}, simulator)
