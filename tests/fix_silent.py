"""A server on 127.0.0.1 that accepts connections and never answers, and a frozen deadline:
for proving that every API attempt is bounded by the step's deadline."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from rotation import Deadline
from testbed.moto_server import MotoEndpoint


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers them."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()
        return f"http://{host}:{port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._held.append(conn)
            self.accepted += 1

    def connections(self) -> int:
        """Stop, and count every connection made so far: accepted ones and those still in
        the listen backlog (so the count never depends on the accepting thread's timing)."""
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self._listener.setblocking(False)
            while True:
                try:
                    conn, _ = self._listener.accept()
                except BlockingIOError:
                    break
                self._held.append(conn)
                self.accepted += 1
        return self.accepted

    def close(self) -> None:
        self.connections()
        for conn in self._held:
            conn.close()
        self._listener.close()


@pytest.fixture
def silent(moto_endpoint: MotoEndpoint) -> Iterator[SilentServer]:
    """A silent endpoint. moto_endpoint: only for its fake credentials and region, which
    request signing needs."""
    server = SilentServer()
    yield server
    server.close()


def frozen_deadline(remaining_s: float) -> Deadline:
    """A deadline whose remaining time stays ``remaining_s``: the cut is exact."""
    return Deadline(expires_at=1000.0 + remaining_s, clock=lambda: 1000.0)
