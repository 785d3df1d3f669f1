"""The client's fallbacks stay on AWSCURRENT's target: the same host, port and database,
and the same user or its pair's other user. Anything else is never tried, and is logged
once, without a value (played by whoever edits or plants a version)."""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql

from rotation_client import ConnectRetry, RotatingCredentials, SecretsManagerSource
from rotation_contract.pg.errors import AuthenticationError
from testbed.pgcluster import PostgresCluster, running_cluster
from tests.fix_aws import new_client
from tests.fix_postgres import ServerLog, admin_connect
from tests.fix_rotation import Bed, ConnectionCounter
from tests.fix_sm_endpoint import Answer, FakeSecretsManager

pytestmark = pytest.mark.functional

LOGGER = "rotation_client.credentials"


def _quick() -> ConnectRetry:
    # Two rounds, no waiting to speak of: the assertions are about who is contacted.
    return ConnectRetry(timeout_s=10, rounds=2, initial_wait_s=0.01, jitter=0.0)


@pytest.fixture
def other_database(pg: PostgresCluster) -> Iterator[str]:
    name = f"old_{secrets.token_hex(4)}"
    with admin_connect(pg) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with admin_connect(pg) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _put(bed: Bed, arn: str, value: dict[str, Any], *stages: str) -> None:
    kwargs: dict[str, Any] = {"VersionStages": list(stages)} if stages else {}
    bed.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(value), **kwargs)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_after_a_migration_a_refused_awscurrent_never_lands_in_the_old_database(
    bed: Bed, other_database: str, server_log: ServerLog, caplog: pytest.LogCaptureFixture
) -> None:
    """The secret was edited to move the application to a new database; its new password
    has a typo. AWSPREVIOUS still names the old database with a working password: the
    client raises instead of writing there."""
    user, password = bed.make_user()
    old = bed.pg.secret_value(user, password, dbname=other_database)
    arn = bed.secret(old)
    counter = ConnectionCounter()
    creds = RotatingCredentials(arn, client=new_client(), max_age_s=0, retry=_quick())
    with creds.connect(counter) as conn:  # the application works, in the old database
        assert conn.info.dbname == other_database

    typo = bed.pg.secret_value(user, password + "-typo", dbname="postgres")
    _put(bed, arn, typo)  # AWSCURRENT: the new database; AWSPREVIOUS: the old one
    assert bed.value(arn, "AWSPREVIOUS")["dbname"] == other_database
    mark = ServerLog(bed.pg)
    counter.reset()
    caplog.set_level(logging.WARNING, logger=LOGGER)

    with pytest.raises(AuthenticationError):
        creds.connect(counter)
    with pytest.raises(AuthenticationError):
        creds.connect(counter)  # again: still not, and not logged again

    assert counter.total == 2  # the new AWSCURRENT, once per connect() (then remembered)
    assert "password authentication failed" in mark.since()
    # The server never heard of the old database again: no login, not even an attempt.
    assert other_database not in mark.since()
    said = _messages(caplog)
    assert len(said) == 2  # once for the earlier AWSCURRENT kept as working, once for AWSPREVIOUS
    assert all("names another dbname than AWSCURRENT" in m for m in said)
    assert all(password not in m for m in said)


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[PostgresCluster]:
    """Another server (no TLS: it is never to be logged in to, only watched)."""
    with running_cluster(tls=False) as cluster:
        yield cluster


def test_an_awspending_on_another_host_is_never_contacted(
    bed: Bed, elsewhere: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A planted AWSPENDING naming another server: when AWSCURRENT is refused, the client
    does not knock there (asserted from that server's own log)."""
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password + "-wrong"))
    planted = {**bed.pg.secret_value(user, password), "host": "localhost", "port": elsewhere.port}
    _put(bed, arn, planted, "AWSPENDING")
    before = len(elsewhere.server_log())
    caplog.set_level(logging.WARNING, logger=LOGGER)
    creds = RotatingCredentials(arn, client=new_client(), retry=_quick())

    with pytest.raises(AuthenticationError):
        creds.connect()

    assert "connection received" not in elsewhere.server_log()[before:]
    said = _messages(caplog)
    assert len(said) == 1
    assert "AWSPENDING names another host than AWSCURRENT" in said[0]
    assert password not in said[0]


def test_the_pairs_other_user_on_the_same_target_is_still_a_fallback(bed: Bed) -> None:
    """Multi-user: AWSCURRENT names ``<user>_clone``, AWSPREVIOUS ``<user>``; the rule lets
    the pair's other user through."""
    user, password = bed.make_user()
    clone, _ = bed.make_user(f"{user}_clone")
    arn = bed.secret(bed.pg.secret_value(user, password))
    _put(bed, arn, bed.pg.secret_value(clone, "not-its-password"))
    creds = RotatingCredentials(arn, client=new_client(), retry=_quick())
    with creds.connect() as conn:
        assert conn.info.user == user


def test_a_stranger_user_on_the_same_target_is_not(bed: Bed) -> None:
    user, password = bed.make_user()
    stranger, stranger_password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(stranger, stranger_password))
    _put(bed, arn, bed.pg.secret_value(user, password + "-wrong"))
    creds = RotatingCredentials(arn, client=new_client(), retry=_quick())
    counter = ConnectionCounter()
    with pytest.raises(AuthenticationError):
        creds.connect(counter)
    assert stranger not in counter.by_user  # AWSPREVIOUS's other user was never tried


@pytest.fixture
def socket_twins() -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    """Two servers on one port, in Unix-socket directories whose names differ only in
    case: the application's, and one any local user could start beside it."""
    mine = Path(tempfile.mkdtemp(prefix="pgcase-"))
    theirs = mine.with_name(mine.name.upper())
    theirs.mkdir()
    victim = PostgresCluster(tls=False, root=mine)
    attacker = PostgresCluster(
        tls=False, root=theirs, port=victim.port, extra_settings={"listen_addresses": "''"}
    )
    try:
        for cluster in (victim, attacker):
            cluster.start()
            cluster.write_hba("local all postgres trust", "local all all scram-sha-256")
            cluster.restart()
        yield victim, attacker
    finally:
        attacker.stop()
        victim.stop()


def test_a_socket_directory_differing_only_in_case_is_another_server(
    socket_twins: tuple[PostgresCluster, PostgresCluster], fake_sm: FakeSecretsManager
) -> None:
    """AWSCURRENT (a socket directory) is refused once; a planted AWSPENDING names the
    same path in other case, where the attacker's server waits with a password it knows.
    Paths are case-sensitive: the client never logs in there."""
    victim, attacker = socket_twins
    password, theirs = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    for cluster, pw in ((victim, password), (attacker, theirs)):
        with psycopg.connect(**cluster.conninfo(host=str(cluster.root)), autocommit=True) as a:
            a.execute(sql.SQL("CREATE ROLE app LOGIN PASSWORD {}").format(sql.Literal(pw)))
    base = {"engine": "postgres", "port": victim.port, "username": "app", "dbname": "postgres"}
    current = {**base, "host": str(victim.root), "password": password + "-typo"}
    planted = {**base, "host": str(attacker.root), "password": theirs}
    fake_sm.answers["AWSCURRENT"] = Answer(value=json.dumps(current))
    fake_sm.answers["AWSPENDING"] = Answer(value=json.dumps(planted))
    mark = len(attacker.server_log())
    client = boto3.client(
        "secretsmanager",
        endpoint_url=fake_sm.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    source = SecretsManagerSource(client, max_age_s=0)
    creds = RotatingCredentials("app/db", source=source, retry=_quick())

    with pytest.raises(AuthenticationError):
        creds.connect()

    assert "connection received" not in attacker.server_log()[mark:]  # never contacted
