"""Every CloudWatch metric the rotation functions publish: names, dimensions, namespace.

One place, so that the code that emits a metric and the dashboard that charts it
(``rotation_tools.deploy.ops_resources``, rendered into ``template.yaml`` and by the CDK
construct) cannot drift apart: the emitters import these names, and a test reads every
emission site of ``rotation`` and ``handlers`` (``add_metric`` / ``publish_count``) and
checks that the names they pass are exactly the keys of :data:`PUBLISHED`.

Powertools adds the dimension ``service`` (:data:`SERVICE_DIMENSION`, value
:data:`SERVICE`) to every metric it writes, so each dimension set below includes it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CREDENTIAL_NOT_CHECKED",
    "CREDENTIAL_VALID",
    "DETAIL_TYPE_DIMENSION",
    "EVENTS_NOT_PUBLISHED",
    "INVALID_STEP",
    "NAMESPACE",
    "PUBLISHED",
    "SECRET_DIMENSION",
    "SERVICE",
    "SERVICE_DIMENSION",
    "STEP_DIMENSION",
    "STEP_DURATION",
    "STEP_FAILED",
    "STEP_SUCCEEDED",
    "STRAGGLER_SESSIONS",
    "STRATEGY_DIMENSION",
    "Published",
]

NAMESPACE = "SecretsRotation"
SERVICE = "rotation"

SERVICE_DIMENSION = "service"
STEP_DIMENSION = "Step"
STRATEGY_DIMENSION = "Strategy"
SECRET_DIMENSION = "Secret"  # noqa: S105 (a dimension name, not a password)
DETAIL_TYPE_DIMENSION = "DetailType"
# The Step dimension's value for an event that could not be parsed (no step to name).
INVALID_STEP = "invalid"

STEP_DURATION = "StepDuration"
STEP_SUCCEEDED = "StepSucceeded"
STEP_FAILED = "StepFailed"
STRAGGLER_SESSIONS = "StragglerSessions"
EVENTS_NOT_PUBLISHED = "EventsNotPublished"
CREDENTIAL_VALID = "CredentialValid"
CREDENTIAL_NOT_CHECKED = "CredentialNotChecked"


@dataclass(frozen=True)
class Published:
    """One metric as it is written: the dimension sets it is written with, and by whom."""

    dimension_sets: tuple[frozenset[str], ...]
    emitted_by: str


def _dims(*names: str) -> frozenset[str]:
    return frozenset((SERVICE_DIMENSION, *names))


PUBLISHED: dict[str, Published] = {
    STEP_DURATION: Published((_dims(STEP_DIMENSION, STRATEGY_DIMENSION),), "every step"),
    STEP_SUCCEEDED: Published((_dims(STEP_DIMENSION, STRATEGY_DIMENSION),), "every step"),
    STEP_FAILED: Published((_dims(STEP_DIMENSION, STRATEGY_DIMENSION),), "every step"),
    STRAGGLER_SESSIONS: Published((_dims(STRATEGY_DIMENSION),), "multi-user setSecret"),
    EVENTS_NOT_PUBLISHED: Published(
        (_dims(DETAIL_TYPE_DIMENSION),), "a rotation event EventBridge did not take"
    ),
    # Verification: once per secret with its name, once with only the service (one alarm).
    CREDENTIAL_VALID: Published(
        (_dims(SECRET_DIMENSION), _dims()), "the verification event, per secret checked"
    ),
    CREDENTIAL_NOT_CHECKED: Published(
        (_dims(SECRET_DIMENSION), _dims()), "the verification event, per secret not checked"
    ),
}
