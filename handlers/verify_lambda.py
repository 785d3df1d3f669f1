"""The rotation functions' answer to a verification event (:mod:`rotation.verify_event`).

An EventBridge schedule invokes the function with ``{"Action": "VerifyCredentials",
"SecretIds": [...]}``; each secret is checked as ``rotation verify`` checks it
(:mod:`handlers.verify`), with the function's own Secrets Manager client, cache and
connector, and for each one:

- a log line with the secret, its state and the problem (never a value: the logger scrubs
  every value this container has read);
- the metric ``CredentialValid`` (1 valid, 0 drift, unreachable or misconfigured) in the
  ``SecretsRotation`` namespace, once with the dimension ``Secret`` (the secret's name) and
  once with only ``service``, so that one alarm covers every secret while a dashboard still
  tells them apart. A secret whose verdict says nothing about its password (``rotating``: a
  rotation in progress; ``not-checked``: no time left for it) publishes ``CredentialNotChecked``
  (1) instead, with the same dimensions: no false drift alarm, and still visible.

The invocation returns a summary and does not fail for what it finds: an asynchronous
invocation that fails is retried by Lambda, which would only check the same secrets again.
The alarm on ``CredentialValid`` is the signal.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from handlers.pg_connect import PostgresConnector
from handlers.verify import UNDECIDED, CredentialState, Verification, Verifier, summary
from rotation.entrypoint import LambdaEntrypoint
from rotation.errors import EventError
from rotation.metric_names import CREDENTIAL_NOT_CHECKED, CREDENTIAL_VALID, SECRET_DIMENSION
from rotation.observability import logger, metrics
from rotation.retry import DEFAULT_SAFETY_MARGIN_S, Deadline
from rotation.verify_event import VERIFY_ACTION, parse_verify_event

__all__ = ["METRIC", "NOT_CHECKED_METRIC", "PER_SECRET_S", "handle_verification"]

METRIC = CREDENTIAL_VALID
NOT_CHECKED_METRIC = CREDENTIAL_NOT_CHECKED
# Each secret gets at most this long (less when the invocation has less left), so that one
# unreachable database does not use up the time of every secret after it.
PER_SECRET_S = 15.0
_lock = threading.Lock()


def _publish(result: Verification) -> None:
    if result.state in UNDECIDED:
        name, value = NOT_CHECKED_METRIC, 1.0
    else:
        name, value = METRIC, 1.0 if result.valid else 0.0
    with _lock:
        for dimension in (result.name or result.secret, None):
            if dimension is not None:
                metrics.add_dimension(name=SECRET_DIMENSION, value=dimension)
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            metrics.flush_metrics()
            # flush_metrics keeps the set when POWERTOOLS_METRICS_DISABLED is on.
            metrics.clear_metrics()


def _not_checked(secret_id: str, strategy: str) -> Verification:
    return Verification(
        secret_id,
        None,
        strategy,
        CredentialState.NOT_CHECKED,
        problem="not checked: the invocation's time ran out before this secret's turn",
    )


def handle_verification(
    entrypoint: LambdaEntrypoint, event: object, context: object, *, strategy: str
) -> dict[str, Any]:
    """Check every secret the event names; returns the summary.

    Raises
    ------
    EventError
        When the event is not a well-formed verification event (nothing was checked).
    """
    try:
        request = parse_verify_event(event)
    except EventError as exc:
        logger.error("verification event refused: %s", exc, extra={"error_type": "EventError"})
        raise
    rotator = entrypoint.rotator
    connector = getattr(rotator.strategy, "connector", None)
    if not isinstance(connector, PostgresConnector):
        connector = PostgresConnector()
    verifier = Verifier(rotator.store, connector, strategy)
    invocation = Deadline.from_context(context, margin_s=DEFAULT_SAFETY_MARGIN_S)
    results = []
    for secret_id in request.secret_ids:
        left = invocation.remaining()
        if left < 1.0:
            result = _not_checked(secret_id, strategy)
        else:
            result = verifier.verify(secret_id, Deadline.in_seconds(min(PER_SECRET_S, left)))
        _publish(result)
        log = logger.info if result.valid else logger.warning
        log(
            "credential check: %s",
            result.state.value,
            extra={
                "secret_arn": result.secret,
                "credential_state": result.state.value,
                "problem": result.problem,
                "fix": result.fix if not result.valid else "",
                "function_request_id": getattr(context, "aws_request_id", None),
            },
        )
        results.append(result)
    counts = summary(results)
    logger.info("verification finished", extra={"counts": counts})
    return {
        "Action": VERIFY_ACTION,
        "strategy": strategy,
        "valid": all(r.valid for r in results),
        "counts": dict(counts),
        "results": [
            {"secret": r.secret, "name": r.name, "state": r.state.value, "problem": r.problem}
            for r in results
        ],
    }
