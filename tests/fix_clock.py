"""A fake monotonic clock: tests age caches and exhaust timeouts without sleeping."""

from __future__ import annotations

import threading


class FakeClock:
    """Call it for the time; ``sleep`` records the wait and moves the time on by it.

    Shared by threads, each ``sleep`` moves everyone's time: fine for counting what
    happens within a simulated minute, which is what the tests do with it.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
