"""The rotation functions' permissions, described once for every deployment surface.

``template.yaml`` (SAM, and plain CloudFormation after ``sam package``) and the CDK construct
(:mod:`rotation_cdk`) both grant exactly these statements; neither writes its own. The
template keeps them in YAML, so a test renders :func:`template_statements` and compares it
with the template's roles; the construct renders :func:`statements` with its own values.

Least privilege, grant by grant:

- the rotation actions only on the rotated secrets, and only while a secret names this very
  function as its rotation function (``secretsmanager:resource/AllowRotationLambdaArn``);
- read-only access to the master secret, when there is one;
- the RDS API's two describe calls, for RDS-managed master secrets and replicas
  (``handlers/rds.py``): always for multi-user; for single-user only with a master secret,
  whose recovery finds an RDS-managed master's primary through them
  (``handlers.master.locate_master``);
- ``kms:Decrypt`` / ``GenerateDataKey`` on customer managed keys, only through Secrets
  Manager (``kms:ViaService``) and only for the secrets above: Secrets Manager puts the
  secret's ARN in every KMS request's encryption context (``SecretARN``), so the key does
  nothing for this role on behalf of any other secret it encrypts
  (``kms:EncryptionContext:SecretARN``);
- ``events:PutEvents`` on the one event bus rotation events go to, only when there is one
  (``EVENT_BUS_NAME``; :mod:`rotation.events`);
- Lambda's basic execution policy (its logs), and the VPC one only with a VPC.

Every ARN a surface is given is checked against :data:`SECRET_ARN_PATTERN` (the template's
``AllowedPattern``, the construct at synth): a name, optionally followed by ``-??????`` (the
six characters Secrets Manager appends) or ``*``; never a bare ``*``, nor a wildcard in the
partition, region or account. :func:`too_broad` checks a policy *as deployed* (references
resolved) for the same thing.

No ``secretsmanager:GetRandomPassword``: passwords are generated locally. The verification
event (``handlers/verify_lambda.py``) needs nothing more: it describes and reads the secrets
the function rotates, which the first grant already allows (their ``AllowRotationLambdaArn``
names the function); its metric goes out in the log (EMF).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from handlers import STRATEGIES

__all__ = [
    "BASIC_EXECUTION_POLICY",
    "GRANTS",
    "KMS_KEY_ARN_PATTERN",
    "SECRET_ARN_PATTERN",
    "STRATEGIES",
    "VPC_EXECUTION_POLICY",
    "Grant",
    "Guard",
    "Target",
    "managed_policies",
    "statements",
    "template_managed_policy_arns",
    "template_statements",
    "too_broad",
    "uses_rds_api",
]


BASIC_EXECUTION_POLICY = "service-role/AWSLambdaBasicExecutionRole"
VPC_EXECUTION_POLICY = "service-role/AWSLambdaVPCAccessExecutionRole"

# The parts of an ARN a pattern may never leave open: a function given "*", or an ARN with
# a wildcard account or region, could act on every secret the account holds.
_PARTITION = "aws(-[a-z]+)*"
_REGION = "[a-z]{2}(-[a-z]+)+-[0-9]+"
_ACCOUNT = "[0-9]{12}"
# Secret names: ASCII letters, digits and /_+=.@- (CreateSecret); "!" in the names of
# secrets a service manages (rds!db-...). Secrets Manager appends "-" and six random
# characters to the name in the ARN: a pattern ends with the full ARN, "-??????" for those
# six characters, or "*" after a name prefix (myapp/*).
SECRET_ARN_PATTERN = (
    f"^arn:{_PARTITION}:secretsmanager:{_REGION}:{_ACCOUNT}:secret:"
    "[A-Za-z0-9/_+=.@!-]+(-[?]{6}|[*])?$"
)
KMS_KEY_ARN_PATTERN = f"^arn:{_PARTITION}:kms:{_REGION}:{_ACCOUNT}:key/[A-Za-z0-9-]+$"


class Target(enum.Enum):
    """What a grant's ``Resource`` is; each surface supplies the values."""

    ROTATED_SECRETS = "rotated secrets"
    MASTER_SECRET = "master secret"  # noqa: S105  # a label, not a password
    RDS_INSTANCES_AND_CLUSTERS = "RDS instances and clusters"
    KMS_KEYS = "KMS keys"
    EVENT_BUS = "event bus"


class Guard(enum.Enum):
    """A grant's ``Condition``: the operator and the key; each surface supplies the value."""

    THIS_FUNCTION_ROTATES = ("StringEquals", "secretsmanager:resource/AllowRotationLambdaArn")
    VIA_SECRETS_MANAGER = ("StringEquals", "kms:ViaService")
    # The ARNs (or patterns) of the rotated secrets and of the master secret: StringLike, as
    # the patterns' "*" and "?" match as they do in Resource.
    FOR_THESE_SECRETS = ("StringLike", "kms:EncryptionContext:SecretARN")


@dataclass(frozen=True)
class Grant:
    sid: str
    actions: tuple[str, ...]
    target: Target
    guards: tuple[Guard, ...] = ()
    strategies: tuple[str, ...] = STRATEGIES
    # Present only when the deployment has such a resource (a master secret, a CMK).
    optional: bool = False
    # Present only when the deployment has this other resource (what the grant serves).
    only_with: Target | None = None
    # The resource id may be "*" (every resource of its type, in this account and region):
    # only where the resource is known at rotation time alone.
    any_of_its_type: bool = False


GRANTS: tuple[Grant, ...] = (
    Grant(
        "RotateTheNamedSecrets",
        (
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
        ),
        Target.ROTATED_SECRETS,
        (Guard.THIS_FUNCTION_ROTATES,),
    ),
    Grant(
        "ReadTheMasterSecret",
        ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"),
        Target.MASTER_SECRET,
        optional=True,
    ),
    Grant(
        "FindRdsManagedMastersAndReplicas",
        ("rds:DescribeDBInstances", "rds:DescribeDBClusters"),
        Target.RDS_INSTANCES_AND_CLUSTERS,
        strategies=("multi-user",),
        any_of_its_type=True,
    ),
    # Single-user asks the RDS API only to locate an RDS-managed master for recovery.
    Grant(
        "FindRdsManagedMaster",
        ("rds:DescribeDBInstances", "rds:DescribeDBClusters"),
        Target.RDS_INSTANCES_AND_CLUSTERS,
        strategies=("single-user",),
        any_of_its_type=True,
        only_with=Target.MASTER_SECRET,
    ),
    Grant(
        "DecryptThroughSecretsManager",
        ("kms:Decrypt", "kms:GenerateDataKey"),
        Target.KMS_KEYS,
        (Guard.VIA_SECRETS_MANAGER, Guard.FOR_THESE_SECRETS),
        optional=True,
    ),
    Grant(
        "PublishRotationEvents",
        ("events:PutEvents",),
        Target.EVENT_BUS,
        optional=True,
    ),
)


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


def statements(
    strategy: str, *, resources: Mapping[Target, Any], guards: Mapping[Guard, Any]
) -> list[dict[str, Any]]:
    """The policy statements of ``strategy``'s role, as IAM JSON.

    ``resources`` gives each target's ``Resource`` value (a string, a list, or a surface's
    own expression); an optional grant whose target is absent is left out. ``guards`` gives
    each condition's value.
    """
    _check_strategy(strategy)
    rendered = []
    for grant in _grants_of(strategy):
        if grant.only_with is not None and grant.only_with not in resources:
            continue
        if grant.target not in resources:
            if grant.optional:
                continue
            raise ValueError(f"no resource given for {grant.target.value} ({grant.sid})")
        statement: dict[str, Any] = {
            "Sid": grant.sid,
            "Effect": "Allow",
            "Action": list(grant.actions),
            "Resource": resources[grant.target],
        }
        if grant.guards:
            condition: dict[str, dict[str, Any]] = {}
            for guard in grant.guards:
                operator, key = guard.value
                condition.setdefault(operator, {})[key] = guards[guard]
            statement["Condition"] = condition
        rendered.append(statement)
    return rendered


def uses_rds_api(strategy: str, *, master_secret: bool) -> bool:
    """Whether ``strategy``'s role may call the RDS API (with or without a master secret):
    what a deployment in a VPC must reach, and what cdk-nag is told about."""
    _check_strategy(strategy)
    return any(
        grant.target is Target.RDS_INSTANCES_AND_CLUSTERS
        and (grant.only_with is not Target.MASTER_SECRET or master_secret)
        for grant in _grants_of(strategy)
    )


def _grants_of(strategy: str) -> list[Grant]:
    return [grant for grant in GRANTS if strategy in grant.strategies]


_ARN = re.compile(
    r"arn:(?P<partition>[^:]*):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):"
    r"(?P<type>[A-Za-z-]+)[:/](?P<id>.*)"
)
_WILDCARD = re.compile(r"[*?]")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    else:  # an unresolved expression: resolve it first (too_broad's callers do)
        raise TypeError(f"not a resolved policy value: {value!r}")


def _arn_findings(arn: str, *, any_of_its_type: bool) -> list[str]:
    match = _ARN.fullmatch(arn)
    if match is None:
        return [f"{arn!r} is not an ARN"]
    open_parts = [
        part
        for part in ("partition", "service", "region", "account")
        if _WILDCARD.search(match[part])
    ]
    if open_parts:
        return [f"{arn!r} has a wildcard in its {' and '.join(open_parts)}"]
    resource_id = match["id"]
    if any_of_its_type and resource_id == "*":
        return []
    if not resource_id or _WILDCARD.match(resource_id):
        return [f"{arn!r} names no resource before its wildcard"]
    return []


def too_broad(statements: Sequence[Mapping[str, Any]]) -> list[str]:
    """What in a *resolved* policy (the statements as deployed: references replaced by the
    values given) reaches further than the description allows, one line each; empty if
    nothing does. A ``Resource`` or a ``SecretARN`` condition of ``*``, a wildcard in an
    ARN's partition, service, region or account, or a resource id that starts with one
    (except for a grant of :attr:`Grant.any_of_its_type`)."""
    by_sid = {grant.sid: grant for grant in GRANTS}
    operator, key = Guard.FOR_THESE_SECRETS.value
    findings = []
    for statement in statements:
        sid = statement.get("Sid", "")
        grant = by_sid.get(sid)
        any_of_its_type = grant is not None and grant.any_of_its_type
        arns = list(_strings(statement["Resource"]))
        secrets = statement.get("Condition", {}).get(operator, {}).get(key)
        if secrets is not None:
            arns += _strings(secrets)
        findings += [
            f"{sid or 'a statement'}: {finding}"
            for arn in arns
            for finding in _arn_findings(arn, any_of_its_type=any_of_its_type)
        ]
    return findings


def managed_policies(*, vpc: bool) -> list[str]:
    """AWS managed policy names (after ``arn:<partition>:iam::aws:policy/``) for the role."""
    return [BASIC_EXECUTION_POLICY, *([VPC_EXECUTION_POLICY] if vpc else [])]


# template.yaml's rendering: its parameters, conditions and intrinsic functions.
_TEMPLATE_FUNCTION_SUFFIX = {"single-user": "single-user", "multi-user": "multi-user"}
_TEMPLATE_CONDITIONS = {
    Target.MASTER_SECRET: "HasMasterSecret",
    Target.KMS_KEYS: "HasKmsKey",
    Target.EVENT_BUS: "HasEventBus",
}
_NO_VALUE = {"Ref": "AWS::NoValue"}


def template_statements(strategy: str) -> list[Any]:
    """The statements exactly as ``template.yaml`` must write them for ``strategy``'s role,
    in the form PyYAML reads the template (``!Sub x`` is ``{"Fn::Sub": x}``)."""
    _check_strategy(strategy)
    function_arn = (
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
        f"${{AWS::StackName}}-{_TEMPLATE_FUNCTION_SUFFIX[strategy]}"
    )
    resources: dict[Target, Any] = {
        Target.ROTATED_SECRETS: {"Ref": "RotatedSecretArns"},
        Target.MASTER_SECRET: {"Ref": "MasterSecretArn"},
        Target.RDS_INSTANCES_AND_CLUSTERS: [
            {"Fn::Sub": "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*"},
            {"Fn::Sub": "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:cluster:*"},
        ],
        Target.KMS_KEYS: {"Ref": "KmsKeyArn"},
        Target.EVENT_BUS: {
            "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
            "event-bus/${EventBusName}"
        },
    }
    guards = {
        Guard.THIS_FUNCTION_ROTATES: {"Fn::Sub": function_arn},
        Guard.VIA_SECRETS_MANAGER: {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"},
        # The rotated secrets, and the master secret when there is one (one list: a
        # parameter list and a string meet through Join and Split).
        Guard.FOR_THESE_SECRETS: {
            "Fn::If": [
                "HasMasterSecret",
                {
                    "Fn::Split": [
                        ",",
                        {
                            "Fn::Join": [
                                ",",
                                [
                                    {"Fn::Join": [",", {"Ref": "RotatedSecretArns"}]},
                                    {"Ref": "MasterSecretArn"},
                                ],
                            ]
                        },
                    ]
                },
                {"Ref": "RotatedSecretArns"},
            ]
        },
    }
    rendered: list[Any] = []
    for grant, statement in zip(
        _grants_of(strategy),
        statements(strategy, resources=resources, guards=guards),
        strict=True,
    ):
        condition = _TEMPLATE_CONDITIONS.get(grant.only_with or grant.target)
        rendered.append(
            statement if condition is None else {"Fn::If": [condition, statement, _NO_VALUE]}
        )
    return rendered


def template_managed_policy_arns() -> dict[str, Any]:
    """``ManagedPolicyArns`` as ``template.yaml`` must write it: the VPC policy only with a VPC."""

    def arns(names: Sequence[str]) -> list[dict[str, str]]:
        return [{"Fn::Sub": f"arn:${{AWS::Partition}}:iam::aws:policy/{name}"} for name in names]

    return {
        "Fn::If": ["HasVpc", arns(managed_policies(vpc=True)), arns(managed_policies(vpc=False))]
    }
