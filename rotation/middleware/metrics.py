"""The step's EMF metrics: its duration, and whether it succeeded, by step and strategy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit

from rotation.metric_names import (
    INVALID_STEP,
    STEP_DIMENSION,
    STEP_DURATION,
    STEP_FAILED,
    STEP_SUCCEEDED,
    STRATEGY_DIMENSION,
)
from rotation.middleware.chain import CallNext, Invocation
from rotation.observability import metrics

__all__ = ["StepMetrics"]

# Powertools' metric set is process-wide: one invocation's dimensions and metrics go out
# together even where several rotators share a process (the CLI, benchmarks).
_metrics_lock = threading.Lock()


class StepMetrics:
    """``StepDuration`` and ``StepSucceeded`` or ``StepFailed`` (:mod:`rotation.metric_names`),
    one EMF document per invocation, dimensioned by step (``invalid`` for an event that did
    not parse) and strategy.

    Parameters
    ----------
    clock:
        Monotonic time, for the duration (the rotator's, so that tests can inject one).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        started = self.clock()
        try:
            outcome = call_next(invocation)
        except Exception as exc:
            failure = exc
        else:
            self._record(invocation, started, succeeded=True)
            return outcome
        self._record(invocation, started, succeeded=False)
        raise failure

    def _record(self, invocation: Invocation, started: float, *, succeeded: bool) -> None:
        step = invocation.event.step.value if invocation.event else INVALID_STEP
        elapsed_ms = (self.clock() - started) * 1000.0
        with _metrics_lock:
            metrics.add_dimension(name=STEP_DIMENSION, value=step)
            metrics.add_dimension(name=STRATEGY_DIMENSION, value=invocation.strategy)
            metrics.add_metric(name=STEP_DURATION, unit=MetricUnit.Milliseconds, value=elapsed_ms)
            metrics.add_metric(
                name=STEP_SUCCEEDED if succeeded else STEP_FAILED, unit=MetricUnit.Count, value=1
            )
            metrics.flush_metrics()
            # flush_metrics keeps the set when POWERTOOLS_METRICS_DISABLED is on; a warm
            # container would then pile up dimensions across invocations.
            metrics.clear_metrics()
