"""cdk-nag's AwsSolutions pack: no unacknowledged finding on the construct; each
acknowledgment has its reason and silences nothing outside the construct."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from tests.cdk.stacks import Built, build

MANAGED = "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
BASIC = MANAGED + "service-role/AWSLambdaBasicExecutionRole]"
VPC = MANAGED + "service-role/AWSLambdaVPCAccessExecutionRole]"
RDS = [
    "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:"
    f"<AWS::AccountId>:{kind}:*]"
    for kind in ("db", "cluster")
]
RUNTIME = "AwsSolutions::AwsSolutions-L1"
TOPIC = "AwsSolutions::AwsSolutions-SNS2"

SCENARIOS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "single-user": ({}, {BASIC, RUNTIME}),
    "multi-user-kms-alarm-verification": (
        {
            "strategy": "multi-user",
            "with_key": True,
            "failure_alarm": True,
            "verification_schedule": "rate(1 hour)",
        },
        {BASIC, *RDS, RUNTIME, TOPIC},
    ),
    "multi-user-isolated-vpc": (
        {"strategy": "multi-user", "vpc": "isolated"},
        {BASIC, VPC, *RDS, RUNTIME},
    ),
    "single-user-nat-vpc-kms": ({"vpc": "egress", "with_key": True}, {BASIC, VPC, RUNTIME}),
}


def _acknowledged(built: Built) -> dict[str, str]:
    found: dict[str, str] = {}
    for construct in built.rotation.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == "aws:cdk:acknowledged-rules":
                found.update(entry.data)
    return found


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_no_unacknowledged_finding(scenario: str) -> None:
    options, expected = SCENARIOS[scenario]
    built = build(nag=True, **options)
    built.template()  # raises when cdk-nag reports an unacknowledged finding
    acknowledged = _acknowledged(built)
    assert set(acknowledged) == expected
    for reason in acknowledged.values():
        assert len(reason.split()) >= 10, reason


def test_acknowledgments_silence_nothing_outside_the_construct() -> None:
    built = build(nag=True)
    # The same managed policy and runtime, outside the construct: cdk-nag must still report.
    role = iam.Role(
        built.stack,
        "AppRole",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[
            iam.ManagedPolicy.from_aws_managed_policy_name(
                "service-role/AWSLambdaBasicExecutionRole"
            )
        ],
    )
    lambda_.Function(
        built.stack,
        "AppFunction",
        runtime=lambda_.Runtime.PYTHON_3_12,
        handler="app.handler",
        code=lambda_.Code.from_inline("handler = None"),
        role=role,
    )
    with pytest.raises(RuntimeError, match="ValidationFailed") as failed:
        built.template()
    report = str(failed.value)
    assert "AwsSolutions-IAM4" in report
    assert "Test/AppRole/Resource" in report
    assert "AwsSolutions-L1" in report
    assert "Test/AppFunction/Resource" in report
    assert "Test/Rotation/" not in report
