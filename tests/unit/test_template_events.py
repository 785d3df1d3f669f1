"""template.yaml's rotation events: EventBusName, EVENT_BUS_NAME, and events:PutEvents on that
bus only when it is set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rotation_tools.sam_template import load_template, resolve_function

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
BUS_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
    "event-bus/${EventBusName}"
}


def _put_events(role: dict[str, Any]) -> list[Any]:
    (policy,) = role["Properties"]["Policies"]
    return [
        item for item in policy["PolicyDocument"]["Statement"] if "events:PutEvents" in str(item)
    ]


def test_the_parameter_is_off_by_default_and_takes_a_bus_name() -> None:
    parameter = TEMPLATE["Parameters"]["EventBusName"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    for accepted in ("", "default", "rotation-events", "aws.partner/x.com/123/bus"):
        assert pattern.fullmatch(accepted)
    # An ARN would make the granted resource wrong: refused at deploy time.
    assert not pattern.fullmatch("arn:aws:events:us-east-1:123456789012:event-bus/x")
    assert TEMPLATE["Conditions"]["HasEventBus"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "EventBusName"}, ""]}]
    }


@pytest.mark.parametrize("function", ["SingleUserFunction", "MultiUserFunction"])
def test_the_functions_get_the_bus_name(function: str) -> None:
    assert resolve_function(TEMPLATE, function).environment["EVENT_BUS_NAME"] == ""
    on = resolve_function(TEMPLATE, function, parameter_overrides={"EventBusName": "ops"})
    assert on.environment["EVENT_BUS_NAME"] == "ops"


@pytest.mark.parametrize("role", ["SingleUserRole", "MultiUserRole"])
def test_put_events_only_on_that_bus_and_only_when_set(role: str) -> None:
    (statement,) = _put_events(TEMPLATE["Resources"][role])
    condition, granted, otherwise = statement["Fn::If"]
    assert condition == "HasEventBus"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert granted["Action"] == ["events:PutEvents"]
    assert granted["Resource"] == BUS_ARN
