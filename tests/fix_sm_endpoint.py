"""Local stand-ins for Secrets Manager's HTTP endpoint, where moto cannot play the part.

- :class:`HungEndpoint`: a socket that accepts connections and never answers (a Secrets
  Manager endpoint behind a broken proxy or a black-holed NAT). It counts the connections.
- :class:`TrickleEndpoint`: reads a request, then answers one byte at a time, forever (a
  slow-loris endpoint or proxy: every ``recv`` gets a byte within any socket timeout).
- :class:`ContainerCredentials`: the ECS container credentials endpoint
  (``AWS_CONTAINER_CREDENTIALS_FULL_URI``; botocore allows a loopback address for it): it
  hands out temporary credentials ``answers`` times, then accepts and never answers.
- :class:`FakeSecretsManager`: answers ``GetSecretValue`` with a value per stage, or with
  an error code and HTTP status moto cannot produce (AccessDenied for a caller, a disabled
  KMS key, throttling), late (``delay_s``: a slow endpoint that eats the caller's budget),
  or not at all (``hang``); it records each request's User-Agent.

They fake AWS, never PostgreSQL: the values they serve point at the real test server.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class HungEndpoint:
    """Accepts TCP connections and never sends a byte back."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._accepted.append(conn)  # held open, never read from or answered

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._accepted)

    def close(self) -> None:
        self._sock.close()
        self._thread.join(5)
        with self._lock:
            for conn in self._accepted:
                conn.close()


class TrickleEndpoint:
    """Reads each request, then sends an HTTP answer one byte every ``gap_s`` seconds,
    never finishing it. It counts the connections."""

    def __init__(self, gap_s: float = 0.2) -> None:
        self.gap_s = gap_s
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: "
        with conn:
            try:
                conn.recv(65536)
                sent = 0
                while not self._stop.wait(self.gap_s):
                    conn.sendall(head[sent : sent + 1] if sent < len(head) else b"x")
                    sent += 1
            except OSError:
                return  # the client shut it down

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


class ContainerCredentials:
    """Temporary credentials for the first ``answers`` requests, each expiring
    ``expires_in_s`` from now (less than botocore's 10-minute mandatory window: the next
    use refreshes them); later requests are held and never answered."""

    def __init__(self, answers: int = 0, expires_in_s: float = 300.0) -> None:
        self.answers = answers
        self.requests = 0
        self._release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with endpoint._lock:
                    endpoint.requests += 1
                    serve = endpoint.requests <= endpoint.answers
                if not serve:
                    endpoint._release.wait()
                    return
                expires = datetime.now(UTC) + timedelta(seconds=expires_in_s)
                body = json.dumps(
                    {
                        "AccessKeyId": "ASIATESTCONTAINER",
                        "SecretAccessKey": "testing",
                        "Token": "testing-token",
                        "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/credentials"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@dataclass
class Answer:
    """What :class:`FakeSecretsManager` answers: a value, an error, or nothing."""

    value: str | None = field(default=None, repr=False)
    error: str | None = None
    status: int = 400
    hang: bool = False
    # Seconds to hold the answer back (a slow endpoint, not a hung one).
    delay_s: float = 0.0


class FakeSecretsManager:
    """``GetSecretValue`` over HTTP: ``answers[stage]`` says what each stage gets (a stage
    not listed is ResourceNotFoundException)."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.user_agents: list[str] = []
        self.requests = 0
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests += 1
                    fake.user_agents.append(self.headers.get("User-Agent", ""))
                    answer = fake.answers.get(body.get("VersionStage", "AWSCURRENT"))
                if answer is not None and answer.hang:
                    fake._release.wait()
                    return
                if answer is not None and answer.delay_s:
                    fake._release.wait(answer.delay_s)
                if answer is None:
                    answer = Answer(error="ResourceNotFoundException", status=400)
                if answer.error is not None:
                    payload: dict[str, Any] = {
                        "__type": answer.error,
                        "message": f"{answer.error} (from the test's endpoint)",
                    }
                    self._send(answer.status, payload)
                    return
                self._send(
                    200,
                    {
                        "ARN": body.get("SecretId", ""),
                        "Name": body.get("SecretId", ""),
                        "SecretString": answer.value,
                        "VersionId": "v1",
                        "VersionStages": [body.get("VersionStage", "AWSCURRENT")],
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def hung_endpoint() -> Iterator[HungEndpoint]:
    endpoint = HungEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture
def trickle_endpoint() -> Iterator[TrickleEndpoint]:
    endpoint = TrickleEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture
def fake_sm() -> Iterator[FakeSecretsManager]:
    fake = FakeSecretsManager()
    try:
        yield fake
    finally:
        fake.close()
