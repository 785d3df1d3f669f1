"""How long :meth:`~rotation_client.RotatingCredentials.connect` keeps trying, and how often
it asks Secrets Manager again: the client's own small policies (the Lambda side's retries
live in :mod:`rotation.retry`, which an application does not load).

Both are plain data; the time they act on comes from an injectable clock and ``sleep``, so
tests run them on a fake clock without sleeping.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ConnectRetry", "RefreshPolicy", "check_budget"]


def check_budget(value: object, name: str, *, where: str = "ConnectRetry") -> None:
    """Refuse a budget or wait that is not a number of seconds >= 0 (NaN, negative, a
    string): every comparison with NaN is false, so it would neither bound nor end.

    Raises
    ------
    ValueError
        Naming the parameter, the value and the fix.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and not math.isnan(value) and value >= 0:  # type: ignore[operator, arg-type]
        return
    raise ValueError(
        f"{where}: {name}={value!r} is not a number of seconds >= 0; give a finite "
        "number of seconds (e.g. 15), or math.inf for no bound"
    )


@dataclass(frozen=True)
class ConnectRetry:
    """How hard one ``connect()`` tries before raising.

    A round tries each labelled credential once (see
    :class:`~rotation_client.RotatingCredentials`). When every one was refused, or the server
    took no login (starting up, too many connections, unreachable), the next round starts
    after an exponential backoff with jitter. It gives up when ``timeout_s`` has passed,
    or, for refusals, after ``rounds`` rounds: a password that no label fixes is a fact, and
    waiting longer only holds the caller.

    Parameters
    ----------
    timeout_s:
        The caller's budget for one ``connect()``, retries and each attempt's
        ``connect_timeout`` included.
    rounds:
        At most this many rounds in which every credential was refused.
    initial_wait_s, max_wait_s:
        The first wait, doubled each round up to ``max_wait_s``.
    jitter:
        Each wait is stretched by up to this fraction, drawn from ``rng``, so that the
        processes of a fleet, refused at the same moment, do not retry in step.
    sleep, rng:
        Injectable for tests (``sleep=fake_clock.advance``, ``rng=lambda: 0.0``).
    """

    timeout_s: float = 15.0
    rounds: int = 6
    initial_wait_s: float = 0.2
    max_wait_s: float = 2.0
    jitter: float = 0.25
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        for name in ("timeout_s", "initial_wait_s", "max_wait_s", "jitter"):
            check_budget(getattr(self, name), name)
        if not isinstance(self.rounds, int) or isinstance(self.rounds, bool) or self.rounds < 1:
            raise ValueError(
                f"ConnectRetry: rounds={self.rounds!r} is not a whole number >= 1; give the "
                "number of rounds of refused logins to try (e.g. 6)"
            )

    def wait_before(self, round_number: int) -> float:
        """Seconds to wait before round ``round_number`` (2 or more)."""
        exponent = max(round_number - 2, 0)
        base = min(self.max_wait_s, self.initial_wait_s * 2.0**exponent)
        return base * (1.0 + self.jitter * self.rng())


@dataclass(frozen=True)
class RefreshPolicy:
    """How often a process asks Secrets Manager past its cache for one label of one secret.

    An authentication failure asks for a fresh read (a *forced refresh*). In a process
    where many connections fail at once (a rotation hits every instance of an application
    at the same moment), the first one asks and the others take its answer: no second
    forced read of that label happens within ``min_interval_s`` of the last. While the
    refreshes bring nothing new (every credential refused: a password changed outside
    rotation), the interval doubles up to ``max_interval_s``; a new value resets it. A
    failed read (throttled, denied, unreachable) is remembered for the same interval and
    raised again without asking (a short negative cache).

    With the defaults and every credential refused, a process makes at most 7 forced reads
    per label in its first minute (e.g. at 0, 1, 3, 7, 15 and 31 s) and then one a minute,
    whatever the number of its threads and connections.
    """

    min_interval_s: float = 1.0
    max_interval_s: float = 60.0

    def after(self, interval_s: float, *, new: bool) -> float:
        """The interval after a forced read that brought a new value (or not)."""
        if new:
            return self.min_interval_s
        return min(max(self.min_interval_s, 2 * interval_s), self.max_interval_s)
