"""The documentation's CDK example app (examples/cdk/app.py, included in docs/deploy/cdk.md)
synthesizes, with the construct wired as the page says."""

from __future__ import annotations

import runpy
from collections.abc import Mapping
from typing import Any

from aws_cdk import Stack, assertions

from tests.cdk.conftest import ROOT
from tests.cdk.stacks import of_type

EXAMPLE = ROOT / "examples" / "cdk" / "app.py"


def test_the_example_app_synthesizes() -> None:
    assert "app.synth()" in EXAMPLE.read_text()
    namespace: dict[str, Any] = runpy.run_path(str(EXAMPLE), run_name="example_app")
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
