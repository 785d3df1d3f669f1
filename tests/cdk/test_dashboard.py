"""The construct's dashboard: the described one (rotation_tools.deploy.dashboard), charting what
template.yaml's charts, with the construct's own function and alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotation.metric_names import NAMESPACE, PUBLISHED
from rotation_tools.deploy.dashboard import (
    TEMPLATE_ALARMS,
    TEMPLATE_PANELS,
    UNCHARTED,
    Panel,
    charted,
    dashboard_body,
)
from tests.cdk.stacks import Built, build, of_type


def _body(built: Built) -> tuple[str, dict[str, Any]]:
    (dashboard,) = of_type(built.json(), "AWS::CloudWatch::Dashboard").values()
    text, variables = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    return text, variables


@pytest.mark.parametrize("strategy", ["single-user", "multi-user"])
def test_the_described_dashboard_of_this_function(strategy: str) -> None:
    built = build(strategy=strategy)
    text, variables = _body(built)
    panel = Panel(strategy.capitalize(), strategy, "${FunctionName}")
    assert json.loads(text) == json.loads(dashboard_body([panel]))
    assert variables == {"FunctionName": {"Ref": built.logical_id(built.rotation.function)}}


def test_the_alarms_state_is_on_the_dashboard() -> None:
    built = build(failure_alarm=True)
    text, variables = _body(built)
    (alarm_widget,) = [w for w in json.loads(text)["widgets"] if w["type"] == "alarm"]
    assert alarm_widget["properties"]["alarms"] == ["${Alarm0}"]
    assert built.rotation.failure_alarm is not None
    logical_id = built.logical_id(built.rotation.failure_alarm)
    assert variables["Alarm0"] == {"Fn::GetAtt": [logical_id, "Arn"]}


def test_both_strategies_chart_what_template_yaml_charts() -> None:
    ours = set()
    for strategy in ("single-user", "multi-user"):
        text, _ = _body(build(strategy=strategy))
        ours |= {s for s in charted(json.loads(text)) if s[0] == NAMESPACE}
    template = charted(json.loads(dashboard_body(TEMPLATE_PANELS, alarm_arns=TEMPLATE_ALARMS)))
    assert ours == {s for s in template if s[0] == NAMESPACE}
    published = {(n, d) for n, p in PUBLISHED.items() for d in p.dimension_sets}
    assert published - {(n, d) for _, n, d in ours} == set(UNCHARTED)


def test_the_dashboard_can_be_left_out() -> None:
    built = build(dashboard=False)
    assert of_type(built.json(), "AWS::CloudWatch::Dashboard") == {}
    assert built.rotation.dashboard is None
