"""template.yaml: least privilege, the contract's handlers, optional parts behind conditions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rotation import parse_event
from rotation_tools.sam_template import load_template, resolve_function

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of a role's inline policies, both branches of each Fn::If."""
    found = []
    for policy in role["Properties"]["Policies"]:
        for item in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in item:
                found += [b for b in item["Fn::If"][1:] if isinstance(b, dict) and "Effect" in b]
            else:
                found.append(item)
    return found


ROLES = {name: r for name, r in RESOURCES.items() if r["Type"] == "AWS::IAM::Role"}
FUNCTIONS = {n: r for n, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}


def test_the_functions_use_the_contract_handlers() -> None:
    handlers = {r["Properties"]["Handler"] for r in FUNCTIONS.values()}
    assert handlers == {
        "handlers.postgres_single_user.lambda_handler",
        "handlers.postgres_multi_user.lambda_handler",
    }
    assert TEMPLATE["Globals"]["Function"]["Runtime"] in ("python3.12", "python3.13")
    assert TEMPLATE["Parameters"]["FunctionArchitecture"]["Default"] == "arm64"
    for function in FUNCTIONS.values():
        assert function["Metadata"]["BuildMethod"] == "makefile"


@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_wildcard_resources(role: str) -> None:
    for statement in _statements(ROLES[role]):
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources, statement


@pytest.mark.parametrize("role", sorted(ROLES))
def test_rotation_actions_are_scoped_to_the_named_secrets_and_this_function(role: str) -> None:
    (rotate,) = [
        s for s in _statements(ROLES[role]) if "secretsmanager:PutSecretValue" in s["Action"]
    ]
    assert rotate["Resource"] == {"Ref": "RotatedSecretArns"}
    condition = rotate["Condition"]["StringEquals"][
        "secretsmanager:resource/AllowRotationLambdaArn"
    ]
    suffix = "single-user" if role.startswith("Single") else "multi-user"
    assert condition["Fn::Sub"].endswith(f":function:${{AWS::StackName}}-{suffix}")
    function = next(
        f for f in FUNCTIONS.values() if f["Properties"]["Role"]["Fn::GetAtt"][0] == role
    )
    assert function["Properties"]["FunctionName"]["Fn::Sub"].endswith(suffix)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_nothing_the_code_does_not_call(role: str) -> None:
    actions = {a for s in _statements(ROLES[role]) for a in s["Action"]}
    assert "secretsmanager:GetRandomPassword" not in actions  # passwords are made locally
    assert not any(a.endswith(":*") for a in actions)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_kms_only_through_secrets_manager(role: str) -> None:
    for statement in _statements(ROLES[role]):
        if any(a.startswith("kms:") for a in statement["Action"]):
            assert "kms:ViaService" in statement["Condition"]["StringEquals"]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_vpc_permissions_only_with_a_vpc(role: str) -> None:
    managed = ROLES[role]["Properties"]["ManagedPolicyArns"]["Fn::If"]
    assert managed[0] == "HasVpc"
    with_vpc, without_vpc = managed[1], managed[2]
    assert any("AWSLambdaVPCAccessExecutionRole" in p["Fn::Sub"] for p in with_vpc)
    assert not any("VPC" in p["Fn::Sub"] for p in without_vpc)


def test_invoke_permissions_are_scoped_to_the_account() -> None:
    permissions = [r for r in RESOURCES.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert len(permissions) == 2
    for permission in permissions:
        properties = permission["Properties"]
        assert properties["Principal"] == "secretsmanager.amazonaws.com"
        assert properties["SourceAccount"] == {"Ref": "AWS::AccountId"}
        assert properties["Action"] == "lambda:InvokeFunction"


def test_optional_parts_sit_behind_conditions() -> None:
    assert RESOURCES["AttachedRotationSchedule"]["Condition"] == "AttachSecret"
    for name in ("RotationFailureTopic", "RotationFailureRule", "RotationFailureTopicPolicy"):
        assert RESOURCES[name]["Condition"] == "FailureAlarm"
    pattern = RESOURCES["RotationFailureRule"]["Properties"]["EventPattern"]
    assert "RotationFailed" in pattern["detail"]["eventName"]
    assert "AWS::ServerlessRepo::Application" in TEMPLATE["Metadata"]


def test_the_environment_mirrors_the_contract_with_defaults() -> None:
    config = resolve_function(TEMPLATE, "SingleUserFunction")
    assert config.handler == "handlers.postgres_single_user.lambda_handler"
    assert config.environment["SECRETS_MANAGER_ENDPOINT"].startswith("https://secretsmanager.")
    assert config.environment["EXCLUDE_CHARACTERS"] == ":/@\"'\\"
    assert config.environment["PASSWORD_LENGTH"] == "32"
    assert config.environment["REQUIRE_EACH_INCLUDED_TYPE"] == "true"
    overrides = {"SecretsManagerEndpoint": "http://127.0.0.1:1", "PasswordLength": "40"}
    overridden = resolve_function(TEMPLATE, "MultiUserFunction", parameter_overrides=overrides)
    assert overridden.environment["SECRETS_MANAGER_ENDPOINT"] == "http://127.0.0.1:1"
    assert overridden.environment["PASSWORD_LENGTH"] == "40"
    assert overridden.timeout_s == 60


def test_event_files_are_valid_rotation_events() -> None:
    files = sorted((ROOT / "events").glob("*Secret.json"))
    assert [f.stem for f in files] == ["createSecret", "finishSecret", "setSecret", "testSecret"]
    for path in files:
        assert parse_event(json.loads(path.read_text())).step.value == path.stem
    env = json.loads((ROOT / "events" / "env.json").read_text())
    declared = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    assert set(env["Parameters"]) <= declared
