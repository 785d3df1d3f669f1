"""An HTTP proxy on 127.0.0.1 in front of moto that can lose answers.

For proving what a caller does when its request arrived but the answer did not: the proxy
forwards the request to moto (so the call takes effect there) and then closes the
connection without answering, or holds it open until the caller gives up. It can also answer
in moto's place without forwarding (an error answer: the request certainly had no effect).
"""

from __future__ import annotations

import http.client
import json
import select
import threading
import urllib.parse
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testbed.moto_server import MotoEndpoint

# What the proxy does with the next request of an operation, in order; then "forward".
FORWARD = "forward"  # forward, and relay moto's answer
LOSE = "lose"  # forward, read moto's answer, close the connection without answering
HANG = "hang"  # forward, read moto's answer, answer nothing until the caller hangs up
THROTTLE = "throttle"  # answer 400 ThrottlingException, do not forward
FAIL_ENTRY = "fail-entry"  # answer PutEvents with its entry failed (throttled), do not forward


class LossyProxy:
    """Forwards to ``upstream``; ``script(operation, *actions)`` sets what happens to the
    next requests of ``operation`` (the ``X-Amz-Target`` suffix, e.g. ``PutEvents``)."""

    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._scripts: dict[str, deque[str]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._stop = threading.Event()
        self.received: list[str] = []  # every operation, in arrival order
        self.forwarded: list[str] = []  # the operations moto saw
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test's own output only

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, operation: str, *actions: str) -> None:
        with self._lock:
            self._scripts.setdefault(operation, deque()).extend(actions)

    def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Until every request that arrived is handled (forwarded, answered or dropped): the
        caller may give up on an answer before the proxy has forwarded its request."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s):
                raise TimeoutError(f"the proxy still handles {self._in_flight} request(s)")

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    # -- one request ----------------------------------------------------------------------

    def _next_action(self, operation: str) -> str:
        with self._lock:
            self.received.append(operation)
            queue = self._scripts.get(operation)
            return queue.popleft() if queue else FORWARD

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        with self._idle:
            self._in_flight += 1
        try:
            self._handle_one(handler)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _handle_one(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
        operation = handler.headers.get("X-Amz-Target", "").rpartition(".")[2]
        action = self._next_action(operation)
        if action == THROTTLE:
            error = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            self._answer(handler, 400, error)
            return
        if action == FAIL_ENTRY:
            failed = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
            self._answer(handler, 200, {"FailedEntryCount": 1, "Entries": [failed]})
            return
        status, headers, answer = self._forward(handler, body)
        with self._lock:
            self.forwarded.append(operation)
        if action == LOSE:
            handler.close_connection = True
            return
        if action == HANG:
            self._hold(handler)
            handler.close_connection = True
            return
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def _forward(
        self, handler: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=10)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "connection"}
            connection.request("POST", handler.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _hold(self, handler: BaseHTTPRequestHandler) -> None:
        """Until the caller closes its end (its read timeout) or the proxy stops."""
        sock = handler.connection
        while not self._stop.is_set():
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable and not sock.recv(1, 0):
                return

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, status: int, document: dict[str, Any]) -> None:
        answer = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/x-amz-json-1.1")
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)


@pytest.fixture
def lossy_proxy(moto_endpoint: MotoEndpoint) -> Iterator[LossyProxy]:
    proxy = LossyProxy(moto_endpoint.url)
    yield proxy
    proxy.close()
