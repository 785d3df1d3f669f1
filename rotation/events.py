"""Rotation events on EventBridge: a signal consumers can act on without waiting out a TTL.

With ``EVENT_BUS_NAME`` set, the dispatcher publishes

* ``RotationSucceeded`` once per rotation, when finishSecret has moved AWSCURRENT: the
  secret's ARN, the new and the previous version ids, the strategy and how long the
  rotation took (from createSecret's stored value to finishSecret), so that consumers can
  refresh their caches at once;
* ``RotationStepFailed`` when a step fails: the secret's ARN, the step, the token, the
  error's class and its message (already scrubbed by the dispatcher), so that someone can
  be paged.

Never a secret value: details carry ids, names, numbers and the scrubbed message, and the
message is scrubbed once more here. Publishing never changes a step's outcome: a
PutEvents call that fails (or that EventBridge answers with a failed entry) is logged and
counted (``EventsNotPublished``), and the step succeeds or fails exactly as it did. Each
call is bounded by the Lambda's remaining time, like every other API call.

At most once. A PutEvents is retried only where the request certainly did not arrive: no
connection could be made, EventBridge answered with a throttling or internal error, or it
answered with the entry failed for such a reason. Never after a read timeout or a
connection closed before the answer: the event may have been delivered, and a second
request would deliver it again. Each detail also carries ``idempotencyId``, derived from
what the event is about (never random), so that a consumer can recognise the same event
should it ever see it twice (a hand-made re-publish, a future at-least-once path).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rotation.clients import call_api, events_client
from rotation.config import event_bus_name
from rotation.errors import RotationError
from rotation.metric_names import DETAIL_TYPE_DIMENSION, EVENTS_NOT_PUBLISHED
from rotation.observability import logger, publish_count, scrubber
from rotation.retry import Deadline, RetryPolicy
from rotation_contract.aws_errors import error_code, error_message

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

__all__ = [
    "NOT_PUBLISHED_METRIC",
    "ROTATION_STEP_FAILED",
    "ROTATION_SUCCEEDED",
    "SOURCE",
    "RotationEvents",
]

SOURCE = "pg-secrets-rotation"
ROTATION_SUCCEEDED = "RotationSucceeded"
ROTATION_STEP_FAILED = "RotationStepFailed"
NOT_PUBLISHED_METRIC = EVENTS_NOT_PUBLISHED
# A publish may use the Lambda's remaining time minus this margin, and never more than
# _BUDGET_S: the step's own work is done, and a failed step's event is worth the time the
# dispatcher's safety margin kept back (which is why this is not the step's deadline).
_MARGIN_S = 0.5
_BUDGET_S = 5.0
_RETRIES = RetryPolicy(attempts=2, initial_wait_s=0.1, max_wait_s=0.5, jitter_s=0.1)
# A failed entry with one of these codes was not put: sending it again cannot duplicate it.
_RETRIED_ENTRY_CODES = frozenset({"ThrottlingException", "InternalFailure"})
# The namespace of idempotency ids (uuid5): fixed, so that the id of an event is the same in
# every container and every release.
_ID_NAMESPACE = uuid.UUID("6f0f3c1e-4d0b-5b8e-9a51-2d3c7b1f0a64")


class _PublishError(RotationError):
    """Internal: PutEvents did not go through (never leaves this module)."""


class RotationEvents:
    """Publishes rotation events to one bus, or does nothing when ``bus`` is None.

    Parameters
    ----------
    bus:
        The event bus's name or ARN; None (``EVENT_BUS_NAME`` unset or empty): off.
    client:
        An EventBridge client; by default built on the first event
        (:func:`rotation.clients.events_client`), then reused by the container.
    clock:
        Monotonic time, for each publish's deadline.
    """

    def __init__(
        self,
        bus: str | None,
        *,
        client: EventBridgeClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.bus = bus
        self._client = client
        self._lock = threading.Lock()
        self._clock = clock
        self.retry_policy = retry_policy or _RETRIES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RotationEvents:
        """From ``EVENT_BUS_NAME`` (:func:`rotation.config.event_bus_name`)."""
        return cls(event_bus_name(env))

    @property
    def enabled(self) -> bool:
        return self.bus is not None

    def succeeded(
        self,
        context: object,
        *,
        secret_arn: str,
        version_id: str,
        previous_version_id: str | None,
        strategy: str,
        duration_s: float | None,
    ) -> None:
        """``RotationSucceeded``. Never raises."""
        self._publish(
            context,
            ROTATION_SUCCEEDED,
            secret_arn,
            {
                # One rotation (a token) succeeds at most once.
                "idempotencyId": _idempotency_id(ROTATION_SUCCEEDED, secret_arn, version_id),
                "secretArn": secret_arn,
                "versionId": version_id,
                "previousVersionId": previous_version_id,
                "strategy": strategy,
                "durationSeconds": None if duration_s is None else round(duration_s, 3),
            },
        )

    def step_failed(
        self,
        context: object,
        *,
        secret_arn: str | None,
        step: str | None,
        token: str | None,
        strategy: str,
        error: BaseException,
    ) -> None:
        """``RotationStepFailed``. Never raises."""
        self._publish(
            context,
            ROTATION_STEP_FAILED,
            secret_arn,
            {
                # One invocation fails at most once; a re-attempt is a new invocation.
                "idempotencyId": _idempotency_id(
                    ROTATION_STEP_FAILED,
                    secret_arn,
                    step,
                    token,
                    getattr(context, "aws_request_id", None),
                ),
                "secretArn": secret_arn,
                "step": step,
                "token": token,
                "strategy": strategy,
                "errorClass": type(error).__name__,
                "message": str(error),
            },
        )

    # -- plumbing -----------------------------------------------------------------------

    def _client_for_events(self) -> EventBridgeClient:
        with self._lock:
            if self._client is None:
                self._client = events_client()
            return self._client

    def _deadline(self, context: object) -> Deadline:
        own = Deadline.from_context(context, margin_s=_MARGIN_S, clock=self._clock)
        return Deadline(min(own.expires_at, self._clock() + _BUDGET_S), clock=self._clock)

    def _publish(
        self, context: object, detail_type: str, secret_arn: str | None, detail: dict[str, Any]
    ) -> None:
        if self.bus is None:
            return
        try:
            # A second pass over the whole document: nothing a secret's value could reach
            # gets out, whatever a message quoted.
            document = scrubber.scrub_value(detail)
            entry: PutEventsRequestEntryTypeDef = {
                "Source": SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(document, sort_keys=True, default=str),
                "EventBusName": self.bus,
            }
            if secret_arn and secret_arn.startswith("arn:"):
                entry["Resources"] = [secret_arn]
            client = self._client_for_events()
            response = call_api(
                lambda: _put_entry(client, entry),
                what="PutEvents",
                service="EventBridge",
                deadline=self._deadline(context),
                policy=self.retry_policy,
                error=_PublishError,
                at_most_once=True,
            )
            if response.get("FailedEntryCount"):
                failed = response.get("Entries", [{}])[0]
                raise _PublishError(
                    f"EventBridge refused the entry: {failed.get('ErrorCode', '?')}: "
                    f"{failed.get('ErrorMessage', '')}".rstrip(": ")
                )
        except Exception as exc:  # publishing never changes the step's outcome
            self._not_published(detail_type, exc)
            return
        logger.info("published a rotation event", extra={"detail_type": detail_type})

    def _not_published(self, detail_type: str, exc: Exception) -> None:
        code = error_code(exc) or error_code(exc.__cause__ or exc)
        if isinstance(exc, RotationError):
            cause = exc.problem
        else:  # AWS messages name resources and actions, never secret values
            cause = error_message(exc) or type(exc).__name__
        logger.warning(
            "could not publish the rotation event; the step's outcome stands",
            extra={
                "detail_type": detail_type,
                "event_bus": self.bus,
                "error_type": type(exc).__name__,
                "error_code": code or None,
                "cause": cause,
                "fix": "check that the bus exists in this account and region and that the "
                "function's role may events:PutEvents on it (the template's EventBusName)",
            },
        )
        try:
            publish_count(NOT_PUBLISHED_METRIC, 1, {DETAIL_TYPE_DIMENSION: detail_type})
        except Exception:  # a metric must not fail the step either
            logger.warning("could not emit the EventsNotPublished metric")


def _put_entry(client: EventBridgeClient, entry: PutEventsRequestEntryTypeDef) -> Any:
    """One PutEvents of one entry. An entry EventBridge failed for throttling or an
    internal error was not put: it is raised as that error answer, which call_api retries."""
    response = client.put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        failed = response.get("Entries", [{}])[0]
        code = failed.get("ErrorCode", "")
        if code in _RETRIED_ENTRY_CODES:
            raise ClientError(
                {"Error": {"Code": code, "Message": failed.get("ErrorMessage", "")}}, "PutEvents"
            )
    return response


def _idempotency_id(*parts: str | None) -> str:
    """The same id for the same event, whichever container sends it (no value in it)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(part or "" for part in parts)))
