"""Cross-cutting concerns as layers around the rotation step (Vault's database middleware).

:class:`~rotation.Rotator` holds the label state machine and nothing else; what every step
also needs is a layer around it, all of the same interface (:class:`StepMiddleware`: an
:class:`Invocation` and ``call_next``, returning the outcome word). The Lambda entrypoints
run :func:`lambda_stack`, outermost first:

* :class:`LogKeys`: the secret, step, token, strategy and request id on every log line;
* :class:`PublishEvents`: ``RotationSucceeded`` / ``RotationStepFailed`` on EventBridge;
* :class:`LogOutcome`: the ``rotation step finished`` / ``failed`` line;
* :class:`StepMetrics`: the EMF step metrics;
* :class:`SanitiseErrors`: the raised error scrubbed, contextualised, without driver errors.

The order is the log's order: the error is finished before anything reports it; the metric,
then the outcome line, then the event; every line carries the keys.

:class:`SanitiseErrors` is not a layer to choose: :class:`~rotation.Rotator` always runs it
innermost (``Rotator.layers``), whatever its ``middleware`` says, so that no layer ever
sees an unscrubbed error or a database driver's.

Example
-------
A layer of one's own (a trace span, say) goes around the same interface::

    def traced(invocation: Invocation, call_next: CallNext) -> str:
        with tracer.span(invocation.strategy):
            return call_next(invocation)

    rotator = Rotator(strategy, store, middleware=(*lambda_stack(), traced))
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

# The module, not its class: a name this package binds is its API (tests/unit/test_exports.py).
import rotation.events
from rotation.middleware.chain import CallNext, Invocation, Promotion, StepMiddleware, compose
from rotation.middleware.events import PublishEvents
from rotation.middleware.logs import LogKeys, LogOutcome
from rotation.middleware.metrics import StepMetrics
from rotation.middleware.sanitise import SanitiseErrors

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CallNext",
    "Invocation",
    "LogKeys",
    "LogOutcome",
    "Promotion",
    "PublishEvents",
    "SanitiseErrors",
    "StepMetrics",
    "StepMiddleware",
    "compose",
    "lambda_stack",
]


def lambda_stack(
    *,
    events: rotation.events.RotationEvents | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[StepMiddleware, ...]:
    """The layers of a rotation function, outermost first (see the module's docstring).

    Parameters
    ----------
    events:
        Where rotation events go; by default ``EVENT_BUS_NAME`` (unset: none).
    clock:
        Monotonic time for the step's duration metric.
    """
    return (
        LogKeys(),
        PublishEvents(events if events is not None else rotation.events.RotationEvents.from_env()),
        LogOutcome(),
        StepMetrics(clock),
        SanitiseErrors(),
    )
