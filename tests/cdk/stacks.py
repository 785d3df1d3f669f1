"""Stacks the tests synthesize: a secret (and its master, key, VPC) around PostgresRotation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, App, Stack, Validations, assertions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import AwsSolutionsChecks

from rotation_cdk import PostgresRotation


@dataclass
class Built:
    app: App
    stack: Stack
    rotation: PostgresRotation
    secret: secretsmanager.ISecret
    master: secretsmanager.ISecret | None = None
    key: kms.IKey | None = None
    vpc: ec2.IVpc | None = None

    def template(self) -> assertions.Template:
        return assertions.Template.from_stack(self.stack)

    def json(self) -> dict[str, Any]:
        return dict(self.template().to_json())

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.get_logical_id(construct.node.default_child))


def acknowledge(scope: Any, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))


def isolated_vpc(stack: Stack, *, endpoints: tuple[str, ...] = ("secretsmanager",)) -> ec2.Vpc:
    """Two isolated subnets (no NAT); interface endpoints for the named services."""
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    services = {
        "secretsmanager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
        "rds": ec2.InterfaceVpcEndpointAwsService.RDS,
    }
    for name in endpoints:
        endpoint = vpc.add_interface_endpoint(name, service=services[name])
        acknowledge(
            endpoint,
            "AwsSolutions-EC23",
            "the test VPC's endpoint admits the VPC's CIDR (CDK's default); not the construct's",
        )
    acknowledge(vpc, "AwsSolutions-VPC7", "a test VPC: flow logs are the application's choice")
    return vpc


def build(
    *,
    strategy: str = "single-user",
    nag: bool = False,
    with_master: bool | None = None,
    with_key: bool = False,
    vpc: str | None = None,
    boundary_policy: str | None = None,
    with_bus: bool = False,
    **options: Any,
) -> Built:
    """A stack with a secret and PostgresRotation; ``vpc`` is None, "isolated" (with a Secrets
    Manager endpoint), "isolated-bare" (no endpoint) or "egress" (private subnets with NAT)."""
    app = App()
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = Stack(app, "Test")
    key = kms.Key(stack, "Key", enable_key_rotation=True) if with_key else None
    secret = secretsmanager.Secret(stack, "Secret", encryption_key=key)
    master = None
    if with_master if with_master is not None else strategy == "multi-user":
        master = secretsmanager.Secret(stack, "Master", encryption_key=key)
        acknowledge(
            master,
            "AwsSolutions-SMG4",
            "a stand-in for the master secret, which RDS (ManageMasterUserPassword) or its "
            "own schedule rotates",
        )
    network: ec2.IVpc | None = None
    if vpc == "isolated":
        network = isolated_vpc(stack)
    elif vpc == "isolated-bare":
        network = isolated_vpc(stack, endpoints=())
    elif vpc == "egress":
        network = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
        acknowledge(network, "AwsSolutions-VPC7", "a test VPC: flow logs are the application's")
    if with_bus:
        options["event_bus"] = events.EventBus(stack, "Bus")
    if boundary_policy is not None:
        options["permissions_boundary"] = iam.ManagedPolicy.from_managed_policy_arn(
            stack, "Boundary", boundary_policy
        )
    rotation = PostgresRotation(
        stack,
        "Rotation",
        secret=secret,
        strategy=strategy,  # type: ignore[arg-type]
        master_secret=master,
        vpc=network,
        **options,
    )
    return Built(app, stack, rotation, secret, master, key, network)


def of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def role_statements(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    (role,) = of_type(template, "AWS::IAM::Role").values()
    (policy,) = role["Properties"]["Policies"]
    return list(policy["PolicyDocument"]["Statement"])
