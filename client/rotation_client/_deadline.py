"""Wall-clock deadlines for the client's own network waits.

A socket timeout bounds one ``recv``, not a response: an endpoint (or a proxy) that sends
one byte a second keeps every ``recv`` under its timeout and a read alive forever. Two
mechanisms end such waits when the caller's time does:

- :func:`shutting_down_at`: the connections a request uses in this block are registered
  (:func:`watch`), and a timer shuts their sockets down at the deadline, so that the
  blocked ``recv`` returns at once in the caller's own thread; no thread outlives the
  block but the timer, which is cancelled on the way out;
- :class:`SingleFlight`: a call the client cannot reach into (botocore building a client,
  or fetching the application's AWS credentials from the container endpoint or STS) runs
  in one background thread at a time per owner, and each caller waits for it within its
  own time. A caller that gives up leaves it running (its own timeouts end it), and the
  next caller waits for that same call instead of starting another: at most one such
  thread per owner, however many callers time out.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

__all__ = ["Deadline", "SingleFlight", "shutting_down_at", "watch"]

T = TypeVar("T")


class Deadline:
    """The connections and sockets in use before a deadline, and whether it has passed
    (they were shut down)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.expires_at = time.monotonic() + timeout_s
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._fired = False

    @property
    def fired(self) -> bool:
        """Whether the deadline passed while the block ran (its sockets were shut down)."""
        with self._lock:
            return self._fired

    def add(self, connection: Any) -> None:
        """Watch ``connection``: a socket, or anything with a ``sock`` attribute (set once
        connected: http.client's and urllib3's connections, read when the time is up); shut
        down at once if the time is up already."""
        with self._lock:
            self._connections.append(connection)
            fired = self._fired
        if fired:
            _shut_down(connection)

    def fire(self) -> None:
        with self._lock:
            self._fired = True
            connections = list(self._connections)
        for connection in connections:
            _shut_down(connection)


def _shut_down(connection: Any) -> None:
    sock = (
        connection if isinstance(connection, socket.socket) else getattr(connection, "sock", None)
    )
    if sock is None:
        return  # not connected yet: its connect timeout is cut to the time left already
    with contextlib.suppress(OSError):  # closed meanwhile
        sock.shutdown(socket.SHUT_RDWR)


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "rotation_client_deadline", default=None
)


@contextmanager
def shutting_down_at(timeout_s: float) -> Iterator[Deadline]:
    """A block whose watched connections (:func:`watch`) are shut down ``timeout_s``
    seconds from now; the deadline says whether that happened."""
    deadline = Deadline(timeout_s)
    timer = threading.Timer(max(timeout_s, 0.0), deadline.fire)
    timer.daemon = True
    timer.name = "rotation-client-deadline"
    token = _current.set(deadline)
    timer.start()
    try:
        yield deadline
    finally:
        timer.cancel()
        _current.reset(token)


def watch(connection: Any) -> None:
    """Have the current :func:`shutting_down_at` block (if any) shut ``connection`` down at
    its deadline."""
    deadline = _current.get()
    if deadline is not None:
        deadline.add(connection)


class SingleFlight(Generic[T]):
    """One call at a time in a background thread, waited for by each caller within its
    own time."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._running: Future[T] | None = None

    def run(self, call: Callable[[], T], timeout_s: float) -> T:
        """``call()``'s result, or that of the same call already running.

        Raises
        ------
        TimeoutError
            It did not end within ``timeout_s`` (it goes on in its thread).
        """
        with self._lock:
            running = self._running
            if running is None:
                running = self._running = Future()
                worker = threading.Thread(target=self._work, args=(running, call), name=self._name)
                worker.daemon = True
                worker.start()
        try:
            return running.result(timeout=max(timeout_s, 0.0))
        except FutureTimeout:
            raise TimeoutError(f"{self._name}: no answer within {timeout_s:.1f} s") from None

    def _work(self, future: Future[T], call: Callable[[], T]) -> None:
        try:
            result = call()
        except BaseException as exc:  # handed to the waiting callers
            with self._lock:
                self._running = None
            future.set_exception(exc)
            return
        with self._lock:
            self._running = None
        future.set_result(result)
