"""``PostgresRotation``: one secret, its rotation function, its schedule."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from aws_cdk import (
    Acknowledgment,
    ArnFormat,
    Aspects,
    Aws,
    CfnResource,
    Duration,
    Fn,
    Names,
    Stack,
    Token,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from handlers import ENTRYPOINTS
from handlers.pg_config import (
    ENV_MASTER_MANAGED_ROLES,
    ENV_PREVIOUS_PASSWORD_TTL,
    ENV_STRAGGLER_POLICY,
    STRAGGLER_POLICIES,
    ManagedRoles,
)
from rotation.config import (
    ENV_ENDPOINT,
    ENV_EVENT_BUS_NAME,
    ENV_EXCLUDE_CHARACTERS,
    ENV_EXCLUDE_LOWERCASE,
    ENV_EXCLUDE_NUMBERS,
    ENV_EXCLUDE_PUNCTUATION,
    ENV_EXCLUDE_UPPERCASE,
    ENV_PASSWORD_LENGTH,
    ENV_REQUIRE_EACH_INCLUDED_TYPE,
    PasswordPolicy,
)
from rotation.errors import ConfigurationError
from rotation.password import generate_password
from rotation_cdk._artifact import artifact_directory
from rotation_cdk._network import RdsApiWarning, RouteCheck
from rotation_tools.deploy.dashboard import Panel, dashboard_body
from rotation_tools.deploy.iam_policy import (
    BASIC_EXECUTION_POLICY,
    SECRET_ARN_PATTERN,
    VPC_EXECUTION_POLICY,
    Guard,
    Target,
    managed_policies,
    statements,
    uses_rds_api,
)
from rotation_tools.deploy.ops_resources import (
    CHECKOV_SKIPS,
    DRIFT_ALARM,
    FAILURE_RULE_DESCRIPTION,
    FAILURE_RULE_PATTERN,
    NOT_CHECKED_ALARM,
    VERIFICATION_RULE_DESCRIPTION,
    AlarmSpec,
    verification_event,
)
from rotation_tools.deploy.rotation_window import check_rules

__all__ = ["HANDLERS", "PostgresRotation", "Strategy", "lambda_code", "password_environment"]

Strategy = Literal["single-user", "multi-user"]

# Each strategy's Lambda handler, from the one registry (handlers.ENTRYPOINTS).
HANDLERS: dict[str, str] = dict(ENTRYPOINTS)
# The default runtime; template.yaml uses the same.
RUNTIME = lambda_.Runtime.PYTHON_3_12
NAG_PACK = "AwsSolutions"
# AWS's rotation guide: concurrency below 10 can throttle a rotation function.
MIN_RESERVED_CONCURRENCY = 10


def _python_version(runtime: lambda_.Runtime) -> str:
    if runtime.family != lambda_.RuntimeFamily.PYTHON or not runtime.name.startswith("python3."):
        raise ValueError(f"runtime must be a Python 3 runtime, got {runtime.name}")
    return runtime.name.removeprefix("python")


def lambda_code(
    architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
    runtime: lambda_.Runtime = RUNTIME,
    *,
    cache_dir: Path | None = None,
) -> lambda_.Code:
    """The rotation functions' code, built the way ``sam build`` builds it (no Docker):
    wheels for ``architecture`` and ``runtime``'s Python version.

    Needs pip's access to PyPI the first time for an architecture and version; cached after
    that (see :mod:`rotation_cdk._artifact`).
    """
    directory = artifact_directory(
        arch=architecture.name, python_version=_python_version(runtime), cache_dir=cache_dir
    )
    return lambda_.Code.from_asset(str(directory))


# The contract's variables that have a property of their own, checked at synth: in
# ``environment=`` they would pass unchecked (and override the property).
_PASSWORD_KEYS = (
    ENV_PASSWORD_LENGTH,
    ENV_EXCLUDE_CHARACTERS,
    ENV_EXCLUDE_NUMBERS,
    ENV_EXCLUDE_PUNCTUATION,
    ENV_EXCLUDE_UPPERCASE,
    ENV_EXCLUDE_LOWERCASE,
    ENV_REQUIRE_EACH_INCLUDED_TYPE,
)
_SETTINGS_WITH_A_PROPERTY = {
    ENV_MASTER_MANAGED_ROLES: "master_managed_roles",
    ENV_PREVIOUS_PASSWORD_TTL: "previous_password_ttl",
    ENV_STRAGGLER_POLICY: "straggler_policy",
    ENV_EVENT_BUS_NAME: "event_bus",
    **dict.fromkeys(_PASSWORD_KEYS, "password_policy"),
}


def _refuse_settings_in(environment: Mapping[str, str] | None) -> None:
    for key in sorted(set(environment or {}) & set(_SETTINGS_WITH_A_PROPERTY)):
        raise ValueError(
            f"environment may not set {key}: use the construct's "
            f"{_SETTINGS_WITH_A_PROPERTY[key]}, which checks it at synth"
        )


def password_environment(policy: PasswordPolicy) -> dict[str, str]:
    """The contract's environment variables that spell ``policy``."""

    def flag(value: bool) -> str:
        return "true" if value else "false"

    return {
        ENV_PASSWORD_LENGTH: str(policy.length),
        ENV_EXCLUDE_CHARACTERS: policy.exclude_characters,
        ENV_EXCLUDE_NUMBERS: flag(policy.exclude_numbers),
        ENV_EXCLUDE_PUNCTUATION: flag(policy.exclude_punctuation),
        ENV_EXCLUDE_UPPERCASE: flag(policy.exclude_uppercase),
        ENV_EXCLUDE_LOWERCASE: flag(policy.exclude_lowercase),
        ENV_REQUIRE_EACH_INCLUDED_TYPE: flag(policy.require_each_included_type),
    }


def _schedule(schedule: Duration | str) -> dict[str, Any]:
    """Secrets Manager's rotation rules for a Duration (4 hours to 1000 days) or an expression."""
    if isinstance(schedule, str):
        if not schedule.startswith(("rate(", "cron(")):
            raise ValueError(
                f"schedule must be a Duration, rate(...) or cron(...), got {schedule!r}"
            )
        return {"schedule_expression": schedule}
    hours = schedule.to_hours(integral=False)
    if hours != int(hours) or not 4 <= hours <= 1000 * 24:
        raise ValueError(
            f"schedule must be whole hours between 4 hours and 1000 days, got {hours:g} hours"
        )
    if hours < 24:
        return {"schedule_expression": f"rate({int(hours)} hours)"}
    if hours % 24:
        raise ValueError(f"a schedule of a day or more must be whole days, got {hours:g} hours")
    return {"automatically_after_days": int(hours) // 24}


def _window(window: Duration | None) -> str | None:
    if window is None:
        return None
    hours = window.to_hours(integral=False)
    if hours != int(hours) or not 1 <= hours <= 24:
        raise ValueError(f"window must be whole hours from 1 to 24, got {hours:g} hours")
    return f"{int(hours)}h"


def _check_window(rules: dict[str, Any], window: str | None) -> None:
    """Secrets Manager's rule for the schedule and its window
    (rotation_tools.deploy.rotation_window, the same as template.yaml's parameters and
    `rotation plan`)."""
    expression = (
        rules.get("schedule_expression") or f"rate({rules['automatically_after_days']} days)"
    )
    check_rules(expression, window)


def _arn_pattern(secret: secretsmanager.ISecret) -> str:
    # An imported secret known only by name or partial ARN: Secrets Manager appends six
    # random characters to every secret's ARN.
    pattern = secret.secret_full_arn or f"{secret.secret_arn}-??????"
    # An ARN given as text (an imported secret) is checked as template.yaml checks its
    # parameters: "*", or a wildcard account or region, would reach every secret.
    if not Token.is_unresolved(pattern) and re.fullmatch(SECRET_ARN_PATTERN, pattern) is None:
        raise ValueError(
            f"secret ARN {pattern!r} reaches further than one secret: give the secret's ARN "
            "(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf), its name, or a "
            "name prefix and * (never a bare *, nor a wildcard region or account)"
        )
    return pattern


class PostgresRotation(Construct):
    """Rotate one PostgreSQL secret with this project's handlers, on a schedule.

    Creates the rotation function (Python 3.12, arm64 by default, the same artifact as
    ``sam build``), its role with the same least-privilege policy as ``template.yaml`` (from
    :mod:`rotation_tools.deploy.iam_policy`), the invoke permission for Secrets Manager (this
    account only), and the rotation schedule. Refuses at synth time what would fail at
    rotation time: multi-user without a master secret, a password policy with nothing to
    draw from, a reserved concurrency below 10, and a function in isolated subnets with no
    Secrets Manager endpoint (when the VPC is defined in this app).

    Parameters
    ----------
    secret
        The secret to rotate (its JSON as in the README).
    strategy
        ``"single-user"`` or ``"multi-user"``.
    master_secret
        The secret the rotated secret's ``masterarn`` names; required for multi-user,
        optional for single-user (a repair credential). Read-only access.
    vpc, vpc_subnets, security_groups
        Where the function runs when the database is in a VPC. ``function.connections``
        is what the database's security group must allow.
    schedule
        A Duration (4 hours to 1000 days) or a ``rate(...)`` / ``cron(...)`` expression.
    window
        How long each rotation window lasts (whole hours, 1 to 24); None for the default.
    rotate_immediately
        Rotate as soon as the schedule is created or changed (Secrets Manager's default).
    kms_key
        A customer managed key that encrypts the secret (the secret's own
        ``encryption_key`` and the master secret's are added when known).
    permissions_boundary
        A managed policy (or its ARN) set as the role's permissions boundary.
    failure_alarm
        True: an alarm on the function's errors and throttles and a rule on Secrets
        Manager's ``RotationFailed`` / ``RotationAbandoned`` events (as ``template.yaml``'s
        ``EnableFailureAlarm``), notifying a new SNS topic; a topic: notify that one instead
        (it must let ``events.amazonaws.com`` publish when it is not of this app); False:
        neither.
    event_bus
        An EventBridge bus the function publishes ``RotationSucceeded`` and
        ``RotationStepFailed`` to (``EVENT_BUS_NAME``, with ``events:PutEvents`` on that bus
        only); None: no events, no permission.
    master_managed_roles
        The roles the master may give a password without a login as them in this rotation
        (``MASTER_MANAGED_ROLES``, as ``template.yaml``'s ``MasterManagedRoles``: single-user
        recovery; names, a trailing ``*`` matches a prefix). None: the master never sets the
        password of a role whose credential was not proven by a login (see the README's
        *The master's authority*). Checked at synth.
    previous_password_ttl
        Multi-user only (``PREVIOUS_PASSWORD_TTL``, whole seconds): the previous user's
        password (AWSPREVIOUS) stops logging in this long after finishSecret (PostgreSQL
        ``VALID UNTIL``; open sessions go on). None: it works until the next rotation. A
        client still holding AWSPREVIOUS fails its next login after it; one more master
        login per rotation.
    straggler_policy
        Multi-user only (``STRAGGLER_POLICY``, as ``template.yaml``'s ``StragglerPolicy``):
        ``"warn"`` (log and count sessions still logged in as the user about to change, and
        go on) or ``"refuse"`` (fail setSecret naming them). None: ``warn``.
    verification_schedule
        How often to check that the secret's credentials still log in (``rate(1 hour)`` or
        an ``events.Schedule``): an EventBridge rule sends the function the verification
        event, with alarms on drift and on the secret not checked in time (as
        ``template.yaml``'s ``VerificationSchedule``); None: no verification.
    dashboard
        True (default): a CloudWatch dashboard of this function (the one ``template.yaml``
        has, from :mod:`rotation_tools.deploy.dashboard`), with this construct's alarms;
        False: none.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        secret: secretsmanager.ISecret,
        strategy: Strategy = "single-user",
        master_secret: secretsmanager.ISecret | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
        security_groups: Sequence[ec2.ISecurityGroup] | None = None,
        schedule: Duration | str | None = None,
        window: Duration | None = None,
        rotate_immediately: bool = True,
        kms_key: kms.IKey | None = None,
        permissions_boundary: iam.IManagedPolicy | str | None = None,
        failure_alarm: bool | sns.ITopic = False,
        event_bus: events.IEventBus | None = None,
        master_managed_roles: Sequence[str] | None = None,
        previous_password_ttl: Duration | None = None,
        straggler_policy: str | None = None,
        verification_schedule: events.Schedule | str | None = None,
        dashboard: bool = True,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        runtime: lambda_.Runtime = RUNTIME,
        timeout: Duration | None = None,
        memory_size: int = 256,
        reserved_concurrency: int | None = None,
        password_policy: PasswordPolicy | None = None,
        environment: Mapping[str, str] | None = None,
        function_name: str | None = None,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._check(
            strategy=strategy,
            secret=secret,
            master_secret=master_secret,
            reserved_concurrency=reserved_concurrency,
            password_policy=password_policy,
        )
        if previous_password_ttl is not None and strategy != "multi-user":
            raise ValueError(
                "previous_password_ttl is for the multi-user strategy only: single-user "
                "changes the password in place, so the old one stops at setSecret already"
            )
        if straggler_policy is not None:
            if strategy != "multi-user":
                raise ValueError(
                    "straggler_policy is for the multi-user strategy only: single-user has "
                    "no other user whose sessions could be left behind"
                )
            if straggler_policy not in STRAGGLER_POLICIES:
                raise ValueError(
                    f"straggler_policy must be one of {', '.join(STRAGGLER_POLICIES)}, "
                    f"got {straggler_policy!r}"
                )
        _refuse_settings_in(environment)
        managed_roles = ",".join(master_managed_roles or ())
        ManagedRoles.parse(managed_roles, source="master_managed_roles")  # refused at synth
        stack = Stack.of(self)
        rules = _schedule(schedule if schedule is not None else Duration.days(30))
        window_text = _window(window)
        _check_window(rules, window_text)
        self.strategy = strategy
        self.function_name = function_name or Names.unique_resource_name(
            self, max_length=64, separator="-"
        )
        # Named up front so the role can say "only while the secret names this function"
        # without a circular reference (template.yaml does the same with fixed names).
        function_arn = stack.format_arn(
            service="lambda",
            resource="function",
            resource_name=self.function_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"PostgreSQL {strategy} rotation of one secret (pg-secrets-rotation)",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(name)
                for name in managed_policies(vpc=vpc is not None)
            ],
            inline_policies={
                "rotate-secrets": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement.from_json(statement)
                        for statement in self._statements(
                            stack=stack,
                            strategy=strategy,
                            secret=secret,
                            master_secret=master_secret,
                            kms_key=kms_key,
                            function_arn=function_arn,
                            event_bus=event_bus,
                        )
                    ]
                )
            },
            permissions_boundary=self._boundary(permissions_boundary),
        )

        self.function = lambda_.Function(
            self,
            "Function",
            function_name=self.function_name,
            description=f"PostgreSQL {strategy} rotation (pg-secrets-rotation)",
            runtime=runtime,
            architecture=architecture,
            handler=HANDLERS[strategy],
            code=code or lambda_code(architecture, runtime),
            role=self.role,
            timeout=timeout or Duration.seconds(60),
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                # As template.yaml: the regional endpoint, and the password policy spelled out.
                ENV_ENDPOINT: f"https://secretsmanager.{Aws.REGION}.{Aws.URL_SUFFIX}",
                **password_environment(password_policy or PasswordPolicy()),
                # As template.yaml: empty means no events.
                ENV_EVENT_BUS_NAME: event_bus.event_bus_name if event_bus is not None else "",
                # As template.yaml: empty means none.
                ENV_MASTER_MANAGED_ROLES: managed_roles,
                **(
                    {ENV_PREVIOUS_PASSWORD_TTL: str(int(previous_password_ttl.to_seconds()))}
                    if previous_password_ttl is not None
                    else {}
                ),
                **(
                    {ENV_STRAGGLER_POLICY: straggler_policy} if straggler_policy is not None else {}
                ),
                **(environment or {}),
            },
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=list(security_groups) if security_groups else None,
        )

        self.invoke_permission = lambda_.CfnPermission(
            self,
            "SecretsManagerInvokes",
            action="lambda:InvokeFunction",
            function_name=self.function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=Aws.ACCOUNT_ID,
        )
        self.rotation_schedule = secretsmanager.CfnRotationSchedule(
            self,
            "Schedule",
            secret_id=secret.secret_arn,
            rotation_lambda_arn=self.function.function_arn,
            rotate_immediately_on_update=rotate_immediately,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                duration=window_text, **rules
            ),
        )
        # The first rotation starts when the schedule is created: the function must be
        # invocable by Secrets Manager and its role complete by then.
        self.rotation_schedule.node.add_dependency(self.invoke_permission, self.role)

        self.failure_topic: sns.ITopic | None = None
        self.failure_alarm: cloudwatch.Alarm | None = None
        if failure_alarm is not False:
            topic = self._alarm(failure_alarm)
            self._failure_rule(topic)

        self.verification_rule: events.Rule | None = None
        self.drift_alarm: cloudwatch.CfnAlarm | None = None
        self.not_checked_alarm: cloudwatch.CfnAlarm | None = None
        if verification_schedule is not None:
            self._verification(verification_schedule, secret)

        self.dashboard: cloudwatch.CfnDashboard | None = None
        if dashboard:
            self._dashboard(strategy)

        rds_api = uses_rds_api(strategy, master_secret=master_secret is not None)
        if vpc is not None:
            self.node.add_validation(RouteCheck(self, vpc, vpc_subnets))
            if rds_api:
                # At synth, like the route check: endpoints may be added after this construct.
                Aspects.of(self).add(RdsApiWarning(self, vpc, vpc_subnets))
        self._acknowledge_nag_findings(rds_api=rds_api, vpc=vpc is not None)
        self._skip_checkov_findings(vpc=vpc is not None, reserved=reserved_concurrency is not None)

    # -- synth-time refusals -------------------------------------------------------------

    @staticmethod
    def _check(
        *,
        strategy: str,
        secret: secretsmanager.ISecret,
        master_secret: secretsmanager.ISecret | None,
        reserved_concurrency: int | None,
        password_policy: PasswordPolicy | None,
    ) -> None:
        if strategy not in HANDLERS:
            raise ValueError(f"strategy must be one of {', '.join(HANDLERS)}, got {strategy!r}")
        if strategy == "multi-user" and master_secret is None:
            raise ValueError(
                "multi-user rotation needs master_secret: the secret's masterarn names the "
                "credential that creates the clone user and sets its password. Pass the "
                "master secret (an RDS-managed one works), or use strategy='single-user'"
            )
        if master_secret is not None and master_secret is secret:
            raise ValueError("master_secret must be another secret than the one rotated")
        if reserved_concurrency is not None and reserved_concurrency < MIN_RESERVED_CONCURRENCY:
            raise ValueError(
                f"reserved_concurrency {reserved_concurrency} would starve rotations: a "
                "throttled step fails and Secrets Manager retries the whole rotation later. "
                f"Use None (no reservation) or at least {MIN_RESERVED_CONCURRENCY}"
            )
        try:
            generate_password(password_policy or PasswordPolicy())
        except ConfigurationError as exc:
            raise ValueError(f"password_policy cannot make a password: {exc}") from exc

    # -- permissions ---------------------------------------------------------------------

    @staticmethod
    def _statements(
        *,
        stack: Stack,
        strategy: str,
        secret: secretsmanager.ISecret,
        master_secret: secretsmanager.ISecret | None,
        kms_key: kms.IKey | None,
        function_arn: str,
        event_bus: events.IEventBus | None = None,
    ) -> list[dict[str, Any]]:
        secret_arns = [_arn_pattern(secret)]
        resources: dict[Target, Any] = {
            Target.ROTATED_SECRETS: secret_arns,
            Target.RDS_INSTANCES_AND_CLUSTERS: [
                stack.format_arn(
                    service="rds",
                    resource=kind,
                    resource_name="*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
                for kind in ("db", "cluster")
            ],
        }
        if master_secret is not None:
            resources[Target.MASTER_SECRET] = [_arn_pattern(master_secret)]
            secret_arns = [*secret_arns, *resources[Target.MASTER_SECRET]]
        keys: list[kms.IKey] = []
        master_key = master_secret.encryption_key if master_secret is not None else None
        for key in (kms_key, secret.encryption_key, master_key):
            if key is not None and all(key.node.path != k.node.path for k in keys):
                keys.append(key)
        if keys:
            resources[Target.KMS_KEYS] = [key.key_arn for key in keys]
        if event_bus is not None:
            resources[Target.EVENT_BUS] = [event_bus.event_bus_arn]
        guards = {
            Guard.THIS_FUNCTION_ROTATES: function_arn,
            Guard.VIA_SECRETS_MANAGER: f"secretsmanager.{Aws.REGION}.{Aws.URL_SUFFIX}",
            # The key decrypts for this role only the secrets it rotates and the master.
            Guard.FOR_THESE_SECRETS: secret_arns,
        }
        return statements(strategy, resources=resources, guards=guards)

    def _boundary(self, boundary: iam.IManagedPolicy | str | None) -> iam.IManagedPolicy | None:
        if isinstance(boundary, str):
            return iam.ManagedPolicy.from_managed_policy_arn(self, "Boundary", boundary)
        return boundary

    # -- alarm ---------------------------------------------------------------------------

    def _alarm(self, failure_alarm: bool | sns.ITopic) -> sns.ITopic:
        if isinstance(failure_alarm, bool):
            self.failure_topic = sns.Topic(
                self, "FailureTopic", display_name="PostgreSQL rotation failed", enforce_ssl=True
            )
            self._acknowledge(
                self.failure_topic,
                "AwsSolutions-SNS2",
                (
                    "CloudWatch publishes alarm state changes (alarm name, metric, time; "
                    "never a secret value) and cannot publish to a topic encrypted with "
                    "the AWS managed SNS key. Pass failure_alarm=<your topic> to use one "
                    "encrypted with a customer managed key that admits CloudWatch."
                ),
            )
        else:
            self.failure_topic = failure_alarm
        period = Duration.minutes(5)
        problems = cloudwatch.MathExpression(
            expression="errors + throttles",
            using_metrics={
                "errors": self.function.metric_errors(period=period, statistic="Sum"),
                "throttles": self.function.metric_throttles(period=period, statistic="Sum"),
            },
            period=period,
            label="Failed or throttled rotation steps",
        )
        self.failure_alarm = problems.create_alarm(
            self,
            "FailureAlarm",
            alarm_description=(
                f"A rotation step of {self.function_name} failed or was throttled: run "
                "`rotation status SECRET` and read the function's log"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failure_alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.failure_topic))
        return self.failure_topic

    # -- dashboard -----------------------------------------------------------------------

    def alarm_arns(self) -> list[str]:
        """This construct's alarms' ARNs."""
        arns = [self.failure_alarm.alarm_arn] if self.failure_alarm is not None else []
        arns += [a.attr_arn for a in (self.drift_alarm, self.not_checked_alarm) if a is not None]
        return arns

    def _dashboard(self, strategy: str) -> None:
        alarms = {f"Alarm{i}": arn for i, arn in enumerate(self.alarm_arns())}
        panel = Panel(strategy.capitalize(), strategy, "${FunctionName}")
        body = dashboard_body([panel], alarm_arns=[f"${{{name}}}" for name in alarms])
        self.dashboard = cloudwatch.CfnDashboard(
            self,
            "Dashboard",
            dashboard_body=Fn.sub(body, {"FunctionName": self.function.function_name, **alarms}),
        )

    # -- Secrets Manager's own failure events, verification ------------------------------

    def _failure_rule(self, topic: sns.ITopic) -> None:
        self.failure_rule = events.Rule(
            self,
            "RotationFailureRule",
            description=FAILURE_RULE_DESCRIPTION,
            event_pattern=events.EventPattern(
                source=FAILURE_RULE_PATTERN["source"],
                detail_type=FAILURE_RULE_PATTERN["detail-type"],
                detail=FAILURE_RULE_PATTERN["detail"],
            ),
            targets=[events_targets.SnsTopic(topic)],
        )

    def _verification(
        self, schedule: events.Schedule | str, secret: secretsmanager.ISecret
    ) -> None:
        if isinstance(schedule, str):
            schedule = events.Schedule.expression(schedule)
        self.verification_rule = events.Rule(
            self,
            "VerificationRule",
            description=VERIFICATION_RULE_DESCRIPTION,
            schedule=schedule,
            targets=[
                events_targets.LambdaFunction(
                    self.function,
                    event=events.RuleTargetInput.from_object(
                        verification_event([secret.secret_arn])
                    ),
                )
            ],
        )
        self.drift_alarm = self._verification_alarm("CredentialDriftAlarm", DRIFT_ALARM)
        self.not_checked_alarm = self._verification_alarm(
            "CredentialNotCheckedAlarm", NOT_CHECKED_ALARM
        )

    def _verification_alarm(self, construct_id: str, spec: AlarmSpec) -> cloudwatch.CfnAlarm:
        properties = spec.properties()
        return cloudwatch.CfnAlarm(
            self,
            construct_id,
            alarm_description=properties["AlarmDescription"],
            namespace=properties["Namespace"],
            metric_name=properties["MetricName"],
            dimensions=[
                cloudwatch.CfnAlarm.DimensionProperty(name=d["Name"], value=d["Value"])
                for d in properties["Dimensions"]
            ],
            statistic=properties["Statistic"],
            period=properties["Period"],
            evaluation_periods=properties["EvaluationPeriods"],
            datapoints_to_alarm=properties["DatapointsToAlarm"],
            threshold=properties["Threshold"],
            comparison_operator=properties["ComparisonOperator"],
            treat_missing_data=properties["TreatMissingData"],
            alarm_actions=(
                [self.failure_topic.topic_arn] if self.failure_topic is not None else None
            ),
        )

    # -- cdk-nag -------------------------------------------------------------------------

    def _acknowledge_nag_findings(self, *, rds_api: bool, vpc: bool) -> None:
        """Acknowledge the deliberate AwsSolutions findings, each with its reason, on this
        construct's own resources only: nothing else in the app is silenced (aws-cdk-lib
        scopes acknowledgments to the construct they are made on; cdk-nag 3 reads them)."""
        managed = {
            BASIC_EXECUTION_POLICY: (
                "Lambda's basic execution policy (its own CloudWatch Logs), as in "
                "template.yaml; the rotation permissions are inline and scoped"
            ),
            VPC_EXECUTION_POLICY: (
                "Lambda's VPC execution policy (managing the function's network interfaces), "
                "attached only with a VPC, as in template.yaml; its EC2 describe actions "
                "support no resource-level scoping"
            ),
        }
        for name in managed_policies(vpc=vpc):
            arn = f"Policy::arn:<AWS::Partition>:iam::aws:policy/{name}"
            self._acknowledge(self.role, f"AwsSolutions-IAM4[{arn}]", managed[name])
        if rds_api:
            for kind in ("db", "cluster"):
                resource = f"arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:{kind}:*"
                self._acknowledge(
                    self.role,
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    "read-only rds:DescribeDBInstances/DescribeDBClusters for RDS-managed "
                    "master secrets (and, multi-user, read replicas): which instance or "
                    "cluster is known only at rotation time, from the secret's host and tags; "
                    "this account and region only",
                )
        self._acknowledge(
            self.function,
            "AwsSolutions-L1",
            "the Python runtime is the caller's choice (runtime=, default python3.12 as in "
            "template.yaml); the artifact is built for whichever is chosen",
        )

    # -- checkov -------------------------------------------------------------------------

    def _skip_checkov_findings(self, *, vpc: bool, reserved: bool) -> None:
        """The deliberate checkov findings on this construct's own resources, each with its
        reason (rotation_tools.deploy.ops_resources; template.yaml's functions carry the same)."""
        function_skips = ["CKV_AWS_116", "CKV_AWS_173"]
        function_skips += [] if reserved else ["CKV_AWS_115"]
        function_skips += [] if vpc else ["CKV_AWS_117"]
        self._checkov_skip(self.function, function_skips)
        if isinstance(self.failure_topic, sns.Topic) and self.failure_topic.node.scope is self:
            self._checkov_skip(self.failure_topic, ["CKV_AWS_26"])

    @staticmethod
    def _checkov_skip(scope: Construct, ids: list[str]) -> None:
        resource = scope.node.default_child
        if isinstance(resource, CfnResource):
            resource.add_metadata(
                "checkov", {"skip": [{"id": i, "comment": CHECKOV_SKIPS[i]} for i in ids]}
            )

    @staticmethod
    def _acknowledge(scope: Construct, rule: str, reason: str) -> None:
        # cdk-nag 3 names its findings "<pack>::<rule>[<finding>]".
        Validations.of(scope).acknowledge(Acknowledgment(id=f"{NAG_PACK}::{rule}", reason=reason))
