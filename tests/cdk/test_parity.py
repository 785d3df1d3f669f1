"""The construct at parity with template.yaml: the RotationFailed/RotationAbandoned rule, the
verification schedule and its alarms, and the rotation window's rule, all from the same
description (rotation_tools.deploy.ops_resources, rotation_tools.deploy.rotation_window)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import Duration

from rotation.verify_event import parse_verify_event
from rotation_tools.deploy.ops_resources import (
    CHECKOV_SKIPS,
    DRIFT_ALARM,
    FAILURE_RULE_DESCRIPTION,
    FAILURE_RULE_PATTERN,
    NOT_CHECKED_ALARM,
    VERIFICATION_RULE_DESCRIPTION,
)
from rotation_tools.deploy.rotation_window import RULE
from rotation_tools.sam_template import load_template
from tests.cdk.conftest import ROOT
from tests.cdk.stacks import Built, build, of_type

TEMPLATE = load_template(ROOT / "template.yaml")["Resources"]


def _rules(built: Built) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["Description"]: r["Properties"]
        for r in of_type(built.json(), "AWS::Events::Rule").values()
    }


def test_the_failure_rule_is_template_yaml_s_and_notifies_the_topic() -> None:
    built = build(failure_alarm=True)
    rule = _rules(built)[FAILURE_RULE_DESCRIPTION]
    assert rule["EventPattern"] == FAILURE_RULE_PATTERN
    assert rule["EventPattern"] == TEMPLATE["RotationFailureRule"]["Properties"]["EventPattern"]
    assert built.rotation.failure_topic is not None
    topic_id = built.stack.get_logical_id(built.rotation.failure_topic.node.default_child)  # type: ignore[arg-type]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": topic_id}
    # EventBridge may publish to the topic the construct made (CDK adds the topic policy).
    (policy,) = of_type(built.json(), "AWS::SNS::TopicPolicy").values()
    principals = [s["Principal"] for s in policy["Properties"]["PolicyDocument"]["Statement"]]
    assert {"Service": "events.amazonaws.com"} in principals


def test_no_failure_alarm_no_rule() -> None:
    assert FAILURE_RULE_DESCRIPTION not in _rules(build())


def test_the_verification_schedule_invokes_the_function_with_this_secret() -> None:
    built = build(verification_schedule="rate(1 hour)")
    rule = _rules(built)[VERIFICATION_RULE_DESCRIPTION]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    (target,) = rule["Targets"]
    function_id = built.logical_id(built.rotation.function)
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    secret_id = built.logical_id(built.secret)
    # The input is the verification event with this secret's ARN (a Ref in the template).
    parsed = json.loads(_join(target["Input"]))
    assert parse_verify_event(parsed).secret_ids == (f"<{secret_id}>",)
    # Only this rule may invoke the function for it.
    permissions = [
        p["Properties"]
        for p in of_type(built.json(), "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    (permission,) = permissions
    rule_id = built.stack.get_logical_id(built.rotation.verification_rule.node.default_child)  # type: ignore[arg-type,union-attr]
    assert permission["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def _join(value: Any) -> str:
    """A synthesized Fn::Join of text and Refs, with each Ref written as <LogicalId>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_join(p) for p in parts)
    return f"<{value['Ref']}>"


@pytest.mark.parametrize("failure_alarm", [True, False], ids=["notifying", "silent"])
def test_the_verification_alarms_are_template_yaml_s(failure_alarm: bool) -> None:
    built = build(verification_schedule="rate(1 hour)", failure_alarm=failure_alarm)
    alarms = {
        r["Properties"].get("MetricName"): r["Properties"]
        for r in of_type(built.json(), "AWS::CloudWatch::Alarm").values()
    }
    for spec, logical_id in (
        (DRIFT_ALARM, "CredentialDriftAlarm"),
        (NOT_CHECKED_ALARM, "CredentialNotCheckedAlarm"),
    ):
        alarm = alarms[spec.metric_name]
        actions = alarm.pop("AlarmActions", None)
        assert alarm == spec.properties()
        template = dict(TEMPLATE[logical_id]["Properties"])
        template.pop("AlarmActions")
        assert alarm == template
        if failure_alarm:
            assert built.rotation.failure_topic is not None
            topic_id = built.stack.get_logical_id(
                built.rotation.failure_topic.node.default_child  # type: ignore[arg-type]
            )
            assert actions == [{"Ref": topic_id}]
        else:
            assert actions is None


@pytest.mark.parametrize(
    ("schedule", "window", "reason"),
    [
        ("rate(6 hours)", Duration.hours(7), "into the next window"),
        ("cron(0 22 * * ? *)", Duration.hours(3), "into the next UTC day"),
        ("cron(0 1,3 * * ? *)", None, "120 minutes apart"),
        (Duration.hours(5), Duration.hours(5), "into the next UTC day"),
    ],
    ids=["next-window", "next-day", "too-close", "duration-schedule"],
)
def test_windows_secrets_manager_refuses_are_refused_at_synth(
    schedule: Any, window: Duration | None, reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        build(schedule=schedule, window=window)
    assert RULE in str(caught.value)


def test_a_window_secrets_manager_accepts() -> None:
    built = build(schedule="cron(0 1,13 * * ? *)", window=Duration.hours(4))
    (schedule,) = of_type(built.json(), "AWS::SecretsManager::RotationSchedule").values()
    assert schedule["Properties"]["RotationRules"] == {
        "ScheduleExpression": "cron(0 1,13 * * ? *)",
        "Duration": "4h",
    }


def _checkov_skips(resource: dict[str, Any]) -> dict[str, str]:
    return {s["id"]: s["comment"] for s in resource["Metadata"]["checkov"]["skip"]}


def test_checkov_skips_carry_the_template_s_reasons() -> None:
    built = build(failure_alarm=True)
    (function,) = of_type(built.json(), "AWS::Lambda::Function").values()
    skips = _checkov_skips(function)
    assert skips == {
        i: CHECKOV_SKIPS[i] for i in ("CKV_AWS_116", "CKV_AWS_173", "CKV_AWS_115", "CKV_AWS_117")
    }
    for name in ("SingleUserFunction", "MultiUserFunction"):
        assert _checkov_skips(TEMPLATE[name]) == {
            i: CHECKOV_SKIPS[i] for i in ("CKV_AWS_116", "CKV_AWS_173")
        }
    (topic,) = of_type(built.json(), "AWS::SNS::Topic").values()
    assert _checkov_skips(topic) == {"CKV_AWS_26": CHECKOV_SKIPS["CKV_AWS_26"]}


def test_checkov_skips_follow_the_options() -> None:
    built = build(vpc="isolated", reserved_concurrency=10)
    (function,) = of_type(built.json(), "AWS::Lambda::Function").values()
    # A VPC and a reservation given: those checks run and pass.
    assert set(_checkov_skips(function)) == {"CKV_AWS_116", "CKV_AWS_173"}
