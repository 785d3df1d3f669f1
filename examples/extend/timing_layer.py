"""A middleware layer of one's own: each step's name, outcome and duration, kept in a list
(a stand-in for a trace span or a metric of your own), around the default layers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rotation import Rotator, SecretStore
from rotation.middleware import CallNext, Invocation, lambda_stack
from rotation.strategy import RotationStrategy


@dataclass
class StepTimer:
    seen: list[tuple[str, str, float]] = field(default_factory=list)

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        started = time.monotonic()
        outcome = call_next(invocation)  # let an exception go through untouched
        step = invocation.event.step.value if invocation.event else "?"
        self.seen.append((step, outcome, time.monotonic() - started))
        return outcome


def timed_rotator(strategy: RotationStrategy, store: SecretStore, timer: StepTimer) -> Rotator:
    # Outermost first: the timer sees the outcome after the default layers (logs, events,
    # metrics, sanitised errors) have done their work.
    return Rotator(strategy, store, middleware=(timer, *lambda_stack()))
