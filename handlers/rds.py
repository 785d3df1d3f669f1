"""What the RDS API knows: where an RDS-managed master secret's database is, and which
endpoints read from which primary.

A master secret made by RDS (``ManageMasterUserPassword``) holds only ``username`` and
``password``; RDS tags it with ``aws:rds:primaryDbInstanceArn`` or
``aws:rds:primaryDbClusterArn``, and the endpoint comes from the RDS API.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from rotation.errors import SecretFormatError, SecretsManagerError

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

__all__ = ["CLUSTER_TAG", "INSTANCE_TAG", "RdsTopology"]

INSTANCE_TAG = "aws:rds:primaryDbInstanceArn"
CLUSTER_TAG = "aws:rds:primaryDbClusterArn"


def _identifier(arn_or_id: str) -> str:
    # "arn:aws:rds:region:account:db:name" -> "name"; a plain identifier stays as it is.
    return arn_or_id.rsplit(":", 1)[-1] if arn_or_id.startswith("arn:") else arn_or_id


class RdsTopology:
    """Read-only questions to the RDS API. The client is created on first use only."""

    def __init__(self, client: RDSClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> RDSClient:
        if self._client is None:
            import boto3  # noqa: PLC0415  # only RDS-managed master secrets need it

            self._client = boto3.client("rds")
        return self._client

    def _call(self, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            method = getattr(self.client, what)
            return dict(method(**kwargs))
        except (ClientError, BotoCoreError) as exc:
            raise SecretsManagerError(f"the RDS API call {what} failed: {exc}") from exc

    def primary_endpoint(self, tags: Mapping[str, str]) -> tuple[str, int]:
        """Host and port of the database an RDS-managed master secret belongs to.

        Raises
        ------
        SecretFormatError
            When the secret carries neither RDS tag.
        """
        if INSTANCE_TAG in tags:
            found = self._call(
                "describe_db_instances", DBInstanceIdentifier=_identifier(tags[INSTANCE_TAG])
            )["DBInstances"]
            endpoint = found[0]["Endpoint"]
            return str(endpoint["Address"]), int(endpoint["Port"])
        if CLUSTER_TAG in tags:
            cluster = self._call(
                "describe_db_clusters", DBClusterIdentifier=_identifier(tags[CLUSTER_TAG])
            )["DBClusters"][0]
            return str(cluster["Endpoint"]), int(cluster["Port"])
        raise SecretFormatError(
            f"the master secret has no 'host' and no {INSTANCE_TAG} or {CLUSTER_TAG} tag "
            "to find its database by"
        )

    def _paginate(self, operation: str, key: str) -> Iterator[dict[str, Any]]:
        marker: str | None = None
        while True:
            page = self._call(operation, **({"Marker": marker} if marker else {}))
            yield from page.get(key, [])
            marker = page.get("Marker")
            if not marker:
                return

    def is_reader_of(self, reader_host: str, primary_host: str) -> bool:
        """Whether ``reader_host`` is a read replica of the instance at ``primary_host``, or
        an Aurora reader (reader endpoint or member instance) of the cluster there."""
        reader_host, primary_host = reader_host.lower(), primary_host.lower()
        instances = list(self._paginate("describe_db_instances", "DBInstances"))
        address = {str(i.get("Endpoint", {}).get("Address", "")).lower(): i for i in instances}
        by_id = {str(i["DBInstanceIdentifier"]): i for i in instances}
        replica = address.get(reader_host)
        source = (replica or {}).get("ReadReplicaSourceDBInstanceIdentifier")
        if source:
            primary = by_id.get(_identifier(str(source)))
            if primary and str(primary["Endpoint"]["Address"]).lower() == primary_host:
                return True
        for cluster in self._paginate("describe_db_clusters", "DBClusters"):
            if str(cluster.get("Endpoint", "")).lower() != primary_host:
                continue
            readers = {str(cluster.get("ReaderEndpoint", "")).lower()}
            for member in cluster.get("DBClusterMembers", []):
                instance = by_id.get(str(member.get("DBInstanceIdentifier")))
                if instance:
                    readers.add(str(instance.get("Endpoint", {}).get("Address", "")).lower())
            if reader_host in readers:
                return True
        return False
