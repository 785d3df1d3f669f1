"""A fake PostgreSQL server on loopback, only to prove what we refuse to send to one.

It answers the startup packet with one authentication request (a cleartext password, or
``AuthenticationOk`` at once as under ``trust``) and records every byte the client sends
after that. Optionally behind TLS (answering ``SSLRequest`` with ``S``), as a man in the
middle under ``sslmode=require`` would be.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rotation_tools.testbed.tls import make_certificates

_SSL_REQUEST = 80877103
_CLEARTEXT = struct.pack("!cii", b"R", 8, 3)
_AUTH_OK = struct.pack("!cii", b"R", 8, 0)
_READY = struct.pack("!ci", b"Z", 5) + b"I"


@dataclass
class FakeServer:
    """``mode`` is ``"cleartext"`` or ``"trust"``. ``received`` holds, per connection, the
    bytes the client sent after the server's authentication request."""

    mode: str
    tls_dir: Path | None = None
    received: list[bytes] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._context: ssl.SSLContext | None = None
        if self.tls_dir is not None:
            certs = make_certificates(self.tls_dir, ("localhost",))
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context.load_cert_chain(certs.server_cert, certs.server_key)
        self._stop = threading.Event()
        self._recorded = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self._answer(conn)
                except (OSError, struct.error):
                    continue

    @staticmethod
    def _read(conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def _answer(self, conn: socket.socket) -> None:
        length, code = struct.unpack("!ii", self._read(conn, 8))
        if code != _SSL_REQUEST:
            self._authenticate(conn, length)
        elif self._context is None:
            conn.sendall(b"N")
            self._authenticate(conn, struct.unpack("!i", self._read(conn, 8)[:4])[0])
        else:
            conn.sendall(b"S")
            with self._context.wrap_socket(conn, server_side=True) as stream:
                self._authenticate(stream, struct.unpack("!i", self._read(stream, 8)[:4])[0])

    def _authenticate(self, stream: socket.socket, length: int) -> None:
        self._read(stream, length - 8)  # the startup packet's parameters
        stream.sendall(_CLEARTEXT if self.mode == "cleartext" else _AUTH_OK + _READY)
        after = b""
        try:
            while chunk := stream.recv(4096):
                after += chunk
        except OSError:
            pass
        with self._recorded:
            self.received.append(after)
            self._recorded.notify_all()

    def wait_for(self, connections: int, timeout: float = 10.0) -> list[bytes]:
        """What the first ``connections`` connections sent, once each has closed (the
        client's close is what ends a recording, so no fixed sleep is involved)."""
        with self._recorded:
            self._recorded.wait_for(lambda: len(self.received) >= connections, timeout)
            return list(self.received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def secret_value(self, **extra: object) -> dict[str, object]:
        value: dict[str, object] = {
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": self.port,
            "username": "app",
            "password": "must-never-reach-the-fake-server",
            "ssl": False,
        }
        value.update(extra)
        return value


@pytest.fixture
def fake_server(tmp_path: Path) -> Iterator[type[FakeServer]]:
    """A factory: ``fake_server("cleartext")``, ``fake_server("trust", tls_dir=...)``."""
    made: list[FakeServer] = []

    class _Made(FakeServer):
        def __post_init__(self) -> None:
            super().__post_init__()
            made.append(self)

    yield _Made
    for server in made:
        server.close()
