"""A secret whose ``host`` is a read replica: a real streaming standby (``pg_basebackup -R``)
that applies the primary's changes two seconds late (``recovery_min_apply_delay``).

Multi-user: the master changes the password on the primary, so testSecret, logging in at
the replica, waits inside the deadline until the change has arrived. Single-user: the
password cannot be changed on a standby at all; setSecret says so and what to do. The
clusters are plain (no TLS), so the secrets say ``"ssl": false``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.pg_errors import ReadOnlyHostError, ReplicaLagError
from handlers.single_user import PostgresSingleUser
from rotation import (
    AWSCURRENT,
    AWSPENDING,
    LocalRotation,
    RetryPolicy,
    RotationFailed,
    Rotator,
    SecretStore,
    Step,
)
from rotation_contract.pg.errors import AuthenticationError, ServerUnavailableError
from rotation_tools.doctor import run_doctor
from testbed.pgcluster import PostgresCluster, running_cluster, running_standby
from tests.fix_faults import Pauses
from tests.fix_multi import MultiBed, _ensure_master
from tests.fix_postgres import admin_connect, can_login, set_role_password
from tests.fix_rotation import ConnectionCounter

pytestmark = pytest.mark.functional

APPLY_DELAY = "'2s'"


@pytest.fixture(scope="module")
def primary() -> Iterator[PostgresCluster]:
    with running_cluster(tls=False) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def standby(primary: PostgresCluster) -> Iterator[PostgresCluster]:
    """A hot standby (read-only logins) that applies each commit two seconds late."""
    with running_standby(primary, extra_settings={"recovery_min_apply_delay": APPLY_DELAY}) as s:
        yield s


@pytest.fixture(scope="module")
def closed_standby(primary: PostgresCluster) -> Iterator[PostgresCluster]:
    """A standby that takes no logins at all (``hot_standby = off``)."""
    with running_standby(primary, extra_settings={"hot_standby": "off"}) as cluster:
        yield cluster


@pytest.fixture
def multi(primary: PostgresCluster, moto_endpoint: Any, sm: Any) -> Iterator[MultiBed]:
    bed = MultiBed(pg=primary, sm=sm, master_password=_ensure_master(primary))
    yield bed
    bed.cleanup()


def caught_up(primary: PostgresCluster, standby: PostgresCluster) -> None:
    """Until the standby has applied everything the primary has written so far (the apply
    delay makes that two seconds after the last commit). A condition, bounded."""
    with admin_connect(primary) as conn:
        # The insert position: it includes commits not yet written out (the test bed runs
        # with synchronous_commit = off), which pg_current_wal_lsn() would not.
        row = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
    assert row is not None
    with admin_connect(standby) as conn:
        for _ in range(600):
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s", (row[0],)).fetchone()
            if done == (True,):
                return
            time.sleep(0.05)
    pytest.fail("the standby did not catch up with the primary in 30 s")


def pause_replay(standby: PostgresCluster) -> None:
    """Hold the standby's replay: whatever the primary commits next stays unapplied until
    :func:`resume_replay`, so "not there yet" is certain, not a matter of timing."""
    with admin_connect(standby) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")


def resume_replay(standby: PostgresCluster) -> None:
    with admin_connect(standby) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")


def _multi_user_driver(
    multi: MultiBed, counter: ConnectionCounter, pauses: Pauses, *, attempts: int = 60
) -> LocalRotation:
    strategy = PostgresMultiUser(
        PostgresConnector(connect=counter),
        replica_wait=RetryPolicy(attempts=attempts, max_wait_s=0.5, sleep=pauses),
    )
    rotator = Rotator(strategy, SecretStore(multi.handler_client))
    return LocalRotation(multi.sm, rotator.handle)


def test_multi_user_testsecret_waits_until_the_new_password_reaches_the_replica(
    multi: MultiBed, primary: PostgresCluster, standby: PostgresCluster
) -> None:
    """Two rotations (the first creates the clone, the second changes the original's
    password), each with the change held back on the replica until testSecret's first
    pause, then applied two seconds late: both complete in one run."""
    arn, _, _ = multi.app(port=standby.port)
    caught_up(primary, standby)
    for _ in range(2):
        pause_replay(standby)
        pauses = Pauses(lambda: resume_replay(standby), sleep=time.sleep)
        log_mark = len(standby.server_log())
        run = _multi_user_driver(multi, ConnectionCounter(), pauses).rotate(arn)
        assert run.succeeded
        assert pauses.waits  # it did wait for the replica
        current = multi.value(arn)
        refusal = f'password authentication failed for user "{current["username"]}"'
        assert refusal in standby.server_log()[log_mark:]
        assert can_login(standby, current["username"], current["password"])


def test_a_replica_that_never_catches_up_fails_testsecret_clearly_and_the_reattempt_completes(
    multi: MultiBed, primary: PostgresCluster, standby: PostgresCluster
) -> None:
    arn, _, _ = multi.app(port=standby.port)
    caught_up(primary, standby)
    pause_replay(standby)
    try:
        pauses = Pauses()
        driver = _multi_user_driver(multi, ConnectionCounter(), pauses, attempts=3)
        with pytest.raises(RotationFailed) as caught:
            driver.rotate(arn)
        assert caught.value.step is Step.TEST
        error = caught.value.__cause__
        assert isinstance(error, ReplicaLagError)
        assert f"has not reached the standby at 127.0.0.1:{standby.port}" in str(error)
        assert "replication is lagging or stopped" in str(error)
        assert len(pauses.waits) == 2  # three logins, bounded by the policy
        token = caught.value.run.token
        assert multi.labels(arn)[token] == [AWSPENDING]
        current = multi.value(arn)
        assert can_login(standby, current["username"], current["password"])
    finally:
        resume_replay(standby)
    caught_up(primary, standby)
    resumed = driver.rotate(arn)
    assert resumed.resumed
    assert resumed.succeeded
    assert AWSCURRENT in multi.labels(arn)[token]


def test_on_a_primary_a_refused_pending_login_is_not_waited_for(multi: MultiBed) -> None:
    """Only a standby makes a refusal a matter of time: on the primary, testSecret asks
    (one AWSCURRENT login) and fails at once."""
    arn, _, _ = multi.app()
    counter, pauses = ConnectionCounter(), Pauses()
    driver = _multi_user_driver(multi, counter, pauses)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET])
    pending = multi.value(arn, AWSPENDING)
    with admin_connect(multi.pg) as conn:  # someone changes it behind the rotation's back
        set_role_password(conn, pending["username"], secrets.token_urlsafe(12))
    counter.reset()
    with pytest.raises(RotationFailed) as caught:
        driver.run(arn, token, [Step.TEST])
    assert type(caught.value.__cause__) is AuthenticationError
    assert pauses.waits == []
    assert counter.total == 2  # AWSPENDING, then AWSCURRENT to ask pg_is_in_recovery()


def _single_user_secret(
    multi: MultiBed, primary: PostgresCluster, at: PostgresCluster
) -> tuple[str, str]:
    user, password = f"solo_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with admin_connect(primary) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(user)))
        set_role_password(conn, user, password)
    multi.created.append(user)
    return multi.secret(primary.secret_value(user, password, port=at.port)), user


def test_single_user_on_a_standby_fails_setsecret_naming_the_problem(
    multi: MultiBed, primary: PostgresCluster, standby: PostgresCluster
) -> None:
    arn, user = _single_user_secret(multi, primary, standby)
    caught_up(primary, standby)
    counter = ConnectionCounter()
    rotator = Rotator(
        PostgresSingleUser(PostgresConnector(connect=counter)), SecretStore(multi.handler_client)
    )
    with pytest.raises(RotationFailed) as caught:
        LocalRotation(multi.sm, rotator.handle).rotate(arn)
    assert caught.value.step is Step.SET
    error = caught.value.__cause__
    assert isinstance(error, ReadOnlyHostError)
    message = str(error)
    assert f"(127.0.0.1:{standby.port}) is a read-only standby" in message
    # The standby refuses the read-write transaction the password change asks for.
    assert "cannot set transaction read-write mode during recovery" in message
    assert "Point 'host' at the writer" in message
    assert counter.total == 1  # AWSCURRENT logged in; no other credential was tried
    current = multi.value(arn)
    assert can_login(standby, user, current["password"])


def test_a_standby_that_takes_no_logins_is_retried_then_named(
    multi: MultiBed, primary: PostgresCluster, closed_standby: PostgresCluster
) -> None:
    arn, _ = _single_user_secret(multi, primary, closed_standby)
    pauses = Pauses()
    connector = PostgresConnector(retry_policy=RetryPolicy(attempts=3, sleep=pauses))
    rotator = Rotator(PostgresSingleUser(connector), SecretStore(multi.handler_client))
    with pytest.raises(RotationFailed) as caught:
        LocalRotation(multi.sm, rotator.handle).rotate(arn)
    error = caught.value.__cause__
    assert isinstance(error, ServerUnavailableError)
    assert "the database system is not accepting connections" in str(error)
    assert "hot_standby = off" in str(error)
    assert len(pauses.waits) == 2


def test_the_standby_is_a_real_streaming_replica(
    primary: PostgresCluster, standby: PostgresCluster
) -> None:
    """The test bed itself: in recovery, streaming from the primary, read-only."""
    with admin_connect(standby) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE ROLE nobody_here")
    with admin_connect(primary) as conn:
        row = conn.execute("SELECT state FROM pg_stat_replication").fetchone()
    assert row == ("streaming",)


def test_doctor_tells_single_user_that_the_host_is_a_standby(
    multi: MultiBed, primary: PostgresCluster, standby: PostgresCluster
) -> None:
    arn, _ = _single_user_secret(multi, primary, standby)
    caught_up(primary, standby)
    checks = {c.name: c for c in run_doctor(multi.handler_client, arn)}
    assert checks["login as AWSCURRENT"].ok is True
    assert checks["host is writable"].ok is False
    assert "read-only standby" in checks["host is writable"].detail
    assert "writer" in checks["host is writable"].hint
    on_primary, _ = _single_user_secret(multi, primary, primary)
    checks = {c.name: c for c in run_doctor(multi.handler_client, on_primary)}
    assert checks["host is writable"].ok is True


def test_doctor_reads_the_masters_privileges_at_a_standby(
    multi: MultiBed, primary: PostgresCluster, standby: PostgresCluster
) -> None:
    """The master's read-only transactions take the server's default mode: a standby, which
    refuses BEGIN READ WRITE, still answers `rotation doctor`'s questions (a role change
    asks for READ WRITE; nothing else does)."""
    master_arn = multi.master_secret(port=standby.port)
    arn, _, _ = multi.app(master_arn=master_arn)
    caught_up(primary, standby)
    checks = {
        check.name: check for check in run_doctor(multi.handler_client, arn, strategy="multi-user")
    }
    assert checks["login as the master"].ok is True
    assert checks["master may create roles"].ok is True, checks["master may create roles"]
    assert checks["master may grant the user"].ok is True
