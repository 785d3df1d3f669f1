"""The CloudWatch dashboard, described once: ``template.yaml`` holds its rendering and the
CDK construct renders it (``rotation_cdk``); tests compare both with :func:`dashboard_body`.

Per function: steps succeeded and failed by step, duration by step, the function's own
errors, throttles and duration (``AWS/Lambda``), and for multi-user the stragglers found
at setSecret. For the account: Secrets Manager calls (``AWS/Usage``, which Secrets Manager
publishes itself), the verification results, rotation events EventBridge did not take,
and the alarms' state. Every metric of our namespace comes from
:data:`rotation.metric_names.PUBLISHED`; what is published and not charted is in
:data:`UNCHARTED` with the reason (a test checks both directions).

Function names and alarm ARNs are passed in as text: ``${SingleUserFunction}`` placeholders
for ``Fn::Sub`` in the template, tokens in the CDK construct (which also uses ``Fn::Sub``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handlers.multi_user import PostgresMultiUser
from handlers.single_user import PostgresSingleUser
from rotation.event import Step
from rotation.events import ROTATION_STEP_FAILED, ROTATION_SUCCEEDED
from rotation.metric_names import (
    CREDENTIAL_NOT_CHECKED,
    CREDENTIAL_VALID,
    DETAIL_TYPE_DIMENSION,
    EVENTS_NOT_PUBLISHED,
    INVALID_STEP,
    NAMESPACE,
    SECRET_DIMENSION,
    SERVICE,
    SERVICE_DIMENSION,
    STEP_DIMENSION,
    STEP_DURATION,
    STEP_FAILED,
    STEP_SUCCEEDED,
    STRAGGLER_SESSIONS,
    STRATEGY_DIMENSION,
)

__all__ = [
    "AWS_METRICS",
    "REGION",
    "STRATEGY_NAMES",
    "UNCHARTED",
    "Panel",
    "alarm_widget",
    "body_parts",
    "charted",
    "dashboard_body",
    "metric_widgets",
]

# The Strategy dimension's value is the strategy's own name.
STRATEGY_NAMES: dict[str, str] = {
    "single-user": PostgresSingleUser.name,
    "multi-user": PostgresMultiUser.name,
}
REGION = "${AWS::Region}"
# Metrics AWS publishes, charted beside ours: Lambda's for the function, and Secrets
# Manager's API call counts (the account's write quota is 50 calls per second).
AWS_METRICS: dict[str, frozenset[str]] = {
    "AWS/Lambda": frozenset({"Errors", "Throttles", "Duration", "Invocations"}),
    "AWS/Usage": frozenset({"CallCount"}),
}
SECRETS_MANAGER_CALLS = (
    "GetSecretValue",
    "DescribeSecret",
    "PutSecretValue",
    "UpdateSecretVersionStage",
)
# What the code publishes and the dashboard does not chart, with the reason.
UNCHARTED: dict[tuple[str, frozenset[str]], str] = {
    (name, frozenset({SERVICE_DIMENSION, SECRET_DIMENSION})): (
        "one series per secret: a fleet would need a widget per secret. The service-wide "
        "series is charted and alarmed on; the log line `credential check` and `rotation "
        "verify` name the secret"
    )
    for name in (CREDENTIAL_VALID, CREDENTIAL_NOT_CHECKED)
}
_STEPS = [*(step.value for step in Step), INVALID_STEP]
_PERIOD = 300
_WIDTH = 12
_HEIGHT = 6


@dataclass(frozen=True)
class Panel:
    """One rotation function on the dashboard."""

    label: str
    strategy: str  # "single-user" or "multi-user"
    function_name: str


def _ours(name: str, stat: str, label: str, dimensions: dict[str, str] | None = None) -> list[Any]:
    row: list[Any] = [NAMESPACE, name]
    for key, value in {**(dimensions or {}), SERVICE_DIMENSION: SERVICE}.items():
        row += [key, value]
    return [*row, {"stat": stat, "label": label}]


def _widget(title: str, metrics: list[list[Any]], *, region: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": _WIDTH,
        "height": _HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "period": _PERIOD,
            "view": "timeSeries",
            "metrics": metrics,
            **extra,
        },
    }


def _function_widgets(panel: Panel, region: str) -> list[dict[str, Any]]:
    strategy = STRATEGY_NAMES[panel.strategy]
    outcome = [
        _ours(name, "Sum", f"{step} {verb}", {STEP_DIMENSION: step, STRATEGY_DIMENSION: strategy})
        for step in _STEPS
        for name, verb in ((STEP_SUCCEEDED, "succeeded"), (STEP_FAILED, "failed"))
        # An event that could not be parsed only ever fails.
        if step != INVALID_STEP or name == STEP_FAILED
    ]
    duration = [
        _ours(
            STEP_DURATION,
            stat,
            f"{step} {stat}",
            {STEP_DIMENSION: step, STRATEGY_DIMENSION: strategy},
        )
        for step in _STEPS[:-1]
        for stat in ("p50", "Maximum")
    ]
    function = [
        ["AWS/Lambda", name, "FunctionName", panel.function_name, {"stat": stat}]
        for name, stat in (("Errors", "Sum"), ("Throttles", "Sum"), ("Invocations", "Sum"))
    ]
    widgets = [
        _widget(f"{panel.label}: steps succeeded / failed", outcome, region=region, stacked=True),
        _widget(f"{panel.label}: step duration (ms)", duration, region=region),
        _widget(f"{panel.label}: function errors, throttles, invocations", function, region=region),
        _widget(
            f"{panel.label}: function duration (ms)",
            [
                ["AWS/Lambda", "Duration", "FunctionName", panel.function_name, {"stat": "p99"}],
            ],
            region=region,
        ),
    ]
    if panel.strategy == "multi-user":
        widgets.append(
            _widget(
                f"{panel.label}: stragglers at setSecret",
                [_ours(STRAGGLER_SESSIONS, "Maximum", "sessions", {STRATEGY_DIMENSION: strategy})],
                region=region,
            )
        )
    return widgets


def _account_widgets(region: str) -> list[dict[str, Any]]:
    calls = [
        [
            "AWS/Usage",
            "CallCount",
            "Service",
            "Secrets Manager",
            "Type",
            "API",
            "Resource",
            call,
            "Class",
            "None",
            {"stat": "Sum", "label": call},
        ]
        for call in SECRETS_MANAGER_CALLS
    ]
    verification = [
        _ours(CREDENTIAL_VALID, "Minimum", "CredentialValid (minimum; 0 = a credential failed)"),
        _ours(CREDENTIAL_NOT_CHECKED, "Sum", "secrets not checked"),
    ]
    not_published = [
        _ours(EVENTS_NOT_PUBLISHED, "Sum", detail_type, {DETAIL_TYPE_DIMENSION: detail_type})
        for detail_type in (ROTATION_SUCCEEDED, ROTATION_STEP_FAILED)
    ]
    return [
        _widget("Secrets Manager API calls (account)", calls, region=region),
        _widget("Credential verification", verification, region=region, period=3600),
        _widget("Rotation events not published", not_published, region=region),
    ]


def metric_widgets(panels: Sequence[Panel], *, region: str = REGION) -> list[dict[str, Any]]:
    """The dashboard's metric widgets, laid out two to a row."""
    widgets = [w for panel in panels for w in _function_widgets(panel, region)]
    widgets += _account_widgets(region)
    for index, widget in enumerate(widgets):
        widget["x"] = (index % 2) * _WIDTH
        widget["y"] = (index // 2) * _HEIGHT
    return widgets


def alarm_widget(alarm_arns: Sequence[str], *, y: int) -> dict[str, Any]:
    """The alarms' state."""
    return {
        "type": "alarm",
        "x": 0,
        "y": y,
        "width": 2 * _WIDTH,
        "height": 3,
        "properties": {"title": "Alarms", "alarms": list(alarm_arns)},
    }


def body_parts(
    panels: Sequence[Panel], *, alarm_arns: Sequence[str] = (), region: str = REGION
) -> tuple[str, str, str]:
    """The ``DashboardBody`` JSON in three parts: the metric widgets (one per line), the
    alarm widget (to leave out where a template's condition removes the alarms), the end.
    ``Fn::Sub`` placeholders are kept as given."""
    widgets = metric_widgets(panels, region=region)
    head = '{"widgets":[\n' + ",\n".join(_line(w) for w in widgets)
    bottom = max(int(w["y"]) + int(w["height"]) for w in widgets)
    alarms = ",\n" + _line(alarm_widget(alarm_arns, y=bottom)) if alarm_arns else ""
    return head, alarms, "\n]}\n"


def dashboard_body(
    panels: Sequence[Panel], *, alarm_arns: Sequence[str] = (), region: str = REGION
) -> str:
    """The whole ``DashboardBody`` JSON."""
    return "".join(body_parts(panels, alarm_arns=alarm_arns, region=region))


def _line(widget: dict[str, Any]) -> str:
    return json.dumps(widget, separators=(",", ":"))


def charted(body: dict[str, Any]) -> set[tuple[str, str, frozenset[str]]]:
    """Every metric a dashboard body charts: (namespace, name, dimension names)."""
    found = set()
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            fields = [f for f in row if not isinstance(f, dict)]
            namespace, name, *pairs = fields
            found.add((namespace, name, frozenset(pairs[0::2])))
    return found


# template.yaml's dashboard: both functions, and the alarms its verification schedule creates.
TEMPLATE_PANELS = (
    Panel("Single-user", "single-user", "${SingleUserFunction}"),
    Panel("Multi-user", "multi-user", "${MultiUserFunction}"),
)
TEMPLATE_ALARMS = ("${CredentialDriftAlarm.Arn}", "${CredentialNotCheckedAlarm.Arn}")


def template_snippet() -> str:
    """The ``DashboardBody`` of template.yaml, as YAML
    (``python -m rotation_tools.deploy.dashboard`` prints it after a change here; a test
    compares the template with it)."""
    head, alarms, tail = body_parts(TEMPLATE_PANELS, alarm_arns=TEMPLATE_ALARMS)

    def block(text: str, indent: str) -> str:
        return "\n".join(indent + line if line else line for line in text.splitlines())

    pad = " " * 12
    return (
        "      DashboardBody: !Join\n"
        '        - ""\n'
        "        - - !Sub |\n"
        f"{block(head, pad)}\n"
        "          - !If\n"
        "            - HasVerification\n"
        "            - !Sub |\n"
        f"{block(alarms.lstrip(), pad + '  ')}\n"
        '            - ""\n'
        f"          - {json.dumps(tail)}\n"
    )


if __name__ == "__main__":  # pragma: no cover - prints the template's rendering
    print(template_snippet())
