"""Can the function reach Secrets Manager? Decided at synth time, when the app shows it.

A function in a VPC reaches Secrets Manager through a NAT gateway or an interface VPC
endpoint with private DNS. In isolated subnets (no NAT) without such an endpoint, every
rotation step times out: the deployment succeeds and the first rotation fails. When the
VPC is a ``ec2.Vpc`` defined in this app, the construct knows the subnets' kind and can see
every endpoint defined for it, so it refuses that at synth time. An imported VPC
(``Vpc.from_lookup``, ``from_vpc_attributes``) may have endpoints defined elsewhere: no
verdict, no refusal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import jsii
from aws_cdk import Annotations, IAspect
from aws_cdk import aws_ec2 as ec2
from constructs import IConstruct, IValidation

__all__ = ["RdsApiWarning", "RouteCheck", "has_endpoint", "in_isolated_subnets"]

RDS_API_WARNING = "pg-secrets-rotation:RdsApiRoute"

# com.amazonaws.<region>.<service>, possibly -fips; InterfaceVpcEndpointAwsService leaves
# its suffix (usually empty) as a trailing token until synth.
_LAZY_SUFFIX = r"(\$\{Token\[[^\]]+\]\})?$"
_SERVICE = {
    "secretsmanager": re.compile(r"\.secretsmanager(-fips)?" + _LAZY_SUFFIX),
    "rds": re.compile(r"\.rds(-fips)?" + _LAZY_SUFFIX),
}


def in_isolated_subnets(vpc: ec2.IVpc, selection: ec2.SubnetSelection | None) -> bool:
    """True when ``vpc`` is defined in this app and every selected subnet has no NAT route."""
    if not isinstance(vpc, ec2.Vpc):
        return False
    if selection is None:
        chosen = vpc.select_subnets()  # what lambda.Function chooses by default too
    else:
        chosen = vpc.select_subnets(
            availability_zones=selection.availability_zones,
            one_per_az=selection.one_per_az,
            subnet_filters=selection.subnet_filters,
            subnet_group_name=selection.subnet_group_name,
            subnet_type=selection.subnet_type,
            subnets=selection.subnets,
        )
    selected = {s.node.path for s in chosen.subnets}
    isolated = {s.node.path for s in vpc.isolated_subnets}
    return bool(selected) and selected <= isolated


def has_endpoint(root: IConstruct, vpc: ec2.IVpc, service: str) -> bool:
    """An interface endpoint for ``service`` with private DNS, anywhere in the app, in ``vpc``."""
    pattern = _SERVICE[service]
    for construct in _all(root):
        if not isinstance(construct, ec2.CfnVPCEndpoint):
            continue
        if construct.vpc_id != vpc.vpc_id or construct.vpc_endpoint_type != "Interface":
            continue
        # Without private DNS the regional name does not resolve to the endpoint.
        if construct.private_dns_enabled is False:
            continue
        if pattern.search(construct.service_name or ""):
            return True
    return False


def _all(root: IConstruct) -> Iterable[IConstruct]:
    return root.node.find_all()


@jsii.implements(IValidation)
class RouteCheck:
    """The construct's synth-time check; an error message per problem found."""

    def __init__(
        self, owner: IConstruct, vpc: ec2.IVpc, selection: ec2.SubnetSelection | None
    ) -> None:
        self._owner = owner
        self._vpc = vpc
        self._selection = selection

    def validate(self) -> list[str]:
        if not in_isolated_subnets(self._vpc, self._selection):
            return []
        if has_endpoint(self._owner.node.root, self._vpc, "secretsmanager"):
            return []
        return [
            f"the rotation function runs in isolated subnets of {self._vpc.node.path} (no NAT "
            "gateway) and that VPC has no Secrets Manager interface endpoint with private DNS: "
            "every rotation step would time out reaching Secrets Manager. Add one, e.g. "
            "vpc.add_interface_endpoint('SecretsManager', "
            "service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER), or choose subnets "
            "with a NAT route (vpc_subnets=ec2.SubnetSelection("
            "subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS))"
        ]


@jsii.implements(IAspect)
class RdsApiWarning:
    """The function may call the RDS API (RDS-managed master secrets; multi-user also read
    replicas; :func:`rotation_tools.deploy.iam_policy.uses_rds_api`): warn,
    at synth, when the function is in isolated subnets without an RDS API endpoint. Only a
    warning: whether those calls happen depends on secrets the app cannot see."""

    def __init__(
        self, owner: IConstruct, vpc: ec2.IVpc, selection: ec2.SubnetSelection | None
    ) -> None:
        self._owner = owner
        self._vpc = vpc
        self._selection = selection

    def visit(self, node: IConstruct) -> None:
        if node.node.path != self._owner.node.path:
            return
        if not in_isolated_subnets(self._vpc, self._selection):
            return
        if has_endpoint(self._owner.node.root, self._vpc, "rds"):
            return
        Annotations.of(self._owner).add_warning_v2(
            RDS_API_WARNING,
            "rotation in isolated subnets: if the master secret is RDS-managed (or, multi-user, "
            "the user's host is a read replica), the function calls the RDS API too, and this "
            "VPC has no RDS interface endpoint. Add vpc.add_interface_endpoint('Rds', "
            "service=ec2.InterfaceVpcEndpointAwsService.RDS), or acknowledge this warning "
            f"(Annotations.of(rotation).acknowledge_warning('{RDS_API_WARNING}', reason))",
        )
