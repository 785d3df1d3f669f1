"""RDS-managed master secrets and read replicas, against moto's RDS API.

moto names instance endpoints ``<id>.aaaaaaaaaa.us-east-1.rds.amazonaws.com``; the test
bed's certificate covers that wildcard and the counting connect function sends those names
to 127.0.0.1 (a DNS entry, in effect), so the rotations below are real ones.
"""

from __future__ import annotations

import secrets
from typing import Any

import boto3
import pytest

from handlers.rds import CLUSTER_TAG, INSTANCE_TAG, RdsTopology
from rotation import AWSCURRENT, SecretFormatError
from tests.fix_multi import MASTER, MultiBed

pytestmark = pytest.mark.functional


@pytest.fixture
def rds(moto_endpoint: Any) -> Any:
    return boto3.client("rds")


def _instance(rds: Any, port: int, source: str | None = None) -> dict[str, Any]:
    name = f"db-{secrets.token_hex(4)}"
    if source:
        return dict(
            rds.create_db_instance_read_replica(
                DBInstanceIdentifier=name, SourceDBInstanceIdentifier=source
            )["DBInstance"]
        )
    return dict(
        rds.create_db_instance(
            DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
            MasterUsername=MASTER, MasterUserPassword="irrelevant-here", Port=port,
            AllocatedStorage=20,
        )["DBInstance"]
    )  # fmt: skip


def test_an_rds_managed_master_secret_finds_its_database_through_the_tags(
    multi_tls: MultiBed, rds: Any
) -> None:
    multi = multi_tls
    instance = _instance(rds, multi.pg.port)
    host = instance["Endpoint"]["Address"]
    master_arn = str(
        multi.sm.create_secret(
            Name=f"rds!db-{secrets.token_hex(4)}",
            SecretString=f'{{"username": "{MASTER}", "password": "{multi.master_password}"}}',
            Tags=[{"Key": INSTANCE_TAG, "Value": instance["DBInstanceArn"]}],
        )["ARN"]
    )
    arn, user, _ = multi.app(master_arn=master_arn, host=host)
    run = multi.driver(multi.rotator(rds=RdsTopology(rds))).rotate(arn)
    assert run.succeeded
    assert multi.value(arn)["username"] == f"{user}_clone"
    assert multi.logs_in(multi.value(arn))
    # The master logged in at the instance's endpoint from the RDS API, over verified TLS.
    assert multi.connections.by_user[MASTER] == 1
    # One extra DescribeSecret for the master secret's tags: 10 calls, within the budget.
    assert len(multi.calls) == 10


def test_a_user_on_a_read_replica_is_rotated_through_the_primarys_master(
    multi_tls: MultiBed, rds: Any
) -> None:
    multi = multi_tls
    primary = _instance(rds, multi.pg.port)
    replica = _instance(rds, multi.pg.port, source=primary["DBInstanceIdentifier"])
    master_arn = multi.master_secret(host=primary["Endpoint"]["Address"])
    arn, _, _ = multi.app(master_arn=master_arn, host=replica["Endpoint"]["Address"])
    run = multi.driver(multi.rotator(rds=RdsTopology(rds))).rotate(arn)
    assert run.succeeded
    assert multi.labels(arn)[run.token] == [AWSCURRENT]


def test_a_master_for_an_unrelated_instance_is_refused(multi_tls: MultiBed, rds: Any) -> None:
    multi = multi_tls
    mine = _instance(rds, multi.pg.port)
    other = _instance(rds, multi.pg.port)
    master_arn = multi.master_secret(host=other["Endpoint"]["Address"])
    arn, _, _ = multi.app(master_arn=master_arn, host=mine["Endpoint"]["Address"])
    driver = multi.driver(multi.rotator(rds=RdsTopology(rds)))
    with pytest.raises(Exception, match="neither the user's host") as caught:
        driver.rotate(arn)
    assert isinstance(caught.value.__cause__, SecretFormatError)
    assert multi.connections.total == 0


def test_aurora_reader_endpoints_and_members_read_from_the_writer(rds: Any) -> None:
    name = f"aurora-{secrets.token_hex(4)}"
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername=MASTER,
        MasterUserPassword="irrelevant-here",
    )["DBCluster"]  # fmt: skip
    member = rds.create_db_instance(
        DBInstanceIdentifier=f"{name}-1", Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large", DBClusterIdentifier=name,
    )["DBInstance"]  # fmt: skip
    topology = RdsTopology(rds)
    writer = cluster["Endpoint"]
    assert topology.is_reader_of(cluster["ReaderEndpoint"], writer)
    assert topology.is_reader_of(member["Endpoint"]["Address"], writer)
    assert not topology.is_reader_of("elsewhere.example.com", writer)
    assert topology.primary_endpoint({CLUSTER_TAG: cluster["DBClusterArn"]}) == (
        writer,
        cluster["Port"],
    )


def test_a_master_secret_without_host_or_tags_is_a_clear_error(rds: Any) -> None:
    with pytest.raises(SecretFormatError, match="no 'host'"):
        RdsTopology(rds).primary_endpoint({})
