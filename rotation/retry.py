"""Every retry policy of the framework, composed from tenacity pieces.

A step must fail with its own clear message *before* Lambda kills the invocation (a killed
invocation leaves only "Task timed out" in the logs). So every policy is bounded twice: by a
number of attempts, and by the time the Lambda has left minus a safety margin.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity
from tenacity import (
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    wait_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from rotation.observability import logger

__all__ = [
    "DEFAULT_SAFETY_MARGIN_S",
    "PROGRESS_LOGGER",
    "Deadline",
    "RetryPolicy",
    "call_with_retries",
]

T = TypeVar("T")

# Time kept back from the Lambda's remaining time: enough to log, emit metrics and raise.
DEFAULT_SAFETY_MARGIN_S = 2.0
# Time one more attempt needs at the least (libpq's smallest connect timeout is 2 s,
# but a refused or answered connection takes milliseconds).
MIN_ATTEMPT_S = 1.0
# With no Lambda context (tests, the local CLI) a step gets this long.
DEFAULT_BUDGET_S = 60.0


@dataclass(frozen=True)
class Deadline:
    """The moment a step must have finished by, on a monotonic clock."""

    expires_at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def from_context(
        cls,
        context: object,
        *,
        margin_s: float = DEFAULT_SAFETY_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """The Lambda's remaining time minus ``margin_s``; a default budget without a context."""
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        budget = remaining_ms() / 1000.0 - margin_s if callable(remaining_ms) else DEFAULT_BUDGET_S
        return cls(expires_at=clock() + max(budget, 0.0), clock=clock)

    @classmethod
    def in_seconds(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(expires_at=clock() + seconds, clock=clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(self.expires_at - self.clock(), 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry one kind of transient failure.

    ``sleep`` is injectable so tests can record the waits instead of sleeping, and ``rng``
    (a float in [0, 1), scaled by ``jitter_s``) so they can pin the jitter.
    """

    attempts: int = 5
    initial_wait_s: float = 0.2
    max_wait_s: float = 4.0
    jitter_s: float = 0.3
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)


class _WaitJitter(wait_base):
    """tenacity's ``wait_random(0, max_s)``, drawing from an injectable source."""

    def __init__(self, max_s: float, rng: Callable[[], float]) -> None:
        self.max_s = max_s
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.rng() * self.max_s


# For an operator watching a rotation run (the `rotation` command on a terminal shows it as
# a status line): a DEBUG record as each attempt starts and before each wait, with what is
# awaited, the attempt and the time left. Not propagated: never part of the function's log,
# and nothing is formatted unless a handler asked for DEBUG. No secret: names and numbers.
PROGRESS_LOGGER = "rotation.progress"
_progress = logging.getLogger(PROGRESS_LOGGER)
_progress.propagate = False


def _report_attempt(
    what: str, policy: RetryPolicy, deadline: Deadline
) -> Callable[[tenacity.RetryCallState], None]:
    def before(state: tenacity.RetryCallState) -> None:
        if _progress.isEnabledFor(logging.DEBUG):
            _progress.debug(
                "%s: attempt %d",
                what,
                state.attempt_number,
                extra={
                    "what": what,
                    "attempt": state.attempt_number,
                    "attempts": policy.attempts,
                    "time_left_s": deadline.remaining(),
                },
            )

    return before


def _log_before_sleep(
    what: str, policy: RetryPolicy, deadline: Deadline
) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        # The exception's class only: a message could carry a secret value.
        logger.warning(
            "retrying %s after %s (attempt %d, next in %.2fs)",
            what,
            type(exc).__name__,
            state.attempt_number,
            state.upcoming_sleep,
        )
        if _progress.isEnabledFor(logging.DEBUG):
            _progress.debug(
                "%s: retrying",
                what,
                extra={
                    "what": what,
                    "attempt": state.attempt_number,
                    "attempts": policy.attempts,
                    "time_left_s": deadline.remaining(),
                    "failed_with": type(exc).__name__,
                    "retry_in_s": state.upcoming_sleep,
                },
            )

    return before_sleep


class _StopNearDeadline(stop_base):
    """Stop when the wait plus one more attempt would not fit before the deadline."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        upcoming = retry_state.upcoming_sleep or 0.0
        return self.deadline.remaining() < upcoming + MIN_ATTEMPT_S


def call_with_retries(
    fn: Callable[[], T],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    deadline: Deadline,
    policy: RetryPolicy | None = None,
    what: str,
) -> T:
    """Call ``fn``, retrying on ``retry_on`` with exponential backoff and jitter.

    Stops after ``policy.attempts`` or before a wait would cross ``deadline``, whichever
    comes first, and then re-raises the last error itself (never tenacity's RetryError).
    Any other exception propagates at once.
    """
    policy = policy or RetryPolicy()

    retrying = tenacity.Retrying(
        stop=stop_any(
            stop_after_attempt(policy.attempts),
            stop_before_delay(deadline.remaining()),
            _StopNearDeadline(deadline),
        ),
        # Exponential backoff plus jitter (wait_exponential_jitter's "initial" was renamed
        # in tenacity 9; this spelling works across the versions Lambda users pin).
        wait=wait_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s)
        + _WaitJitter(policy.jitter_s, policy.rng),
        retry=retry_if_exception_type(retry_on),
        sleep=policy.sleep,
        before=_report_attempt(what, policy, deadline),
        before_sleep=_log_before_sleep(what, policy, deadline),
        reraise=True,
    )
    return retrying(fn)
