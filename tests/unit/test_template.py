"""template.yaml: least privilege, the contract's handlers, optional parts behind conditions."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from handlers import ENTRYPOINTS
from handlers.pg_config import STRAGGLER_POLICIES
from rotation import parse_event
from rotation_tools.deploy.iam_policy import (
    KMS_KEY_ARN_PATTERN,
    SECRET_ARN_PATTERN,
    template_managed_policy_arns,
    template_statements,
    too_broad,
)
from rotation_tools.sam_expand import expand
from rotation_tools.sam_template import (
    TemplateError,
    load_template,
    resolve_function,
    resolve_resource,
)

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
    """The template's functions are the registry's entrypoints (handlers.ENTRYPOINTS), which
    are the contract's."""
    handlers = {r["Properties"]["Handler"] for r in FUNCTIONS.values()}
    assert handlers == {
        "handlers.postgres_single_user.lambda_handler",
        "handlers.postgres_multi_user.lambda_handler",
    }
    assert handlers == set(ENTRYPOINTS.values())
    for name, entrypoint in ENTRYPOINTS.items():
        module, _, function = entrypoint.rpartition(".")
        assert callable(getattr(importlib.import_module(module), function)), name
    assert TEMPLATE["Globals"]["Function"]["Runtime"] in ("python3.12", "python3.13")
    assert TEMPLATE["Parameters"]["FunctionArchitecture"]["Default"] == "arm64"
    for function in FUNCTIONS.values():
        assert function["Metadata"]["BuildMethod"] == "makefile"


# What CloudFormation deploys: the SAM expansion of the packaged template (the roles pass
# through it untouched), with the parameters resolved as a stack holds them.
EXPANDED = expand(TEMPLATE, code_uri="s3://example-artifacts/rotation.zip")
ACCOUNT_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret"
KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EVERYTHING_OPTIONAL = {
    "MasterSecretArn": f"{ACCOUNT_ARN}:rds!cluster-0a1b2c3d-AbCdEf",
    "KmsKeyArn": KEY_ARN,
    "EventBusName": "ops",
}


def _deployed(role: str, parameters: dict[str, str]) -> list[dict[str, Any]]:
    """The role's statements in a stack created with ``parameters`` (as CloudFormation would:
    refused values raise TemplateError)."""
    properties = resolve_resource(
        EXPANDED, role, parameter_overrides=parameters, region="eu-west-1"
    )
    assert properties is not None
    (policy,) = properties["Policies"]
    return list(policy["PolicyDocument"]["Statement"])


RDS_DESCRIBE = ["rds:DescribeDBInstances", "rds:DescribeDBClusters"]


@pytest.mark.parametrize("master", [False, True], ids=["no-master", "master"])
def test_single_user_may_locate_an_rds_managed_master_only_when_it_has_a_master(
    master: bool,
) -> None:
    """Single-user recovery finds an RDS-managed master's primary through the RDS API
    (handlers.master.locate_master): the role has the two describe calls with a master
    secret, and nothing of the RDS API without one."""
    parameters = {
        "RotatedSecretArns": f"{ACCOUNT_ARN}:myapp/prod/db-AbCdEf",
        **({"MasterSecretArn": EVERYTHING_OPTIONAL["MasterSecretArn"]} if master else {}),
    }
    statements = _deployed("SingleUserRole", parameters)
    rds = [s for s in statements if any(a.startswith("rds:") for a in s["Action"])]
    if master:
        (statement,) = rds
        assert statement["Sid"] == "FindRdsManagedMaster"
        assert statement["Action"] == RDS_DESCRIBE
        assert statement["Resource"] == [
            "arn:aws:rds:eu-west-1:123456789012:db:*",  # the stack's own account
            "arn:aws:rds:eu-west-1:123456789012:cluster:*",
        ]
    else:
        assert rds == []
    assert too_broad(statements) == []


@pytest.mark.parametrize(
    "rotated",
    [
        f"{ACCOUNT_ARN}:myapp/prod/db-AbCdEf",
        f"{ACCOUNT_ARN}:myapp/prod/db-??????",
        f"{ACCOUNT_ARN}:myapp/*",
        f"{ACCOUNT_ARN}:a-AbCdEf,{ACCOUNT_ARN}:b/*",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:111122223333:secret:app-??????",
    ],
    ids=["full", "name", "prefix", "two", "gov"],
)
@pytest.mark.parametrize("optional", [False, True], ids=["bare", "master-key-bus"])
@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_deployed_policy_reaches_only_the_named_secrets(
    role: str, rotated: str, optional: bool
) -> None:
    parameters = {"RotatedSecretArns": rotated, **(EVERYTHING_OPTIONAL if optional else {})}
    statements = _deployed(role, parameters)
    assert too_broad(statements) == []
    by_sid = {s["Sid"]: s for s in statements}
    assert by_sid["RotateTheNamedSecrets"]["Resource"] == rotated.split(",")
    if optional:
        assert by_sid["ReadTheMasterSecret"]["Resource"] == EVERYTHING_OPTIONAL["MasterSecretArn"]
        decrypt = by_sid["DecryptThroughSecretsManager"]
        assert decrypt["Resource"] == KEY_ARN
        assert decrypt["Condition"] == {
            "StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"},
            # The secrets' own context: the key decrypts nothing else for this role.
            "StringLike": {
                "kms:EncryptionContext:SecretARN": [
                    *rotated.split(","),
                    EVERYTHING_OPTIONAL["MasterSecretArn"],
                ]
            },
        }
    else:
        assert set(by_sid) <= {"RotateTheNamedSecrets", "FindRdsManagedMastersAndReplicas"}


WIDE = [
    "*",
    "arn:aws:secretsmanager:*:*:secret:*",
    f"{ACCOUNT_ARN}:*",
    f"{ACCOUNT_ARN}:?",
    f"{ACCOUNT_ARN}:*-??????",
    "arn:aws:secretsmanager:eu-west-1:*:secret:app-AbCdEf",
    "arn:aws:secretsmanager:*:111122223333:secret:app-AbCdEf",
    "arn:*:secretsmanager:eu-west-1:111122223333:secret:app-AbCdEf",
    f"{ACCOUNT_ARN}:app-AbCdEf,*",
    f"{ACCOUNT_ARN}:app*other",
    "",
    f"{ACCOUNT_ARN}:app-AbCdEf ",
]
WIDE_IDS = [
    "star", "all-regions-accounts", "all-names", "one-char", "any-name-suffix", "any-account",
    "any-region", "any-partition", "star-in-list", "inner-star", "empty", "trailing-space",
]  # fmt: skip


@pytest.mark.parametrize("value", WIDE, ids=WIDE_IDS)
def test_a_wildcard_never_reaches_the_rotation_grant(value: str) -> None:
    """CloudFormation refuses the parameter (its AllowedPattern) before anything is made."""
    for role in ROLES:
        with pytest.raises(TemplateError, match=r"parameter RotatedSecretArns: .* never a bare"):
            _deployed(role, {"RotatedSecretArns": value})


@pytest.mark.parametrize("parameter", ["MasterSecretArn", "KmsKeyArn"])
@pytest.mark.parametrize("value", ["*", f"{ACCOUNT_ARN}:*", "arn:aws:kms:eu-west-1:*:key/*"])
def test_a_wildcard_never_reaches_the_master_or_key_grant(parameter: str, value: str) -> None:
    parameters = {"RotatedSecretArns": f"{ACCOUNT_ARN}:app-AbCdEf", parameter: value}
    for role in ROLES:
        with pytest.raises(TemplateError, match=f"parameter {parameter}: .* no wildcard"):
            _deployed(role, parameters)


@pytest.mark.parametrize("value", WIDE[:-3], ids=WIDE_IDS[:-3])
def test_without_the_pattern_the_wildcard_would_reach_the_deployed_policy(value: str) -> None:
    """The check of the deployed policy sees through the Ref: with the parameters' patterns
    taken away, what the pattern refuses shows up as too broad in the resolved policy."""
    unguarded = json.loads(json.dumps(EXPANDED))
    for spec in unguarded["Parameters"].values():
        spec.pop("AllowedPattern", None)
    parameters = {"RotatedSecretArns": value, **EVERYTHING_OPTIONAL}
    for role in ROLES:
        properties = resolve_resource(
            unguarded, role, parameter_overrides=parameters, region="eu-west-1"
        )
        assert properties is not None
        findings = too_broad(properties["Policies"][0]["PolicyDocument"]["Statement"])
        sids = {finding.split(":")[0] for finding in findings}
        # Both the rotation grant and the key's encryption-context condition name it.
        assert sids == {"RotateTheNamedSecrets", "DecryptThroughSecretsManager"}, findings


def test_the_template_checks_arns_with_the_description_s_patterns() -> None:
    parameters = TEMPLATE["Parameters"]
    assert parameters["RotatedSecretArns"]["AllowedPattern"] == SECRET_ARN_PATTERN
    optional = {"MasterSecretArn": SECRET_ARN_PATTERN, "KmsKeyArn": KMS_KEY_ARN_PATTERN}
    for name, pattern in optional.items():
        # The same, or empty (the parameter's default: no such grant).
        assert parameters[name]["AllowedPattern"] == f"^({pattern[1:-1]})?$"
        assert parameters[name]["Default"] == ""


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
def test_kms_only_through_secrets_manager_for_these_secrets(role: str) -> None:
    kms = [s for s in _statements(ROLES[role]) if any(a.startswith("kms:") for a in s["Action"])]
    assert kms
    for statement in kms:
        assert "kms:ViaService" in statement["Condition"]["StringEquals"]
        assert "kms:EncryptionContext:SecretARN" in statement["Condition"]["StringLike"]


@pytest.mark.parametrize("role", sorted(ROLES))
def test_vpc_permissions_only_with_a_vpc(role: str) -> None:
    managed = ROLES[role]["Properties"]["ManagedPolicyArns"]["Fn::If"]
    assert managed[0] == "HasVpc"
    with_vpc, without_vpc = managed[1], managed[2]
    assert any("AWSLambdaVPCAccessExecutionRole" in p["Fn::Sub"] for p in with_vpc)
    assert not any("VPC" in p["Fn::Sub"] for p in without_vpc)


def test_invoke_permissions_are_scoped_to_the_account() -> None:
    permissions = [r for r in RESOURCES.values() if r["Type"] == "AWS::Lambda::Permission"]
    by_principal: dict[str, list[Any]] = {}
    for permission in permissions:
        properties = permission["Properties"]
        by_principal.setdefault(properties["Principal"], []).append(permission)
    assert len(by_principal["secretsmanager.amazonaws.com"]) == 2
    for permission in by_principal["secretsmanager.amazonaws.com"]:
        assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}
    for permission in permissions:
        assert permission["Properties"]["Action"] == "lambda:InvokeFunction"
    # The verification schedule's: only that rule may invoke, only when it exists.
    assert len(by_principal["events.amazonaws.com"]) == 2
    for permission in by_principal["events.amazonaws.com"]:
        assert permission["Condition"] in {"VerifySingleUser", "VerifyMultiUser"}
        assert permission["Properties"]["SourceArn"] == {"Fn::GetAtt": ["VerificationRule", "Arn"]}


def test_verification_schedule_sends_the_verification_event() -> None:
    """The rule's input, rendered for two secrets, is what events/verify.json documents."""
    rule = RESOURCES["VerificationRule"]
    assert rule["Condition"] == "HasVerification"
    assert RESOURCES["CredentialDriftAlarm"]["Condition"] == "HasVerification"
    documented = json.loads((ROOT / "events" / "verify.json").read_text())
    for target in rule["Properties"]["Targets"]:
        condition, spec, _ = target["Fn::If"]
        template, variables = spec["Input"]["Fn::Sub"]
        separator, _ = variables["Ids"]["Fn::Join"]
        rendered = json.loads(template.replace("${Ids}", separator.join(["a", "b/c"])))
        assert set(rendered) == set(documented)
        assert rendered == {"Action": documented["Action"], "SecretIds": ["a", "b/c"]}
        assert condition in {"VerifySingleUser", "VerifyMultiUser"}
    alarm = RESOURCES["CredentialDriftAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Namespace"]) == ("CredentialValid", "SecretsRotation")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)


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


def test_the_straggler_policy_reaches_the_multi_user_function() -> None:
    """StragglerPolicy: warn by default, refuse when asked; CloudFormation refuses a typo."""
    default = resolve_function(TEMPLATE, "MultiUserFunction")
    assert default.environment["STRAGGLER_POLICY"] == "warn"
    refusing = resolve_function(
        TEMPLATE, "MultiUserFunction", parameter_overrides={"StragglerPolicy": "refuse"}
    )
    assert refusing.environment["STRAGGLER_POLICY"] == "refuse"
    assert TEMPLATE["Parameters"]["StragglerPolicy"]["AllowedValues"] == list(STRAGGLER_POLICIES)
    assert "STRAGGLER_POLICY" not in resolve_function(TEMPLATE, "SingleUserFunction").environment


def test_event_files_are_valid_rotation_events() -> None:
    files = sorted((ROOT / "events").glob("*Secret.json"))
    assert [f.stem for f in files] == ["createSecret", "finishSecret", "setSecret", "testSecret"]
    for path in files:
        assert parse_event(json.loads(path.read_text())).step.value == path.stem
    env = json.loads((ROOT / "events" / "env.json").read_text())
    declared = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    assert set(env["Parameters"]) <= declared


STRATEGY_OF_ROLE = {"SingleUserRole": "single-user", "MultiUserRole": "multi-user"}


@pytest.mark.parametrize(("role", "strategy"), sorted(STRATEGY_OF_ROLE.items()))
def test_role_policies_are_the_shared_description(role: str, strategy: str) -> None:
    """The CDK construct renders the same description (rotation_tools.deploy.iam_policy)."""
    properties = ROLES[role]["Properties"]
    (policy,) = properties["Policies"]
    assert policy["PolicyDocument"]["Statement"] == template_statements(strategy)
    assert properties["ManagedPolicyArns"] == template_managed_policy_arns()


def test_every_role_is_covered_by_the_description() -> None:
    assert set(ROLES) == set(STRATEGY_OF_ROLE)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_permissions_boundary_applies_to_every_role_when_given(role: str) -> None:
    boundary = ROLES[role]["Properties"]["PermissionsBoundary"]
    assert boundary == {
        "Fn::If": [
            "HasPermissionsBoundary",
            {"Ref": "PermissionsBoundaryArn"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert TEMPLATE["Parameters"]["PermissionsBoundaryArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasPermissionsBoundary"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "PermissionsBoundaryArn"}, ""]}]
    }


def test_role_arns_are_outputs() -> None:
    outputs = TEMPLATE["Outputs"]
    for role in ROLES:
        (output,) = [o for o in outputs.values() if o["Value"] == {"Fn::GetAtt": [role, "Arn"]}]
        assert "Condition" not in output


def test_reserved_concurrency_is_optional_and_never_starves_rotation() -> None:
    parameter = TEMPLATE["Parameters"]["ReservedConcurrency"]
    assert parameter["Default"] == ""
    pattern = re.compile(parameter["AllowedPattern"])
    accepted = [
        v for v in ("", "0", "1", "9", "10", "25", "100", "010", "-5", "x") if pattern.fullmatch(v)
    ]
    assert accepted == ["", "10", "25", "100"]
    assert TEMPLATE["Globals"]["Function"]["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "HasReservedConcurrency",
            {"Ref": "ReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_checkov_skips_are_inline_with_a_reason(function: str) -> None:
    skips = FUNCTIONS[function]["Metadata"]["checkov"]["skip"]
    assert {s["id"] for s in skips} == {"CKV_AWS_116", "CKV_AWS_173"}
    for skip in skips:
        assert len(skip["comment"].split()) >= 8, skip


def test_serverless_repo_metadata_is_valid_and_follows_the_project_version() -> None:
    """The Serverless Application Repository's documented constraints on the metadata
    (SAM developer guide, "Metadata section properties"); intrinsic functions are not allowed."""
    app = TEMPLATE["Metadata"]["AWS::ServerlessRepo::Application"]
    assert all(isinstance(v, str | list) for v in app.values())
    version = (ROOT / "VERSION").read_text().strip()  # every distribution's version
    assert app["SemanticVersion"] == version
    assert re.fullmatch(r"\d+\.\d+\.\d+", app["SemanticVersion"])
    assert re.fullmatch(r"[a-zA-Z0-9\-]{1,140}", app["Name"])
    assert 1 <= len(app["Description"]) <= 256
    assert len(app["Author"]) <= 127
    assert re.fullmatch(r"[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?", app["Author"])
    assert len(app["Labels"]) <= 10
    for label in app["Labels"]:
        assert re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label)
    assert (ROOT / app["ReadmeUrl"]).is_file()
    if "LicenseUrl" in app:
        assert (ROOT / app["LicenseUrl"]).is_file()


def test_the_plain_cloudformation_expansion_keeps_the_guardrails() -> None:
    """What CloudFormation deploys from the packaged template: the SAM translator's output."""
    expanded = expand(TEMPLATE, code_uri="s3://example-artifacts/rotation.zip")
    assert "Transform" not in expanded
    resources = expanded["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::Serverless::")]
    functions = {n: r for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        properties = function["Properties"]
        assert properties["Code"] == {"S3Bucket": "example-artifacts", "S3Key": "rotation.zip"}
        assert properties["Role"] == FUNCTIONS[name]["Properties"]["Role"]
        assert properties["ReservedConcurrentExecutions"]["Fn::If"][0] == "HasReservedConcurrency"
        assert function["Metadata"]["checkov"] == FUNCTIONS[name]["Metadata"]["checkov"]
    for role in ROLES:
        assert resources[role] == RESOURCES[role]  # passed through untouched
    assert expanded["Outputs"] == TEMPLATE["Outputs"]


def test_the_expansion_wants_an_s3_uri() -> None:
    with pytest.raises(ValueError, match="s3://bucket/key"):
        expand(TEMPLATE, code_uri="build/lambda")


def test_only_the_rds_grant_may_name_every_resource_of_its_type() -> None:
    rds = "arn:aws:rds:eu-west-1:111122223333:db:*"
    assert too_broad([{"Sid": "FindRdsManagedMastersAndReplicas", "Resource": [rds]}]) == []
    assert too_broad([{"Sid": "PublishRotationEvents", "Resource": rds}]) == [
        f"PublishRotationEvents: {rds!r} names no resource before its wildcard"
    ]
    wide_key = "arn:aws:kms:eu-west-1:111122223333:key/*"
    assert too_broad([{"Sid": "DecryptThroughSecretsManager", "Resource": wide_key}])
    with pytest.raises(TypeError, match="not a resolved policy value"):
        too_broad([{"Sid": "RotateTheNamedSecrets", "Resource": {"Ref": "RotatedSecretArns"}}])
