"""Helpers for the fault tests: a retry sleep that records, and clears a fault on cue."""

from __future__ import annotations

from collections.abc import Callable


class Pauses:
    """A :class:`~rotation.RetryPolicy` ``sleep`` that records each wait instead of sleeping.

    ``on_pause``, when given, runs at the ``at``-th pause: the fault clears while the
    rotation waits, at a point fixed by the code under test rather than by a clock.
    ``sleep``, when given, also waits for real (for a fault that takes real time to clear,
    such as a replica's apply delay).
    """

    def __init__(
        self,
        on_pause: Callable[[], None] | None = None,
        *,
        at: int = 1,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.waits: list[float] = []
        self.on_pause = on_pause
        self.at = at
        self.sleep = sleep

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.on_pause is not None and len(self.waits) == self.at:
            self.on_pause()
        if self.sleep is not None:
            self.sleep(seconds)
