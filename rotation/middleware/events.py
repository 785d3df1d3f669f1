"""The step's rotation events on EventBridge (:mod:`rotation.events`)."""

from __future__ import annotations

from rotation.events import RotationEvents
from rotation.middleware.chain import CallNext, Invocation

__all__ = ["PublishEvents"]


class PublishEvents:
    """``RotationSucceeded`` when the step moved AWSCURRENT, ``RotationStepFailed`` when it
    failed. Publishing never raises and never changes the outcome
    (:class:`rotation.events.RotationEvents`).

    Outside :class:`~rotation.middleware.sanitise.SanitiseErrors`: a failure is published
    complete and scrubbed (and the publisher scrubs the document once more).
    """

    def __init__(self, events: RotationEvents) -> None:
        self.events = events

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        try:
            outcome = call_next(invocation)
        except Exception as exc:
            failure = exc
        else:
            self._succeeded(invocation)
            return outcome
        self.events.step_failed(
            invocation.context,
            secret_arn=invocation.arn or getattr(failure, "secret_id", None),
            step=getattr(failure, "step", None),
            token=getattr(failure, "token", None),
            strategy=invocation.strategy,
            error=failure,
        )
        raise failure

    def _succeeded(self, invocation: Invocation) -> None:
        promoted, event = invocation.promoted, invocation.event
        if promoted is None or invocation.arn is None or event is None:
            return
        self.events.succeeded(
            invocation.context,
            secret_arn=invocation.arn,
            version_id=event.client_request_token,
            previous_version_id=promoted.previous_version_id,
            strategy=invocation.strategy,
            duration_s=promoted.duration_s,
        )
