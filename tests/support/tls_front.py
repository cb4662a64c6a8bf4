"""TLS in front of a plain simulator, as a gateway with a self-signed certificate: bytes relayed both ways;
optionally the TLS answer to one request is broken after the simulator has served it (a TLS failure
after the request was sent: EnOS acted, the client reads a TLS error)."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import subprocess
import threading
from pathlib import Path

__all__ = ["TlsFront", "make_self_signed"]

#: A TLS application-data record whose content cannot decrypt: the client's TLS layer fails on it.
_BAD_RECORD = b"\x17\x03\x03\x00\x20" + b"\x00" * 32


def make_self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and its key (needs the ``openssl`` command)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsFront:
    """Relays TLS on ``port`` to the plain simulator on ``backend_port``. ``break_answer_to`` (bytes found
    in a request) breaks the TLS answer of the next such request, once; ``broken`` counts them."""

    def __init__(
        self, backend_port: int, cert: Path, key: Path, break_answer_to: bytes | None = None
    ) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend_port = backend_port
        self.break_answer_to = break_answer_to
        self.broken = 0
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _take_break(self, data: bytes) -> bool:
        with self._lock:
            if self.break_answer_to is None or self.break_answer_to not in data or self.broken:
                return False
            self.broken += 1
            return True

    def _relay(self, conn: socket.socket) -> None:
        try:
            front = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        back = socket.create_connection(("127.0.0.1", self.backend_port))
        cut_next = False
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
                    cut_next = cut_next or self._take_break(data)
                    back.sendall(data)
                if back in readable:
                    data = back.recv(65536)
                    if not data:
                        break
                    if cut_next:
                        os.write(front.fileno(), _BAD_RECORD)  # under TLS: the record cannot decrypt
                        break
                    front.sendall(data)
        except OSError:
            pass
        finally:
            for s in (front, back):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self.sock.close()
