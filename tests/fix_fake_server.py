"""A fake PostgreSQL server on loopback, only to prove what we refuse to send to one.

It answers the startup packet with one authentication request (a cleartext password, or
``AuthenticationOk`` at once as under ``trust``) and records every byte the client sends
after that. Optionally behind TLS (answering ``SSLRequest`` with ``S``), as a man in the
middle under ``sslmode=require`` would be.

In ``"scram"`` mode it plays an impostor that does not hold the password's verifier: it
offers SCRAM-SHA-256, answers the client-first message with a server-first message (our
nonce extended, a salt, an iteration count), takes the client's proof, and then fails the
way ``scram_fault`` says: a server signature that does not verify (``"signature"``), a
server-first message whose nonce is not the client's (``"nonce"``), a dropped connection
(``"drop"``), or ``AuthenticationOk`` without any server signature (``"skip-final"``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testbed.tls import make_certificates

_SSL_REQUEST = 80877103
_CLEARTEXT = struct.pack("!cii", b"R", 8, 3)
_AUTH_OK = struct.pack("!cii", b"R", 8, 0)
_READY = struct.pack("!ci", b"Z", 5) + b"I"
_SASL, _SASL_CONTINUE, _SASL_FINAL = 10, 11, 12
# The gs2 headers a client-first message starts with: no channel binding ("n"), supported
# by the client but not offered ("y"), or bound ("p=...").
_CLIENT_FIRST = (b"n,,n=", b"y,,n=", b"p=tls-server-end-point,,n=")


def _auth(code: int, payload: bytes = b"") -> bytes:
    return struct.pack("!cii", b"R", 8 + len(payload), code) + payload


def _client_proof(password: str, salt: bytes, iterations: int, auth_message: bytes) -> bytes:
    """RFC 5802's ClientProof (ASCII passwords: SASLprep leaves them unchanged)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    signature = hmac.digest(stored_key, auth_message, "sha256")
    return bytes(a ^ b for a, b in zip(client_key, signature, strict=True))


@dataclass
class FakeServer:
    """``mode`` is ``"cleartext"``, ``"trust"`` or ``"scram"``. ``received`` holds, per
    connection, the bytes the client sent after the server's first authentication request."""

    mode: str
    tls_dir: Path | None = None
    scram_fault: str = "signature"
    received: list[bytes] = field(default_factory=list)
    port: int = 0
    # Per SCRAM proof received: (salt, iterations, AuthMessage, ClientProof).
    proofs: list[tuple[bytes, int, bytes, bytes]] = field(default_factory=list)

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
        after = b""
        try:
            if self.mode == "scram":
                after = self._scram(stream)
            else:
                stream.sendall(_CLEARTEXT if self.mode == "cleartext" else _AUTH_OK + _READY)
            while chunk := stream.recv(4096):
                after += chunk
        except OSError:
            pass
        with self._recorded:
            self.received.append(after)
            self._recorded.notify_all()

    def _message(self, stream: socket.socket) -> bytes:
        """One client message, whole (type byte, length, body)."""
        head = self._read(stream, 5)
        if len(head) < 5:
            raise ConnectionError("the client closed the connection")
        return head + self._read(stream, struct.unpack("!i", head[1:])[0] - 4)

    def _scram(self, stream: socket.socket) -> bytes:
        """An impostor's SCRAM exchange (see the module docstring); what the client sent."""
        stream.sendall(_auth(_SASL, b"SCRAM-SHA-256\x00\x00"))
        first = self._message(stream)  # SASLInitialResponse: mechanism, length, message
        client_first = first[5:].split(b"\x00", 1)[1][4:]
        client_nonce = client_first.rsplit(b"r=", 1)[1]
        nonce = (b"not-" if self.scram_fault == "nonce" else client_nonce) + b"impostor"
        salt = os.urandom(16)
        server_first = b"r=" + nonce + b",s=" + base64.b64encode(salt) + b",i=4096"
        stream.sendall(_auth(_SASL_CONTINUE, server_first))
        if self.scram_fault == "nonce":
            return first
        proof = self._message(stream)  # SASLResponse: c=...,r=...,p=<the client's proof>
        without_proof, _, encoded = proof[5:].rpartition(b",p=")
        bare = client_first[client_first.index(b"n=") :]
        with self._recorded:
            self.proofs.append(
                (
                    salt,
                    4096,
                    bare + b"," + server_first + b"," + without_proof,
                    base64.b64decode(encoded),
                )
            )
        if self.scram_fault == "drop":
            stream.shutdown(socket.SHUT_RDWR)
        elif self.scram_fault == "skip-final":
            stream.sendall(_AUTH_OK + _READY)
        else:  # a signature made up without the verifier: libpq cannot verify it
            stream.sendall(_auth(_SASL_FINAL, b"v=" + base64.b64encode(os.urandom(32))))
        return first + proof

    def proven(self, passwords: dict[str, str]) -> list[str]:
        """For each SCRAM proof received, the name of the password in ``passwords`` that
        made it ("?" for none): which credentials the client offered, in order."""
        with self._recorded:
            proofs = list(self.proofs)
        return [
            next(
                (
                    name
                    for name, password in passwords.items()
                    if _client_proof(password, salt, iterations, message) == proof
                ),
                "?",
            )
            for salt, iterations, message, proof in proofs
        ]

    def client_first_messages(self) -> int:
        """How many SCRAM client-first messages (one per credential offered) arrived."""
        with self._recorded:
            return sum(
                sum(received.count(header) for header in _CLIENT_FIRST)
                for received in self.received
            )

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
    """A factory: ``fake_server("cleartext")``, ``fake_server("trust", tls_dir=...)``,
    ``fake_server("scram", scram_fault="nonce")``."""
    made: list[FakeServer] = []

    class _Made(FakeServer):
        def __post_init__(self) -> None:
            super().__post_init__()
            made.append(self)

    yield _Made
    for server in made:
        server.close()
