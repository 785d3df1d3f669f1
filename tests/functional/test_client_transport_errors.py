"""Which failures on the way to Secrets Manager count as transient (a value read before is
served meanwhile) and which answers of the secrets extension mean "no such version".

- botocore's ConnectionError family (a proxy that refuses, a TLS failure on the way) and
  HTTPClientError (a connection reset in the middle of the answer) are failures of the
  moment, typed SecretsManagerUnavailableError like a timeout or a 5xx;
- the extension's 4xx answers for AWSPENDING / AWSPREVIOUS mean "no such version" only
  for ResourceNotFoundException: an AccessDenied is raised, typed, not read as "none".

Local sockets play the misbehaving endpoints (they fake AWS, never PostgreSQL).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from rotation_client import ExtensionSource, SecretsManagerSource
from rotation_contract.errors import SecretAccessError, SecretsManagerUnavailableError
from tests.fix_sm_endpoint import FakeSecretsManager

pytestmark = pytest.mark.functional


def _client(endpoint_url: str, **config: Any) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _ResetMidAnswer:
    """Answers the headers and part of the body, then resets the connection."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                    b'Content-Length: 200\r\n\r\n{"SecretString": "'
                )
                # SO_LINGER 0: close() sends a reset, not an orderly end.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self._sock.close()
        self._thread.join(5)


@pytest.fixture
def reset_mid_answer() -> Iterator[_ResetMidAnswer]:
    endpoint = _ResetMidAnswer()
    try:
        yield endpoint
    finally:
        endpoint.close()


def test_a_proxy_that_refuses_is_transient(fake_sm: FakeSecretsManager) -> None:
    proxy = f"http://127.0.0.1:{_closed_port()}"
    source = SecretsManagerSource(_client(fake_sm.url, proxies={"http": proxy}))
    with pytest.raises(SecretsManagerUnavailableError, match="proxy"):
        source.get("app/db", "AWSCURRENT", timeout_s=5)


def test_a_tls_failure_on_the_way_is_transient(fake_sm: FakeSecretsManager) -> None:
    # TLS spoken to a plain-HTTP server: the handshake fails (botocore's SSLError).
    source = SecretsManagerSource(_client(fake_sm.url.replace("http://", "https://")))
    with pytest.raises(SecretsManagerUnavailableError, match="SSL"):
        source.get("app/db", "AWSCURRENT", timeout_s=5)


def test_a_connection_reset_mid_answer_is_transient(reset_mid_answer: _ResetMidAnswer) -> None:
    """Depending on when the reset lands, botocore says the connection closed, or parses
    the half body it got as an empty answer: not a secret without a value (a format error,
    raised for good), but an answer cut short. Transient, either way."""
    source = SecretsManagerSource(_client(reset_mid_answer.url))
    with pytest.raises(SecretsManagerUnavailableError):  # either way it ends
        source.get("app/db", "AWSCURRENT", timeout_s=5)


class _Extension(BaseHTTPRequestHandler):
    """The extension's endpoint, answering per stage: (status, body)."""

    answers: dict[str, tuple[int, bytes]] = {}  # noqa: RUF012  # set per test

    def do_GET(self) -> None:
        stage = self.path.split("versionStage=")[1].split("&")[0]
        status, body = type(self).answers[stage]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def extension() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Extension)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _aws_error(code: str) -> bytes:
    return json.dumps({"__type": code, "message": f"{code} (from the test)"}).encode()


def test_the_extensions_access_denied_for_awspending_is_raised(extension: str) -> None:
    _Extension.answers = {"AWSPENDING": (400, _aws_error("AccessDeniedException"))}
    source = ExtensionSource(extension, "token")
    with pytest.raises(SecretAccessError, match="AccessDeniedException"):
        source.get("app/db", "AWSPENDING", timeout_s=5)


@pytest.mark.parametrize(
    "answer",
    [(400, _aws_error("ResourceNotFoundException")), (404, b"")],
    ids=["400-ResourceNotFound", "404-no-code"],
)
def test_the_extensions_not_found_for_awsprevious_is_no_version(
    extension: str, answer: tuple[int, bytes]
) -> None:
    _Extension.answers = {"AWSPREVIOUS": answer}
    assert ExtensionSource(extension, "token").get("app/db", "AWSPREVIOUS", timeout_s=5) is None
