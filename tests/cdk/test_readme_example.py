"""The README's CDK example app synthesizes, with the construct wired as it says."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack, assertions

from tests.cdk.conftest import ROOT
from tests.cdk.stacks import of_type


def _example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("#### AWS CDK") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_readme_example_app_synthesizes() -> None:
    code = _example()
    assert "app.synth()" in code
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102  # our own README
    stack: Stack = namespace["stack"]
    template = assertions.Template.from_stack(stack).to_json()
    (function,) = [
        f
        for f in of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "handlers.postgres_multi_user.lambda_handler"
    ]
    assert "VpcConfig" in function["Properties"]
    (schedule,) = of_type(template, "AWS::SecretsManager::RotationSchedule").values()
    assert schedule["Properties"]["RotationRules"] == {"AutomaticallyAfterDays": 30}
    # The database admits the rotation function's security group on its port.
    (function_group,) = function["Properties"]["VpcConfig"]["SecurityGroupIds"]
    ingress = [
        i["Properties"] for i in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
    ]
    (rule,) = [i for i in ingress if i["SourceSecurityGroupId"] == function_group]
    assert rule["FromPort"] == {"Fn::GetAtt": [_db(template), "Endpoint.Port"]}
    # The application user's secret names its master, as multi-user needs.
    templates = [
        r["Properties"]["GenerateSecretString"]["SecretStringTemplate"]
        for r in of_type(template, "AWS::SecretsManager::Secret").values()
    ]
    assert any("masterarn" in str(t) for t in templates)
    # No warning from the construct: the example has both endpoints.
    warnings = assertions.Annotations.from_stack(stack).find_warning(
        "*", assertions.Match.string_like_regexp("RDS interface endpoint")
    )
    assert not warnings


def _db(template: Mapping[str, Any]) -> str:
    (db,) = of_type(template, "AWS::RDS::DBInstance")
    return db
