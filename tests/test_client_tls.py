"""TLS failures over real sockets: a certificate that does not verify is final, a cut handshake is not."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from enos_pulumi import auth
from enos_pulumi.client import EnosClient, SessionPool, StageTarget
from enos_pulumi.errors import TransportError
from enos_pulumi.retry import Backoff, RetryPolicy
from enos_pulumi.settings import Settings
from tests.fakes import FakeTime

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
