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
from botocore.awsrequest import AWSResponse, HTTPHeaders

from handlers.rds import (
    CLUSTER_TAG,
    INSTANCE_TAG,
    RdsEndpoint,
    RdsError,
    RdsTopology,
    parse_rds_endpoint,
)
from rotation import AWSCURRENT, Deadline, RetryPolicy, SecretFormatError, SecretsManagerError
from rotation.clients import rds_client
from tests.fix_multi import MASTER, MultiBed
from tests.fix_silent import SilentServer, frozen_deadline

pytestmark = pytest.mark.functional

DEADLINE = Deadline.in_seconds(3600)


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
    assert topology.is_reader_of(cluster["ReaderEndpoint"], writer, DEADLINE)
    assert topology.is_reader_of(member["Endpoint"]["Address"], writer, DEADLINE)
    assert not topology.is_reader_of("elsewhere.example.com", writer, DEADLINE)
    assert topology.primary_endpoint({CLUSTER_TAG: cluster["DBClusterArn"]}, DEADLINE) == (
        writer,
        cluster["Port"],
    )


def test_a_master_secret_without_host_or_tags_is_a_clear_error(rds: Any) -> None:
    with pytest.raises(SecretFormatError, match="no 'host'"):
        RdsTopology(rds).primary_endpoint({}, DEADLINE)


# -- only what the host names is described ------------------------------------------------


class RdsCalls:
    """Records every RDS operation a client makes, with the identifier it asked for."""

    def __init__(self, client: Any) -> None:
        self.made: list[tuple[str, str]] = []
        client.meta.events.register("before-parameter-build.rds.*", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        identifier = params.get("DBInstanceIdentifier") or params.get("DBClusterIdentifier")
        self.made.append((model.name, str(identifier)))


def _decoys(rds: Any, port: int) -> None:
    """Other instances in the account: a lookup that pages through everything meets them."""
    for _ in range(3):
        _instance(rds, port)


def test_a_replica_host_describes_only_the_replica_and_its_source(
    multi_tls: MultiBed, rds: Any
) -> None:
    multi = multi_tls
    _decoys(rds, multi.pg.port)
    primary = _instance(rds, multi.pg.port)
    replica = _instance(rds, multi.pg.port, source=primary["DBInstanceIdentifier"])
    master_arn = multi.master_secret(host=primary["Endpoint"]["Address"])
    arn, _, _ = multi.app(master_arn=master_arn, host=replica["Endpoint"]["Address"])
    calls = RdsCalls(rds)
    run = multi.driver(multi.rotator(rds=RdsTopology(rds))).rotate(arn)
    assert run.succeeded
    assert calls.made == [
        ("DescribeDBInstances", replica["DBInstanceIdentifier"]),
        ("DescribeDBInstances", primary["DBInstanceIdentifier"]),
    ]


def test_an_rds_managed_master_secret_describes_only_its_instance(
    multi_tls: MultiBed, rds: Any
) -> None:
    multi = multi_tls
    _decoys(rds, multi.pg.port)
    instance = _instance(rds, multi.pg.port)
    master_arn = str(
        multi.sm.create_secret(
            Name=f"rds!db-{secrets.token_hex(4)}",
            SecretString=f'{{"username": "{MASTER}", "password": "{multi.master_password}"}}',
            Tags=[{"Key": INSTANCE_TAG, "Value": instance["DBInstanceArn"]}],
        )["ARN"]
    )
    arn, _, _ = multi.app(master_arn=master_arn, host=instance["Endpoint"]["Address"])
    calls = RdsCalls(rds)
    assert multi.driver(multi.rotator(rds=RdsTopology(rds))).rotate(arn).succeeded
    # The master's host is the user's host: no reader question, one call.
    assert calls.made == [("DescribeDBInstances", instance["DBInstanceIdentifier"])]


def _aurora(rds: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    name = f"aurora-{secrets.token_hex(4)}"
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=name, Engine="aurora-postgresql", MasterUsername=MASTER,
        MasterUserPassword="irrelevant-here",
    )["DBCluster"]  # fmt: skip
    member = rds.create_db_instance(
        DBInstanceIdentifier=f"{name}-1", Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large", DBClusterIdentifier=name,
    )["DBInstance"]  # fmt: skip
    return dict(cluster), dict(member)


def test_aurora_questions_describe_only_the_named_cluster_or_member(rds: Any) -> None:
    cluster, member = _aurora(rds)
    _aurora(rds)  # another cluster in the account
    topology = RdsTopology(rds)
    writer, name = cluster["Endpoint"], cluster["DBClusterIdentifier"]

    calls = RdsCalls(rds)
    assert topology.is_reader_of(cluster["ReaderEndpoint"].upper(), writer, DEADLINE)
    assert calls.made == [("DescribeDBClusters", name)]

    calls.made.clear()
    assert topology.is_reader_of(member["Endpoint"]["Address"], writer, DEADLINE)
    assert calls.made == [
        ("DescribeDBInstances", member["DBInstanceIdentifier"]),
        ("DescribeDBClusters", name),
    ]


@pytest.mark.parametrize(
    "host",
    [
        "db.example.com",
        "10.0.0.12",
        "mydb.c9akciq32.us-east-1.rds.amazonaws.com.evil.example",
        "reports.cluster-custom-c9akciq32.us-east-1.rds.amazonaws.com",
        "proxy1.proxy-c9akciq32.us-east-1.rds.amazonaws.com",
    ],
    ids=["dns-name", "ip-address", "lookalike", "custom-endpoint", "rds-proxy"],
)
def test_a_host_that_names_no_instance_or_reader_endpoint_is_answered_without_a_call(
    rds: Any, host: str
) -> None:
    calls = RdsCalls(rds)
    writer = "main.cluster-c9akciq32.us-east-1.rds.amazonaws.com"
    assert not RdsTopology(rds).is_reader_of(host, writer, DEADLINE)
    assert calls.made == []


def test_an_instance_of_that_name_that_does_not_exist_reads_from_nothing(rds: Any) -> None:
    calls = RdsCalls(rds)
    host = "nosuchdb.aaaaaaaaaa.us-east-1.rds.amazonaws.com"
    assert not RdsTopology(rds).is_reader_of(
        host, "x.aaaaaaaaaa.us-east-1.rds.amazonaws.com", DEADLINE
    )
    assert calls.made == [("DescribeDBInstances", "nosuchdb")]


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("mydb.c9akciq32.us-east-1.rds.amazonaws.com", RdsEndpoint("mydb", "instance")),
        ("MyDB.C9AKCIQ32.us-east-1.rds.amazonaws.com.", RdsEndpoint("mydb", "instance")),
        ("main.cluster-c9akciq32.eu-west-1.rds.amazonaws.com", RdsEndpoint("main", "cluster")),
        ("main.cluster-ro-c9akciq32.eu-west-1.rds.amazonaws.com", RdsEndpoint("main", "cluster-ro")),  # noqa: E501
        ("cluster-1.c9akciq32.us-east-1.rds.amazonaws.com", RdsEndpoint("cluster-1", "instance")),
        ("mydb.c9akciq32.rds.cn-north-1.amazonaws.com.cn", RdsEndpoint("mydb", "instance")),
        ("pool.proxy-c9akciq32.us-east-1.rds.amazonaws.com", RdsEndpoint("pool", "proxy")),
        ("ro.endpoint.proxy-c9akciq32.us-east-1.rds.amazonaws.com", RdsEndpoint("ro", "proxy")),
        ("ro.endpoint.c9akciq32.us-east-1.rds.amazonaws.com", None),
        ("mydb.example.com", None),
        ("mydb.c9akciq32.us-east-1.rds.amazonaws.com.example", None),
        ("a.b.mydb.c9akciq32.us-east-1.rds.amazonaws.com", None),
    ],
)  # fmt: skip
def test_rds_endpoint_names_are_taken_apart(host: str, expected: RdsEndpoint | None) -> None:
    assert parse_rds_endpoint(host) == expected


# -- failures are RDS errors, with the cause -----------------------------------------------


class AnswerWith:
    """Answer the next ``times`` calls of ``operation`` with the AWS error ``code``."""

    def __init__(self, client: Any, operation: str, code: str, times: int = 1000) -> None:
        self.left = times
        self.code = code
        client.meta.events.register(f"before-call.rds.{operation}", self._hook)

    def _hook(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.left == 0:
            return None
        self.left -= 1
        response = AWSResponse("https://rds.local", 400, HTTPHeaders(), None)
        parsed = {
            "Error": {"Code": self.code, "Message": f"{self.code} said the test"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return response, parsed


def test_a_denied_rds_call_is_an_rds_error_naming_the_permission(rds: Any) -> None:
    instance = _instance(rds, 5432)
    AnswerWith(rds, "DescribeDBInstances", "AccessDenied")
    with pytest.raises(RdsError) as caught:
        RdsTopology(rds).primary_endpoint({INSTANCE_TAG: instance["DBInstanceArn"]}, DEADLINE)
    message = str(caught.value)
    assert (
        f"DescribeDBInstances({instance['DBInstanceIdentifier']}) failed: AccessDenied" in message
    )
    assert "rds:DescribeDBInstances" in message
    assert not isinstance(caught.value, SecretsManagerError)


def test_rds_throttling_is_retried_within_the_deadline(rds: Any) -> None:
    instance = _instance(rds, 5432)
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, initial_wait_s=0.2, jitter_s=0.0, sleep=waits.append)
    AnswerWith(rds, "DescribeDBInstances", "Throttling", times=2)
    topology = RdsTopology(rds, retry_policy=policy)
    tags = {INSTANCE_TAG: instance["DBInstanceArn"]}
    assert topology.primary_endpoint(tags, DEADLINE)[1] == 5432
    assert waits == [0.2, 0.4]

    AnswerWith(rds, "DescribeDBInstances", "Throttling")
    with pytest.raises(RdsError, match=r"kept failing with ClientError \(Throttling\).*4 attempts"):
        topology.primary_endpoint(tags, DEADLINE)


def test_a_tag_naming_a_deleted_instance_is_a_clear_rds_error(rds: Any) -> None:
    arn = "arn:aws:rds:us-east-1:123456789012:db:gone-db"
    with pytest.raises(RdsError, match="names DB instance 'gone-db', which the RDS API does not"):
        RdsTopology(rds).primary_endpoint({INSTANCE_TAG: arn}, DEADLINE)


def test_a_hung_rds_api_fails_within_the_time_left(silent: SilentServer) -> None:
    topology = RdsTopology(rds_client(silent.url), retry_policy=RetryPolicy(attempts=1))
    tags = {INSTANCE_TAG: "arn:aws:rds:us-east-1:123456789012:db:main"}
    with pytest.raises(RdsError, match=r"the RDS API did not answer DescribeDBInstances\(main\) "
                       r"within 1\.0 s"):  # fmt: skip
        topology.primary_endpoint(tags, frozen_deadline(1.0))
    assert silent.connections() == 1


def test_a_rotation_whose_master_tag_names_no_instance_fails_with_the_rds_error(
    multi_tls: MultiBed, rds: Any
) -> None:
    multi = multi_tls
    master_arn = str(
        multi.sm.create_secret(
            Name=f"rds!db-{secrets.token_hex(4)}",
            SecretString=f'{{"username": "{MASTER}", "password": "{multi.master_password}"}}',
            Tags=[{"Key": INSTANCE_TAG, "Value": "arn:aws:rds:us-east-1:1:db:gone-db"}],
        )["ARN"]
    )
    arn, _, _ = multi.app(master_arn=master_arn)
    with pytest.raises(Exception, match="gone-db") as caught:
        multi.driver(multi.rotator(rds=RdsTopology(rds))).rotate(arn)
    assert isinstance(caught.value.__cause__, RdsError)
    assert "step setSecret" in str(caught.value.__cause__)
    assert multi.connections.by_user.get(MASTER, 0) == 0


def test_an_rds_client_that_cannot_be_built_is_an_rds_error(
    monkeypatch: pytest.MonkeyPatch, moto_endpoint: Any
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    tags = {INSTANCE_TAG: "arn:aws:rds:us-east-1:123456789012:db:main"}
    with pytest.raises(RdsError, match=r"DescribeDBInstances\(main\) could not be made: .*region"):
        RdsTopology().primary_endpoint(tags, DEADLINE)
