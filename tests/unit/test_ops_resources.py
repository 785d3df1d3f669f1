"""template.yaml's failure rule, verification schedule, alarms and rotation windows are the
ones rotation_tools describes (the CDK construct is checked against the same in tests/cdk);
the rule's pattern is matched against event samples from AWS's documentation."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from rotation.verify_event import parse_verify_event
from rotation_tools.deploy.ops_resources import (
    DRIFT_ALARM,
    FAILURE_RULE_DESCRIPTION,
    FAILURE_RULE_PATTERN,
    NOT_CHECKED_ALARM,
    VERIFICATION_RULE_DESCRIPTION,
    verification_input_template,
)
from rotation_tools.deploy.rotation_window import (
    DURATION_PATTERN,
    RULE,
    SCHEDULE_PATTERN,
    WindowError,
    check_rules,
    next_windows,
)
from rotation_tools.sam_template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
SAMPLES = json.loads((ROOT / "tests" / "data" / "secretsmanager_events.json").read_text())


def test_the_template_s_failure_rule_is_the_described_one() -> None:
    rule = RESOURCES["RotationFailureRule"]["Properties"]
    assert rule["EventPattern"] == FAILURE_RULE_PATTERN
    assert rule["Description"] == FAILURE_RULE_DESCRIPTION


@pytest.mark.parametrize(
    ("sample", "matches"),
    [(name, True) for name in SAMPLES["matches"]]
    + [(name, False) for name in SAMPLES["does_not_match"]],
)
def test_the_pattern_matches_documented_failures_only(sample: str, matches: bool) -> None:
    event = {**SAMPLES["matches"], **SAMPLES["does_not_match"]}[sample]
    # moto's implementation of EventBridge's matching, not ours.
    pattern = EventPattern.load(json.dumps(FAILURE_RULE_PATTERN))
    assert pattern.matches_event(event) is matches


def test_the_verification_schedule_sends_the_described_event() -> None:
    rule = RESOURCES["VerificationRule"]["Properties"]
    assert rule["Description"] == VERIFICATION_RULE_DESCRIPTION
    for target in rule["Targets"]:
        _, chosen, _ = target["Fn::If"]
        text, variables = chosen["Input"]["Fn::Sub"]
        assert text == verification_input_template()
        assert variables["Ids"]["Fn::Join"][0] == '", "'
        # What EventBridge sends for two secrets is an event the function accepts.
        rendered = text.replace("${Ids}", '", "'.join(["app/a", "app/b"]))
        assert parse_verify_event(json.loads(rendered)).secret_ids == ("app/a", "app/b")


def _without_actions(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k != "AlarmActions"}


@pytest.mark.parametrize(
    ("logical_id", "spec"),
    [("CredentialDriftAlarm", DRIFT_ALARM), ("CredentialNotCheckedAlarm", NOT_CHECKED_ALARM)],
    ids=["drift", "not-checked"],
)
def test_the_verification_alarms_are_the_described_ones(logical_id: str, spec: Any) -> None:
    alarm = RESOURCES[logical_id]
    assert alarm["Condition"] == "HasVerification"
    assert _without_actions(alarm["Properties"]) == spec.properties()
    assert alarm["Properties"]["AlarmActions"] == {
        "Fn::If": [
            "VerificationAlarmNotifies",
            [{"Ref": "RotationFailureTopic"}],
            {"Ref": "AWS::NoValue"},
        ]
    }
    # The failure topic lets exactly these alarms publish.
    (statement,) = [
        s["Fn::If"][1]
        for s in RESOURCES["RotationFailureTopicPolicy"]["Properties"]["PolicyDocument"][
            "Statement"
        ]
        if "Fn::If" in s
    ]
    assert {"Fn::GetAtt": [logical_id, "Arn"]} in statement["Condition"]["ArnEquals"][
        "aws:SourceArn"
    ]


def test_the_template_checks_schedules_and_windows_as_described() -> None:
    parameters = TEMPLATE["Parameters"]
    schedule, window = parameters["RotationScheduleExpression"], parameters["RotationWindow"]
    assert schedule["AllowedPattern"] == SCHEDULE_PATTERN
    assert window["AllowedPattern"] == f"^({DURATION_PATTERN[1:-1]})?$"
    assert schedule["ConstraintDescription"] == RULE
    assert (
        "must not extend into the next window or the next UTC day"
        in (window["ConstraintDescription"])
    )
    assert re.fullmatch(schedule["AllowedPattern"], schedule["Default"])


ACCEPTED = [
    ("rate(4 hours)", None),
    ("rate(4 hours)", "4h"),
    ("rate(6 hours)", "6h"),
    ("rate(1 day)", None),
    ("rate(30 days)", "3h"),
    ("rate(1000 days)", "24h"),
    ("cron(0 16 1,15 * ? *)", "2h"),
    ("cron(0 1,13 * * ? *)", "4h"),
    ("cron(0 */4 * * ? *)", None),
    ("cron(0 8-20/6 ? * MON-FRI *)", "4h"),
    ("cron(0 20 * * ? *)", "4h"),
    ("cron(30 20 * * ? *)", "3h"),
]
REFUSED = [
    ("rate(2 hours)", None, "more often than every 4 hours"),
    ("rate(1001 days)", None, "more than 1000 days"),
    ("rate(6 hours)", "7h", "into the next window"),
    ("rate(5 hours)", "5h", "into the next UTC day"),  # 20:00 + 5h
    ("cron(0 22 * * ? *)", "3h", "into the next UTC day"),
    ("cron(30 21 * * ? *)", "3h", "into the next UTC day"),
    ("cron(0 8-20/6 ? * MON-FRI *)", "6h", "into the next UTC day"),  # 20:00 + 6h
    ("cron(0 1,3 * * ? *)", None, "120 minutes apart"),
    ("cron(0 */2 * * ? *)", None, "120 minutes apart"),
    ("cron(0 * * * ?)", None, "has 5 fields"),
    ("cron(0 25 * * ? *)", None, "out of range"),
    ("cron(0,30 1 * * ? *)", None, "one minute of the hour"),
    ("rate(30 days)", "25h", "not a whole number of hours"),
    ("rate(30 days)", "90m", "not a whole number of hours"),
    ("every 30 days", None, "neither rate(...) nor cron(...)"),
]


@pytest.mark.parametrize(("expression", "duration"), ACCEPTED)
def test_schedules_secrets_manager_accepts(expression: str, duration: str | None) -> None:
    check_rules(expression, duration)
    assert re.fullmatch(SCHEDULE_PATTERN, expression)


@pytest.mark.parametrize(("expression", "duration", "reason"), REFUSED)
def test_schedules_secrets_manager_refuses_name_its_rule(
    expression: str, duration: str | None, reason: str
) -> None:
    with pytest.raises(WindowError, match=re.escape(reason)) as caught:
        check_rules(expression, duration)
    assert RULE in str(caught.value)


def test_the_next_windows() -> None:
    after = datetime.datetime(2026, 3, 1, 14, 30, tzinfo=datetime.UTC)
    hour = datetime.timedelta(hours=1)
    day = after.replace(hour=0, minute=0)
    assert next_windows("cron(0 1,13 * * ? *)", "4h", after, count=3) == [
        (day + 13 * hour, day + 17 * hour),
        (day + 25 * hour, day + 29 * hour),
        (day + 37 * hour, day + 41 * hour),
    ]
    assert next_windows("rate(1 day)", None, after, count=1) == [(day, day + 24 * hour)]
