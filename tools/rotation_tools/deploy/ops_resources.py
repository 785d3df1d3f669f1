"""What an operator gets besides the functions, described once for ``template.yaml`` and the
CDK construct (``rotation_cdk``), as :mod:`rotation_tools.deploy.iam_policy` is for the roles:

- the EventBridge rule on Secrets Manager's own ``RotationFailed`` / ``RotationAbandoned``
  events (CloudTrail service events), notifying the failure topic;
- the verification schedule's event (``{"Action": "VerifyCredentials", "SecretIds": [...]}``);
- the alarms on the verification's metrics: drift (``CredentialValid`` below 1) and secrets
  not checked in time (``CredentialNotChecked``).

Tests compare the template's resources and the synthesised construct's with these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rotation.metric_names import (
    CREDENTIAL_NOT_CHECKED,
    CREDENTIAL_VALID,
    NAMESPACE,
    SERVICE,
    SERVICE_DIMENSION,
)
from rotation.verify_event import VERIFY_ACTION

__all__ = [
    "CHECKOV_SKIPS",
    "DRIFT_ALARM",
    "FAILURE_RULE_DESCRIPTION",
    "FAILURE_RULE_PATTERN",
    "NOT_CHECKED_ALARM",
    "VERIFICATION_RULE_DESCRIPTION",
    "AlarmSpec",
    "verification_event",
]

FAILURE_RULE_DESCRIPTION = "Secrets Manager reports a failed or abandoned rotation"
# Secrets Manager logs these to CloudTrail as service events (not API calls): EventBridge
# delivers them with this detail-type (AWS's "CloudTrail entries for Secrets Manager").
FAILURE_RULE_PATTERN: dict[str, Any] = {
    "source": ["aws.secretsmanager"],
    "detail-type": ["AWS Service Event via CloudTrail"],
    "detail": {
        "eventSource": ["secretsmanager.amazonaws.com"],
        "eventName": ["RotationFailed", "RotationAbandoned"],
    },
}
VERIFICATION_RULE_DESCRIPTION = "Check that the rotated secrets' credentials still log in"


def verification_event(secret_ids: Sequence[str]) -> dict[str, Any]:
    """The event the verification schedule sends a function."""
    return {"Action": VERIFY_ACTION, "SecretIds": list(secret_ids)}


def verification_input_template() -> str:
    """:func:`verification_event` as ``template.yaml``'s ``Fn::Sub`` text (``${Ids}`` is the
    list joined with ``", "``)."""
    text = json.dumps(verification_event(["${Ids}"]))
    return text


@dataclass(frozen=True)
class AlarmSpec:
    """A CloudWatch alarm on one of the verification's service-wide metrics."""

    metric_name: str
    statistic: str
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str
    description: str

    def properties(self) -> dict[str, Any]:
        """``AWS::CloudWatch::Alarm`` properties, without the actions."""
        return {
            "AlarmDescription": self.description,
            "Namespace": NAMESPACE,
            "MetricName": self.metric_name,
            "Dimensions": [{"Name": SERVICE_DIMENSION, "Value": SERVICE}],
            "Statistic": self.statistic,
            "Period": self.period_s,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints_to_alarm,
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            "TreatMissingData": self.treat_missing_data,
        }


DRIFT_ALARM = AlarmSpec(
    metric_name=CREDENTIAL_VALID,
    statistic="Minimum",
    period_s=3600,
    evaluation_periods=1,
    datapoints_to_alarm=1,
    threshold=1,
    comparison="LessThanThreshold",
    treat_missing_data="notBreaching",
    description=(
        "A stored credential no longer logs in (drift: its password was changed outside "
        "rotation), or its database is unreachable or misconfigured. The function's log line "
        '"credential check" names the secret and the fix; `rotation verify` repeats the check.'
    ),
)
# A secret is "not checked" when the verification's invocation ran out of time before its
# turn, or while a rotation of it is in progress. One rotation spans one check at most, so
# the alarm waits for two hours of the last three with a secret not checked: a schedule
# that never reaches every secret, or a rotation stuck in progress.
NOT_CHECKED_ALARM = AlarmSpec(
    metric_name=CREDENTIAL_NOT_CHECKED,
    statistic="Maximum",
    period_s=3600,
    evaluation_periods=3,
    datapoints_to_alarm=2,
    threshold=1,
    comparison="GreaterThanOrEqualToThreshold",
    treat_missing_data="notBreaching",
    description=(
        "Secrets were not checked in two of the last three hours: the verification's "
        "invocation ran out of time before their turn (raise the function's timeout or split "
        "the list over several schedules), or a rotation is stuck in progress (`rotation "
        'status SECRET`). The log line "credential check" with state not-checked or rotating '
        "names them."
    ),
)


# checkov findings that are deliberate, with the reason; template.yaml's functions carry the
# first two in their Metadata (a test compares), the construct adds each where it applies.
CHECKOV_SKIPS: dict[str, str] = {
    "CKV_AWS_116": (
        "A dead-letter queue only receives failed asynchronous invocations; Secrets "
        "Manager invokes rotation functions synchronously and records a failed step "
        "itself (the optional RotationFailed alarm reports it)."
    ),
    "CKV_AWS_173": (
        "The environment holds no secret (an endpoint URL and the password policy); "
        "Lambda encrypts it at rest with its AWS managed key."
    ),
    # The construct only: template.yaml declares both through parameters.
    "CKV_AWS_115": (
        "No reserved concurrency by default, on purpose: AWS's rotation guide warns that a "
        "limit below 10 can throttle the function and a throttled step loops the rotation; "
        "reserved_concurrency= sets one (at least 10)."
    ),
    "CKV_AWS_117": (
        "The function runs where the database is reachable: outside a VPC when no vpc= is "
        "given (a database with a public endpoint); pass vpc= for one in a VPC."
    ),
    "CKV_AWS_26": (
        "CloudWatch and EventBridge publish alarm and rotation-failure notices (names and "
        "states, never a secret value) and cannot publish to a topic encrypted with the "
        "AWS managed SNS key; pass failure_alarm=<your topic> encrypted with a customer "
        "managed key that admits them."
    ),
}
