"""PostgresRotation synthesized: the resources, the policy (the same as template.yaml's), and
what it refuses at synth time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Duration, Stack, assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns

from rotation.config import PasswordPolicy, password_policy_from_env
from rotation.errors import ConfigurationError
from rotation_cdk import HANDLERS, password_environment
from rotation_tools.deploy.iam_policy import too_broad
from rotation_tools.sam_template import load_template, resolve_function
from tests.cdk.conftest import PSEUDO, ROOT, evaluate
from tests.cdk.stacks import build, isolated_vpc, of_type, role_statements

TEMPLATE = load_template(ROOT / "template.yaml")
TEMPLATE_ROLE = {"single-user": "SingleUserRole", "multi-user": "MultiUserRole"}


def _function(template: dict[str, Any]) -> dict[str, Any]:
    (function,) = of_type(template, "AWS::Lambda::Function").values()
    return function


def _shape(statements: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a statement grants, without the values that differ by surface."""
    return [
        (
            s["Sid"],
            s["Effect"],
            # CDK writes a single action as a string.
            [s["Action"]] if isinstance(s["Action"], str) else s["Action"],
            {op: sorted(keys) for op, keys in s.get("Condition", {}).items()},
        )
        for s in statements
    ]


def _template_statements(
    strategy: str, *, master: bool, key: bool, bus: bool = False
) -> list[dict[str, Any]]:
    """template.yaml's statements for a stack deployed with/without MasterSecretArn, KmsKeyArn,
    EventBusName."""
    conditions = {"HasMasterSecret": master, "HasKmsKey": key, "HasEventBus": bus}
    role = TEMPLATE["Resources"][TEMPLATE_ROLE[strategy]]
    picked = []
    for item in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
        if "Fn::If" in item:
            name, when_true, _ = item["Fn::If"]
            if conditions[name]:
                picked.append(when_true)
        else:
            picked.append(item)
    return picked


@pytest.mark.parametrize(
    ("strategy", "master", "key"),
    [
        ("single-user", False, False),
        ("single-user", True, True),
        ("multi-user", True, False),
        ("multi-user", True, True),
    ],
)
def test_the_role_grants_what_template_yaml_grants(strategy: str, master: bool, key: bool) -> None:
    built = build(strategy=strategy, with_master=master, with_key=key)
    statements = role_statements(built.json())
    assert _shape(statements) == _shape(_template_statements(strategy, master=master, key=key))


@pytest.mark.parametrize("strategy", ["single-user", "multi-user"])
def test_an_event_bus_gets_put_events_on_it_and_its_name(strategy: str) -> None:
    built = build(strategy=strategy, with_bus=True)
    document = built.json()
    statements = role_statements(document)
    assert _shape(statements) == _shape(
        _template_statements(strategy, master=strategy == "multi-user", key=False, bus=True)
    )
    (publish,) = [s for s in statements if s["Sid"] == "PublishRotationEvents"]
    assert publish["Action"] == "events:PutEvents"
    (bus_id,) = of_type(document, "AWS::Events::EventBus")
    assert publish["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    environment = _function(document)["Properties"]["Environment"]["Variables"]
    assert environment["EVENT_BUS_NAME"] == {"Ref": bus_id}


def test_single_user_resources() -> None:
    built = build()
    template = built.json()
    function = _function(template)["Properties"]
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["arm64"]
    assert (
        function["Handler"]
        == HANDLERS["single-user"]
        == TEMPLATE["Resources"]["SingleUserFunction"]["Properties"]["Handler"]
    )
    assert function["Timeout"] == 60
    assert function["MemorySize"] == 256
    assert "VpcConfig" not in function
    assert "ReservedConcurrentExecutions" not in function

    secret = built.logical_id(built.secret)
    (schedule,) = of_type(template, "AWS::SecretsManager::RotationSchedule").values()
    function_id = built.logical_id(built.rotation.function)
    assert schedule["Properties"] == {
        "SecretId": {"Ref": secret},
        "RotationLambdaARN": {"Fn::GetAtt": [function_id, "Arn"]},
        "RotateImmediatelyOnUpdate": True,
        "RotationRules": {"AutomaticallyAfterDays": 30},
    }
    (permission_id, permission), *_ = of_type(template, "AWS::Lambda::Permission").items()
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [function_id, "Arn"]},
        "Principal": "secretsmanager.amazonaws.com",
        "SourceAccount": {"Ref": "AWS::AccountId"},
    }
    (role_id,) = of_type(template, "AWS::IAM::Role")
    # The first rotation starts with the schedule: permission and role must exist by then.
    assert set(schedule["DependsOn"]) >= {permission_id, role_id}


def test_rotation_is_limited_to_the_secret_and_this_function() -> None:
    built = build()
    template = built.json()
    (rotate,) = [s for s in role_statements(template) if s["Sid"] == "RotateTheNamedSecrets"]
    assert rotate["Resource"] == {"Ref": built.logical_id(built.secret)}
    allowed = rotate["Condition"]["StringEquals"]["secretsmanager:resource/AllowRotationLambdaArn"]
    name = _function(template)["Properties"]["FunctionName"]
    assert isinstance(name, str)
    assert name == built.rotation.function_name
    assert evaluate(allowed) == (
        f"arn:aws:lambda:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:function:{name}"
    )


def test_nothing_beyond_the_description() -> None:
    built = build(strategy="multi-user", with_key=True)
    template = built.json()
    (role,) = of_type(template, "AWS::IAM::Role").values()
    assert [evaluate(arn) for arn in role["Properties"]["ManagedPolicyArns"]] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    assert not of_type(template, "AWS::IAM::Policy")  # no DefaultPolicy added behind our back
    actions = {a for s in role_statements(template) for a in s["Action"]}
    assert "secretsmanager:GetRandomPassword" not in actions
    for statement in role_statements(template):
        resources = statement["Resource"]
        assert "*" not in (resources if isinstance(resources, list) else [resources])


def test_multi_user_reads_the_master_and_the_rds_api() -> None:
    built = build(strategy="multi-user")
    template = built.json()
    assert _function(template)["Properties"]["Handler"] == HANDLERS["multi-user"]
    by_sid = {s["Sid"]: s for s in role_statements(template)}
    assert by_sid["ReadTheMasterSecret"]["Resource"] == {"Ref": built.logical_id(built.master)}
    assert by_sid["ReadTheMasterSecret"]["Action"] == [
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    ]
    assert [evaluate(r) for r in by_sid["FindRdsManagedMastersAndReplicas"]["Resource"]] == [
        "arn:aws:rds:eu-west-1:111122223333:db:*",
        "arn:aws:rds:eu-west-1:111122223333:cluster:*",
    ]


def test_multi_user_without_a_master_secret_is_refused() -> None:
    with pytest.raises(ValueError, match=r"multi-user rotation needs master_secret.*masterarn"):
        build(strategy="multi-user", with_master=False)


def test_single_user_may_have_a_master_for_repairs() -> None:
    """With a master secret, single-user recovery may have to find an RDS-managed master's
    primary through the RDS API (handlers.master.locate_master): the two describe calls
    come with the master, and only with it."""
    statements = role_statements(build(with_master=True).json())
    assert [s["Sid"] for s in statements] == [
        "RotateTheNamedSecrets",
        "ReadTheMasterSecret",
        "FindRdsManagedMaster",
    ]
    (rds,) = [s for s in statements if s["Sid"] == "FindRdsManagedMaster"]
    assert rds["Action"] == ["rds:DescribeDBInstances", "rds:DescribeDBClusters"]
    assert [evaluate(r) for r in rds["Resource"]] == [
        "arn:aws:rds:eu-west-1:111122223333:db:*",
        "arn:aws:rds:eu-west-1:111122223333:cluster:*",
    ]
    without = role_statements(build(with_master=False).json())
    assert not [a for s in without for a in s["Action"] if a.startswith("rds:")]


def test_the_master_cannot_be_the_rotated_secret() -> None:
    stack = Stack()
    secret = secretsmanager.Secret(stack, "Secret")
    from rotation_cdk import PostgresRotation

    with pytest.raises(ValueError, match="another secret"):
        PostgresRotation(
            stack, "R", secret=secret, strategy="multi-user", master_secret=secret, code=_inline()
        )


def _inline() -> lambda_.Code:
    return lambda_.Code.from_inline("handler = None")


def test_kms_keys_of_both_secrets_and_the_given_one_only_via_secrets_manager() -> None:
    built = build(strategy="multi-user", with_key=True)
    template = built.json()
    (decrypt,) = [
        s for s in role_statements(template) if s["Sid"] == "DecryptThroughSecretsManager"
    ]
    key = built.logical_id(built.key)
    # One key, named once (CDK writes a one-element list as a scalar).
    assert decrypt["Resource"] == {"Fn::GetAtt": [key, "Arn"]}
    assert decrypt["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    via = decrypt["Condition"]["StringEquals"]["kms:ViaService"]
    assert evaluate(via) == "secretsmanager.eu-west-1.amazonaws.com"
    # Only for the rotated secret and the master: Secrets Manager's encryption context.
    assert decrypt["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"] == [
        {"Ref": built.logical_id(built.secret)},
        {"Ref": built.logical_id(built.master)},
    ]

    other = build(kms_key=None)
    assert "DecryptThroughSecretsManager" not in {s["Sid"] for s in role_statements(other.json())}


def test_an_explicit_key_for_an_imported_secret() -> None:
    stack = Stack()
    key = kms.Key(stack, "Key")
    imported = secretsmanager.Secret.from_secret_name_v2(stack, "Imported", "myapp/prod/db")
    from rotation_cdk import PostgresRotation

    PostgresRotation(stack, "R", secret=imported, kms_key=key, code=_inline())
    template = assertions.Template.from_stack(stack).to_json()
    by_sid = {s["Sid"]: s for s in role_statements(template)}
    # Known only by name: Secrets Manager appends six characters to the ARN.
    assert evaluate(by_sid["RotateTheNamedSecrets"]["Resource"]) == (
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:myapp/prod/db-??????"
    )
    key_id = stack.get_logical_id(key.node.default_child)  # type: ignore[arg-type]
    decrypt = by_sid["DecryptThroughSecretsManager"]
    assert decrypt["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert evaluate(decrypt["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"]) == [
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:myapp/prod/db-??????"
    ]
    deployed = {s["Sid"]: evaluate(s) for s in role_statements(template)}
    # The key's ARN is a GetAtt of a key in this stack: as CloudFormation would resolve it.
    deployed["DecryptThroughSecretsManager"]["Resource"] = f"arn:aws:kms:eu-west-1:{'1' * 12}:key/k"
    assert too_broad(list(deployed.values())) == []


ACCOUNT_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret"


@pytest.mark.parametrize(
    ("form", "arn"),
    [
        # (CDK itself refuses "*" and a "complete" ARN without the six-character suffix.)
        ("complete", f"{ACCOUNT_ARN}:*-AbCdEf"),
        ("complete", "arn:aws:secretsmanager:eu-west-1:*:secret:app-AbCdEf"),
        ("complete", "arn:aws:secretsmanager:*:111122223333:secret:app-AbCdEf"),
        ("partial", f"{ACCOUNT_ARN}:*"),
        ("partial", "arn:aws:secretsmanager:*:*:secret:app"),
    ],
    ids=["any-name", "any-account", "any-region", "all-names", "anywhere"],
)
@pytest.mark.parametrize("which", ["secret", "master"])
def test_a_secret_arn_reaching_further_than_one_secret_is_refused(
    form: str, arn: str, which: str
) -> None:
    """As template.yaml's AllowedPattern: a wildcard never reaches the role's Resource."""
    stack = Stack()
    wide = (
        secretsmanager.Secret.from_secret_attributes(stack, "Wide", secret_complete_arn=arn)
        if form == "complete"
        else secretsmanager.Secret.from_secret_attributes(stack, "Wide", secret_partial_arn=arn)
    )
    narrow = secretsmanager.Secret(stack, "Secret")
    secret, master = (wide, narrow) if which == "secret" else (narrow, wide)
    from rotation_cdk import PostgresRotation

    with pytest.raises(ValueError, match=r"reaches further than one secret.*never a bare \*"):
        PostgresRotation(
            stack, "R", secret=secret, strategy="multi-user", master_secret=master, code=_inline()
        )


def test_an_imported_secret_s_complete_arn_is_granted_as_given() -> None:
    stack = Stack()
    arn = f"{ACCOUNT_ARN}:myapp/prod/db-AbCdEf"
    imported = secretsmanager.Secret.from_secret_attributes(stack, "I", secret_complete_arn=arn)
    from rotation_cdk import PostgresRotation

    PostgresRotation(stack, "R", secret=imported, code=_inline())
    statements = role_statements(assertions.Template.from_stack(stack).to_json())
    assert statements[0]["Resource"] == arn
    assert too_broad([evaluate(s) for s in statements]) == []


def test_the_environment_is_template_yaml_s() -> None:
    environment = _function(build().json())["Properties"]["Environment"]["Variables"]
    expected = resolve_function(TEMPLATE, "SingleUserFunction").environment
    assert set(environment) == set(expected)
    for name, value in expected.items():
        if name == "SECRETS_MANAGER_ENDPOINT":
            assert evaluate(environment[name]) == "https://secretsmanager.eu-west-1.amazonaws.com"
        else:
            assert environment[name] == value, name


def test_a_password_policy_is_spelled_as_the_contract_reads_it() -> None:
    policy = PasswordPolicy(length=40, exclude_characters="%", exclude_punctuation=True)
    environment = _function(build(password_policy=policy).json())["Properties"]["Environment"]
    assert password_policy_from_env(environment["Variables"]) == policy
    assert password_environment(PasswordPolicy()) == {
        k: v
        for k, v in resolve_function(TEMPLATE, "SingleUserFunction").environment.items()
        if k not in ("SECRETS_MANAGER_ENDPOINT", "EVENT_BUS_NAME", "MASTER_MANAGED_ROLES")
    }


def test_master_managed_roles_reach_the_function_and_a_bare_wildcard_is_refused() -> None:
    environment = _function(build().json())["Properties"]["Environment"]["Variables"]
    assert environment["MASTER_MANAGED_ROLES"] == ""  # none: recovery needs a login
    listed = build(master_managed_roles=["app_orders", "app_*"]).json()
    variables = _function(listed)["Properties"]["Environment"]["Variables"]
    assert variables["MASTER_MANAGED_ROLES"] == "app_orders,app_*"
    with pytest.raises(ConfigurationError, match="master_managed_roles"):
        build(master_managed_roles=["*"])


def test_the_straggler_policy_is_multi_user_and_checked_at_synth() -> None:
    refusing = build(strategy="multi-user", straggler_policy="refuse").json()
    variables = _function(refusing)["Properties"]["Environment"]["Variables"]
    assert variables["STRAGGLER_POLICY"] == "refuse"
    with pytest.raises(ValueError, match="straggler_policy must be one of warn, refuse"):
        build(strategy="multi-user", straggler_policy="refuses")
    with pytest.raises(ValueError, match="multi-user strategy only"):
        build(straggler_policy="refuse")


@pytest.mark.parametrize(
    ("key", "value", "instead"),
    [
        ("STRAGGLER_POLICY", "x", "straggler_policy"),
        ("MASTER_MANAGED_ROLES", "*", "master_managed_roles"),
        ("PASSWORD_LENGTH", "4", "password_policy"),
    ],
)
def test_a_checked_setting_cannot_come_through_environment(
    key: str, value: str, instead: str
) -> None:
    """environment= is merged last: a setting with a property of its own would pass there
    unchecked (a typo failing every setSecret, a bare * the master acts on)."""
    with pytest.raises(ValueError, match=f"environment may not set {key}: use .*{instead}"):
        build(strategy="multi-user", environment={key: value})


def test_a_password_policy_with_nothing_to_draw_from_is_refused() -> None:
    policy = PasswordPolicy(
        exclude_numbers=True,
        exclude_punctuation=True,
        exclude_uppercase=True,
        exclude_lowercase=True,
    )
    with pytest.raises(ValueError, match="password_policy cannot make a password"):
        build(password_policy=policy)


@pytest.mark.parametrize(
    ("schedule", "rules"),
    [
        (Duration.days(7), {"AutomaticallyAfterDays": 7}),
        (Duration.hours(48), {"AutomaticallyAfterDays": 2}),
        (Duration.hours(6), {"ScheduleExpression": "rate(6 hours)"}),
        (Duration.minutes(240), {"ScheduleExpression": "rate(4 hours)"}),
        ("cron(0 4 ? * SUN *)", {"ScheduleExpression": "cron(0 4 ? * SUN *)"}),
        ("rate(10 days)", {"ScheduleExpression": "rate(10 days)"}),
    ],
    ids=["7-days", "48-hours", "6-hours", "240-minutes", "cron", "rate"],
)
def test_schedules(schedule: Any, rules: dict[str, Any]) -> None:
    template = build(schedule=schedule, window=Duration.hours(3), rotate_immediately=False).json()
    (resource,) = of_type(template, "AWS::SecretsManager::RotationSchedule").values()
    assert resource["Properties"]["RotationRules"] == {**rules, "Duration": "3h"}
    assert resource["Properties"]["RotateImmediatelyOnUpdate"] is False


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": Duration.hours(2)}, "between 4 hours and 1000 days"),
        ({"schedule": Duration.days(1001)}, "between 4 hours and 1000 days"),
        ({"schedule": Duration.hours(30)}, "whole days"),
        ({"schedule": "weekly"}, "rate"),
        ({"window": Duration.hours(25)}, "window"),
        ({"window": Duration.minutes(90)}, "window"),
        ({"reserved_concurrency": 5}, "at least 10"),
    ],
    ids=["2h", "1001d", "30h", "word", "25h-window", "90min-window", "concurrency-5"],
)
def test_refused_settings(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**options)


def test_reserved_concurrency_when_asked() -> None:
    function = _function(build(reserved_concurrency=10).json())["Properties"]
    assert function["ReservedConcurrentExecutions"] == 10


@pytest.mark.parametrize("form", ["arn", "policy"])
def test_permissions_boundary(form: str) -> None:
    arn = "arn:aws:iam::111122223333:policy/guardrails/boundary"
    built = build(permissions_boundary=arn) if form == "arn" else build(boundary_policy=arn)
    (role,) = of_type(built.json(), "AWS::IAM::Role").values()
    assert role["Properties"]["PermissionsBoundary"] == arn


def test_architecture_and_runtime_are_the_callers() -> None:
    built = build(
        architecture=lambda_.Architecture.X86_64,
        runtime=lambda_.Runtime.PYTHON_3_13,
        code=_inline(),
    )
    function = _function(built.json())["Properties"]
    assert function["Architectures"] == ["x86_64"]
    assert function["Runtime"] == "python3.13"
    with pytest.raises(ValueError, match="Python 3 runtime"):
        build(runtime=lambda_.Runtime.NODEJS_22_X)


def test_failure_alarm_with_a_new_topic() -> None:
    built = build(failure_alarm=True)
    template = built.json()
    (topic_id,) = of_type(template, "AWS::SNS::Topic")
    (alarm,) = of_type(template, "AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    expressions = [m.get("Expression") for m in alarm["Properties"]["Metrics"]]
    assert "errors + throttles" in expressions
    metrics = [
        m["MetricStat"]["Metric"] for m in alarm["Properties"]["Metrics"] if "MetricStat" in m
    ]
    assert sorted(m["MetricName"] for m in metrics) == ["Errors", "Throttles"]
    function_id = built.logical_id(built.rotation.function)
    for metric in metrics:
        assert metric["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    (topic_policy,) = of_type(template, "AWS::SNS::TopicPolicy").values()  # enforce_ssl
    # enforce_ssl's deny, and EventBridge's publish for the RotationFailed rule (test_parity).
    (deny,) = [
        s
        for s in topic_policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
    ]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_failure_alarm_to_a_given_topic() -> None:
    app_topic_holder: dict[str, sns.ITopic] = {}

    def topic_for(stack: Stack) -> sns.ITopic:
        app_topic_holder["t"] = sns.Topic.from_topic_arn(
            stack, "Ops", "arn:aws:sns:eu-west-1:111122223333:ops"
        )
        return app_topic_holder["t"]

    stack = Stack()
    secret = secretsmanager.Secret(stack, "Secret")
    from rotation_cdk import PostgresRotation

    rotation = PostgresRotation(
        stack, "R", secret=secret, failure_alarm=topic_for(stack), code=_inline()
    )
    template = assertions.Template.from_stack(stack).to_json()
    assert not of_type(template, "AWS::SNS::Topic")
    (alarm,) = of_type(template, "AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["AlarmActions"] == ["arn:aws:sns:eu-west-1:111122223333:ops"]
    assert rotation.failure_topic is app_topic_holder["t"]


def test_the_default_code_is_the_sam_build_artifact() -> None:
    built = build()
    template = built.template()
    function = built.rotation.function.node.default_child
    assert isinstance(function, lambda_.CfnFunction)
    assets = Path(built.app.outdir)
    del template
    (asset,) = [p for p in assets.iterdir() if p.name.startswith("asset.")]
    assert (asset / "handlers" / "postgres_single_user.py").is_file()
    assert (asset / "rotation_contract" / "pg" / "certs").is_dir()
    assert list(asset.glob("pg_secrets_rotation-*.dist-info/METADATA"))  # its version
    assert (asset / "psycopg").is_dir()
    assert not (asset / "boto3").exists()  # the runtime has it, as in sam build
    # arm64 wheels: psycopg-binary's libpq is built for aarch64.
    libs = [p.name for p in asset.rglob("*.so*") if "psycopg_binary" in str(p)]
    assert any("aarch64" in name for name in libs), libs


def test_vpc_function_in_isolated_subnets_with_an_endpoint() -> None:
    built = build(vpc="isolated")
    template = built.json()
    function = _function(template)["Properties"]
    assert len(function["VpcConfig"]["SubnetIds"]) == 2
    (role,) = of_type(template, "AWS::IAM::Role").values()
    assert [evaluate(arn) for arn in role["Properties"]["ManagedPolicyArns"]] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    ]
    assert built.rotation.function.connections.security_groups  # for the database to allow


def test_isolated_subnets_without_a_route_to_secrets_manager_are_refused() -> None:
    built = build(vpc="isolated-bare")
    with pytest.raises(RuntimeError, match=r"no Secrets Manager interface endpoint.*time out"):
        built.template()


def test_an_endpoint_added_after_the_construct_counts() -> None:
    built = build(vpc="isolated-bare")
    assert isinstance(built.vpc, ec2.Vpc)
    built.vpc.add_interface_endpoint(
        "Later", service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER
    )
    built.template()


def test_an_endpoint_without_private_dns_does_not_count() -> None:
    built = build(vpc="isolated-bare")
    assert isinstance(built.vpc, ec2.Vpc)
    built.vpc.add_interface_endpoint(
        "NoDns",
        service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        private_dns_enabled=False,
    )
    with pytest.raises(RuntimeError, match="no Secrets Manager interface endpoint"):
        built.template()


def test_subnets_with_a_nat_route_need_no_endpoint() -> None:
    build(vpc="egress").template()


def test_an_imported_vpc_cannot_be_judged_and_is_accepted() -> None:
    stack = Stack()
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Imported",
        vpc_id="vpc-0123",
        availability_zones=["eu-west-1a"],
        isolated_subnet_ids=["subnet-0123"],
    )
    secret = secretsmanager.Secret(stack, "Secret")
    from rotation_cdk import PostgresRotation

    PostgresRotation(
        stack,
        "R",
        secret=secret,
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        code=_inline(),
    )
    assertions.Template.from_stack(stack)


def test_multi_user_in_isolated_subnets_warns_about_the_rds_api() -> None:
    warning = assertions.Match.string_like_regexp("RDS interface endpoint")
    built = build(strategy="multi-user", vpc="isolated")
    built.template()
    found = assertions.Annotations.from_stack(built.stack).find_warning("*", warning)
    assert [w.id for w in found] == ["/Test/Rotation"]

    with_rds = build(strategy="multi-user", vpc="isolated")
    assert isinstance(with_rds.vpc, ec2.Vpc)
    with_rds.vpc.add_interface_endpoint("Rds", service=ec2.InterfaceVpcEndpointAwsService.RDS)
    with_rds.template()
    assert not assertions.Annotations.from_stack(with_rds.stack).find_warning("*", warning)


def test_isolated_vpc_helper_is_isolated() -> None:
    stack = Stack()
    vpc = isolated_vpc(stack)
    assert vpc.isolated_subnets
    assert not vpc.private_subnets
