"""What the RDS API knows: where an RDS-managed master secret's database is, and which
endpoints read from which primary.

A master secret made by RDS (``ManageMasterUserPassword``) holds only ``username`` and
``password``; RDS tags it with ``aws:rds:primaryDbInstanceArn`` or
``aws:rds:primaryDbClusterArn``, and the endpoint comes from the RDS API.

Only the instance or cluster a host names is described, never the whole account: RDS
endpoint names carry their identifier (``<instance>.<hash>.<region>.rds.amazonaws.com``,
``<cluster>.cluster-ro-<hash>.<region>.rds.amazonaws.com``), and every answer is checked
against the API's own endpoint addresses, so a name that merely looks right proves nothing.
Every call is bounded by the step's deadline (:func:`rotation.clients.call_api`) and a
failure is an :class:`RdsError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from rotation.clients import call_api, rds_client
from rotation.errors import RotationError, SecretFormatError
from rotation.retry import Deadline, RetryPolicy
from rotation_contract.aws_errors import error_code, error_message

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

__all__ = [
    "CLUSTER_TAG",
    "INSTANCE_TAG",
    "RdsEndpoint",
    "RdsError",
    "RdsTopology",
    "parse_rds_endpoint",
]


class RdsError(RotationError):
    """An RDS API call failed, or the RDS API does not know the database a tag names (an
    RDS-managed master secret, a read replica's primary). The message names the call and the
    cause.

    Fix: allow ``rds:DescribeDBInstances`` and ``rds:DescribeDBClusters`` to the function's
    role; give it a route to the RDS API (an interface endpoint ``com.amazonaws.<region>.rds``
    or a NAT gateway); check the secret's tag names an existing instance or cluster.
    """


INSTANCE_TAG = "aws:rds:primaryDbInstanceArn"
CLUSTER_TAG = "aws:rds:primaryDbClusterArn"

# <identifier>.<kind-><hash>.<region>.rds.amazonaws.com, and China's
# <identifier>.<kind-><hash>.rds.<region>.amazonaws.com.cn. The kind prefix is absent for an
# instance; the hash has no hyphen, so "cluster-..." in the second label is never a hash.
# An RDS Proxy's additional endpoints read <name>.endpoint.proxy-<hash>....
_ENDPOINT = re.compile(
    r"^(?P<identifier>[a-z][a-z0-9-]{0,62})(?P<proxy_endpoint>\.endpoint)?"
    r"\.(?:(?P<kind>cluster-ro|cluster-custom|cluster|proxy)-)?[a-z0-9]+"
    r"\.(?:[a-z0-9-]+\.rds\.amazonaws\.com|rds\.[a-z0-9-]+\.amazonaws\.com\.cn)$"
)
_NOT_FOUND = frozenset({"DBInstanceNotFound", "DBInstanceNotFoundFault", "DBClusterNotFoundFault"})


@dataclass(frozen=True)
class RdsEndpoint:
    """An RDS endpoint host name, taken apart.

    ``kind`` is ``instance``, ``cluster`` (the writer endpoint), ``cluster-ro`` (the reader
    endpoint), ``cluster-custom`` or ``proxy``; ``identifier`` is the instance or cluster
    identifier (for the last two: the custom endpoint's or the proxy's name).
    """

    identifier: str
    kind: str


def parse_rds_endpoint(host: str) -> RdsEndpoint | None:
    """The identifier and kind an RDS endpoint name carries; None for any other host."""
    match = _ENDPOINT.match(host.lower().rstrip("."))
    if match is None or (match["proxy_endpoint"] and match["kind"] != "proxy"):
        return None
    return RdsEndpoint(match["identifier"], match["kind"] or "instance")


def _identifier(arn_or_id: str) -> str:
    # "arn:aws:rds:region:account:db:name" -> "name"; a plain identifier stays as it is.
    return arn_or_id.rsplit(":", 1)[-1] if arn_or_id.startswith("arn:") else arn_or_id


def _address(found: Mapping[str, Any] | None, *keys: str) -> str:
    """A lower-cased endpoint address from a described instance or cluster ("" if none)."""
    value: Any = found
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return str(value or "").lower()


class RdsTopology:
    """Read-only questions to the RDS API. The client is created on first use only.

    Parameters
    ----------
    client:
        An ``rds`` client; :func:`rotation.clients.rds_client` by default. Inject one to
        count calls.
    retry_policy:
        How throttling and transport failures are retried (bounded by the deadline).
    """

    def __init__(
        self, client: RDSClient | None = None, *, retry_policy: RetryPolicy | None = None
    ) -> None:
        self._client = client
        self.retry_policy = retry_policy or RetryPolicy()

    @property
    def client(self) -> RDSClient:
        if self._client is None:
            # Only RDS-managed master secrets and replica hosts need it.
            self._client = rds_client()
        return self._client

    def _describe(
        self, operation: str, key: str, identifier: str, deadline: Deadline
    ) -> dict[str, Any] | None:
        """The one instance or cluster ``identifier`` names; None when there is none."""
        parameter = "DBInstanceIdentifier" if key == "DBInstances" else "DBClusterIdentifier"
        api_name = "DescribeDBInstances" if key == "DBInstances" else "DescribeDBClusters"
        what = f"{api_name}({identifier})"
        try:
            method = getattr(self.client, operation)  # building the client can fail too
            response = call_api(
                lambda: method(**{parameter: identifier}),
                what=what,
                service="the RDS API",
                deadline=deadline,
                policy=self.retry_policy,
                error=RdsError,
            )
        except ClientError as exc:
            if error_code(exc) in _NOT_FOUND:
                return None
            raise _rds_error(what, exc) from exc
        except BotoCoreError as exc:  # no region or no credentials configured, ...
            raise RdsError(f"the RDS API call {what} could not be made: {exc}") from exc
        found = response.get(key) or []
        return dict(found[0]) if found else None

    def _instance(self, identifier: str, deadline: Deadline) -> dict[str, Any] | None:
        return self._describe("describe_db_instances", "DBInstances", identifier, deadline)

    def _cluster(self, identifier: str, deadline: Deadline) -> dict[str, Any] | None:
        return self._describe("describe_db_clusters", "DBClusters", identifier, deadline)

    def primary_endpoint(self, tags: Mapping[str, str], deadline: Deadline) -> tuple[str, int]:
        """Host and port of the database an RDS-managed master secret belongs to.

        Raises
        ------
        SecretFormatError
            When the secret carries neither RDS tag.
        RdsError
            When the API fails, or does not know the instance or cluster the tag names.
        """
        if INSTANCE_TAG in tags:
            identifier = _identifier(tags[INSTANCE_TAG])
            instance = self._instance(identifier, deadline)
            if instance is None or "Endpoint" not in instance:
                raise _missing("DB instance", identifier, INSTANCE_TAG)
            endpoint = instance["Endpoint"]
            return str(endpoint["Address"]), int(endpoint["Port"])
        if CLUSTER_TAG in tags:
            identifier = _identifier(tags[CLUSTER_TAG])
            cluster = self._cluster(identifier, deadline)
            if cluster is None or not cluster.get("Endpoint"):
                raise _missing("DB cluster", identifier, CLUSTER_TAG)
            return str(cluster["Endpoint"]), int(cluster["Port"])
        raise SecretFormatError(
            f"the master secret has no 'host' and no {INSTANCE_TAG} or {CLUSTER_TAG} tag "
            "to find its database by"
        )

    def is_reader_of(self, reader_host: str, primary_host: str, deadline: Deadline) -> bool:
        """Whether ``reader_host`` is a read replica of the instance at ``primary_host``, or
        an Aurora (or Multi-AZ DB cluster) reader endpoint or member instance of the cluster
        whose writer endpoint is ``primary_host``.

        Describes only what ``reader_host`` names: an instance (then its source instance or
        its cluster), or a cluster by its reader endpoint. A host that is not an RDS
        endpoint name is answered False without any call; so are custom cluster endpoints
        and RDS Proxy endpoints, whose names do not carry the cluster's identifier.
        """
        reader = parse_rds_endpoint(reader_host)
        if reader is None:
            return False
        reader_host, primary_host = reader_host.lower().rstrip("."), primary_host.lower()
        if reader.kind == "cluster-ro":
            cluster = self._cluster(reader.identifier, deadline)
            return (
                _address(cluster, "ReaderEndpoint") == reader_host
                and _address(cluster, "Endpoint") == primary_host
            )
        if reader.kind == "instance":
            return self._instance_reads_from(reader.identifier, reader_host, primary_host, deadline)
        return False

    def _instance_reads_from(
        self, identifier: str, reader_host: str, primary_host: str, deadline: Deadline
    ) -> bool:
        instance = self._instance(identifier, deadline)
        if instance is None or _address(instance, "Endpoint", "Address") != reader_host:
            return False  # not this account's instance of that name, in this region
        source = instance.get("ReadReplicaSourceDBInstanceIdentifier")
        if source:
            primary = self._instance(_identifier(str(source)), deadline)
            return _address(primary, "Endpoint", "Address") == primary_host
        cluster_id = instance.get("DBClusterIdentifier")
        if cluster_id:
            cluster = self._cluster(str(cluster_id), deadline)
            return _address(cluster, "Endpoint") == primary_host
        return False


def _rds_error(what: str, exc: ClientError) -> RdsError:
    code = error_code(exc, default="UnknownError")
    problem = f"the RDS API call {what} failed: {code}: {error_message(exc)}".rstrip(": ")
    if "AccessDenied" in code or "Unauthorized" in code:
        problem += "; the function's role needs rds:DescribeDBInstances and rds:DescribeDBClusters"
    return RdsError(problem)


def _missing(kind: str, identifier: str, tag: str) -> RdsError:
    return RdsError(
        f"the master secret's {tag} tag names {kind} {identifier!r}, which the RDS API does "
        "not know in this function's region and account (deleted, renamed, or elsewhere); "
        "give the master secret a 'host', or point 'masterarn' at the right secret"
    )
