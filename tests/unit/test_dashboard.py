"""The dashboard charts what the code publishes, and template.yaml holds the one description.

The published metrics are read from the code itself: every ``add_metric`` /
``publish_count`` call of ``rotation`` and ``handlers`` and the name it passes.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from rotation.metric_names import NAMESPACE, PUBLISHED
from rotation_tools.deploy.dashboard import (
    AWS_METRICS,
    TEMPLATE_ALARMS,
    TEMPLATE_PANELS,
    UNCHARTED,
    charted,
    dashboard_body,
)
from rotation_tools.sam_template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
EMITTERS = {"add_metric": "name", "publish_count": "name"}
DIMENSION_SETTERS = {"add_dimension": "name"}


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _argument(node: ast.Call, keyword: str) -> ast.expr:
    for kw in node.keywords:
        if kw.arg == keyword:
            return kw.value
    return node.args[0]


def _assigned(tree: ast.AST, name: str) -> list[ast.expr]:
    """The values a local name is assigned anywhere in the module (``a, b = X, Y`` too)."""
    values: list[ast.expr] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                values.append(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for element, value in zip(target.elts, node.value.elts, strict=True):
                    if isinstance(element, ast.Name) and element.id == name:
                        values.append(value)
    return values


def _values(expr: ast.expr, namespace: dict[str, Any], tree: ast.AST | None = None) -> set[str]:
    """What a metric-name expression can evaluate to (both branches of a conditional; a
    local variable, each value the module assigns it)."""
    if isinstance(expr, ast.IfExp):
        return _values(expr.body, namespace, tree) | _values(expr.orelse, namespace, tree)
    if isinstance(expr, ast.Name) and expr.id not in namespace and tree is not None:
        assigned = _assigned(tree, expr.id)
        assert assigned, f"{expr.id} is assigned nowhere in its module"
        return set().union(*(_values(v, namespace) for v in assigned))
    value = eval(compile(ast.Expression(expr), "<name>", "eval"), namespace)  # noqa: S307
    assert isinstance(value, str), ast.unparse(expr)
    return {value}


def _publish_count_dimensions(call: ast.Call, namespace: dict[str, Any], tree: ast.AST) -> set[str]:
    dims = (
        call.args[2]
        if len(call.args) > 2
        else next(k.value for k in call.keywords if k.arg == "dimensions")
    )
    assert isinstance(dims, ast.Dict), "publish_count's dimensions are written out at the call"
    return set().union(*(_values(k, namespace, tree) for k in dims.keys if k is not None))


def _site(
    path: Path, call: ast.Call, namespace: dict[str, Any], tree: ast.AST
) -> dict[str, set[str]]:
    """The metric and dimension names one call passes."""
    kind = _call_name(call)
    found: dict[str, set[str]] = {"metric": set(), "dimension": set()}
    # publish_count's own body passes its parameters on: its callers are read instead.
    passthrough = path.name == "observability.py"
    if kind == "publish_count":
        found["dimension"] |= _publish_count_dimensions(call, namespace, tree)
    if kind in EMITTERS:
        arg = _argument(call, EMITTERS[kind])
        if not (passthrough and ast.unparse(arg) == "name"):
            found["metric"] |= _values(arg, namespace, tree)
    elif kind in DIMENSION_SETTERS:
        arg = _argument(call, DIMENSION_SETTERS[kind])
        # verify_lambda's per-secret value is passed by name: its key is a constant.
        if not (passthrough and ast.unparse(arg) == "key"):
            found["dimension"] |= _values(arg, namespace, tree)
    return found


def _emission_sites() -> dict[str, set[str]]:
    """The metric names and dimension names rotation/ and handlers/ pass when they publish
    (constants resolved through each module's own namespace), and the modules that do."""
    found: dict[str, set[str]] = {"metric": set(), "dimension": set(), "sites": set()}
    for path in sorted([*(ROOT / "rotation").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call)
            and _call_name(n) in {*EMITTERS, *DIMENSION_SETTERS}
            and (n.args or n.keywords)
        ]
        if not calls:
            continue
        module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        namespace = vars(importlib.import_module(module_name))
        for call in calls:
            site = _site(path, call, namespace, tree)
            found["metric"] |= site["metric"]
            found["dimension"] |= site["dimension"]
            if site["metric"]:
                found["sites"].add(str(path.relative_to(ROOT)))
    return found


SITES = _emission_sites()
PUBLISHED_SERIES = {(name, dims) for name, p in PUBLISHED.items() for dims in p.dimension_sets}


def test_the_code_publishes_exactly_the_described_metrics() -> None:
    # The scan found the emitters it must (a broken scan cannot pass as "nothing published").
    sites = SITES["sites"]
    assert {
        "rotation/middleware/metrics.py",
        "rotation/events.py",
        "handlers/pg_sessions.py",
        "handlers/verify_lambda.py",
    } <= sites
    assert SITES["metric"] == set(PUBLISHED)
    described = set().union(*(d for _, d in PUBLISHED_SERIES))
    assert SITES["dimension"] | {"service"} == described


def test_every_widget_metric_is_published_and_every_published_one_is_charted() -> None:
    body = json.loads(dashboard_body(TEMPLATE_PANELS, alarm_arns=TEMPLATE_ALARMS))
    series = charted(body)
    ours = {(name, dims) for namespace, name, dims in series if namespace == NAMESPACE}
    assert ours <= PUBLISHED_SERIES, ours - PUBLISHED_SERIES
    # Published and not charted: only with a stated reason, and no reason for what is charted
    # or not published (a stale reason would hide a metric nobody emits).
    assert PUBLISHED_SERIES - ours == set(UNCHARTED)
    assert all(len(reason) > 40 for reason in UNCHARTED.values())
    for namespace, name, _ in series - {(NAMESPACE, n, d) for n, d in ours}:
        assert name in AWS_METRICS[namespace], (namespace, name)


def test_the_dimension_values_are_the_ones_emitted() -> None:
    body = json.loads(dashboard_body(TEMPLATE_PANELS))
    strategies = set()
    for widget in body["widgets"]:
        for row in widget["properties"]["metrics"]:
            fields = [f for f in row if not isinstance(f, dict)]
            pairs = dict(zip(fields[2::2], fields[3::2], strict=True))
            if fields[0] == NAMESPACE:
                assert pairs["service"] == "rotation"
                strategies.add(pairs.get("Strategy"))
    from handlers.multi_user import PostgresMultiUser
    from handlers.single_user import PostgresSingleUser

    assert strategies - {None} == {PostgresSingleUser.name, PostgresMultiUser.name}


def _render(node: Any, *, verification: bool) -> str:
    """The template's DashboardBody with the HasVerification branch chosen, ${...} kept."""
    if isinstance(node, str):
        return node
    ((key, arg),) = node.items()
    if key == "Fn::Join":
        separator, parts = arg
        return str(separator).join(_render(p, verification=verification) for p in parts)
    if key == "Fn::If":
        condition, yes, no = arg
        assert condition == "HasVerification"
        return _render(yes if verification else no, verification=verification)
    assert key == "Fn::Sub", key
    assert isinstance(arg, str)
    return arg


@pytest.mark.parametrize("verification", [True, False], ids=["with-alarms", "without"])
def test_the_template_holds_the_described_dashboard(verification: bool) -> None:
    dashboard = TEMPLATE["Resources"]["Dashboard"]
    assert dashboard["Condition"] == "HasDashboard"
    text = _render(dashboard["Properties"]["DashboardBody"], verification=verification)
    alarms = TEMPLATE_ALARMS if verification else ()
    assert json.loads(text) == json.loads(dashboard_body(TEMPLATE_PANELS, alarm_arns=alarms))
    # Every placeholder names a pseudo parameter or a resource that exists whenever the
    # dashboard does (the alarms only on the HasVerification branch).
    for name in re.findall(r"\$\{([^}]+)\}", text):
        resource = name.split(".")[0]
        assert resource.startswith("AWS::") or resource in TEMPLATE["Resources"], name
        condition = TEMPLATE["Resources"].get(resource, {}).get("Condition")
        assert condition in (None, "HasVerification"), name


def test_the_dashboard_is_on_by_default_and_removable() -> None:
    assert TEMPLATE["Parameters"]["EnableDashboard"]["Default"] == "true"
    assert TEMPLATE["Conditions"]["HasDashboard"] == {
        "Fn::Equals": [{"Ref": "EnableDashboard"}, "true"]
    }
    assert TEMPLATE["Outputs"]["DashboardName"]["Condition"] == "HasDashboard"
