"""Statements are bounded by the step's deadline: an ALTER ROLE queued behind another
session's lock fails with its own clear error before the deadline, on a real server.

The blocker is what TESTBED.md describes: another session's open transaction that altered
the same role (``BEGIN; ALTER ROLE r CONNECTION LIMIT 5``). It also sets
``idle_in_transaction_session_timeout``, so that without the bound the test fails (the
server ends the blocker and the rotation's ALTER ROLE goes through) instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

from rotation import AWSCURRENT, AWSPENDING, AWSPREVIOUS, Step
from rotation_contract.pg.errors import DatabaseError
from testbed.pgcluster import PostgresCluster
from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


class FiveSecondsLeft:
    """A Lambda context with 5 s left: with the 2 s safety margin the step gets 3 s."""

    def get_remaining_time_in_millis(self) -> int:
        return 5000


@contextmanager
def holding_a_lock_on(cluster: PostgresCluster, role: str) -> Iterator[psycopg.Connection[Any]]:
    """Another session with an open transaction that altered ``role``."""
    with psycopg.connect(**cluster.conninfo()) as blocker:
        blocker.execute("SET idle_in_transaction_session_timeout = '20s'")
        blocker.commit()
        blocker.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 5").format(sql.Identifier(role)))
        yield blocker


def connection_limit(cluster: PostgresCluster, role: str) -> int:
    with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (role,))
        found = row.fetchone()
        assert found is not None, f"no role {role}"
        return int(found[0])


def assert_blocker_unaffected(blocker: psycopg.Connection[Any]) -> None:
    # Still inside its transaction, still usable, and its change commits.
    assert blocker.info.transaction_status == TransactionStatus.INTRANS
    blocker.execute("SELECT 1")
    blocker.commit()


def assert_lock_error(error: BaseException) -> None:
    message = str(error)
    assert "a lock held by another session blocked the statement" in message
    assert "LockNotAvailable, 55P03" in message
    assert "pg_stat_activity" in message
    assert "pg_locks" in message


def test_single_user_alter_role_behind_a_lock_fails_before_the_deadline(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    bed.connections.reset()
    with holding_a_lock_on(bed.pg, user) as blocker:
        with pytest.raises(DatabaseError) as caught:
            rotator.handle(bed.event(arn, Step.SET.value, token), FiveSecondsLeft())
        assert_blocker_unaffected(blocker)
    assert_lock_error(caught.value)
    assert f"changing the password of {user!r}" in str(caught.value)
    assert str(caught.value).startswith(f"secret {arn}, step setSecret")
    assert connection_limit(bed.pg, user) == 5
    # Nothing changed: the one login setSecret always makes, AWSCURRENT still logs in.
    assert bed.connections.total == 1
    assert bed.labels(arn)[token] == [AWSPENDING]
    assert bed.labelled_logins(arn) == [AWSCURRENT]
    # Once the blocker is gone, a re-attempt completes the rotation.
    bed.driver(rotator).run(arn, token, [Step.SET, Step.TEST, Step.FINISH])
    assert AWSCURRENT in bed.labels(arn)[token]
    assert bed.logs_in(bed.value(arn))


def test_multi_user_alter_role_behind_a_lock_fails_before_the_deadline(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    assert multi.driver(multi.rotator()).rotate(arn).succeeded  # now the clone is current
    rotator, token = multi.begin_and_create(arn)
    multi.connections.reset()
    with holding_a_lock_on(multi.pg, user) as blocker:
        with pytest.raises(DatabaseError) as caught:
            rotator.handle(multi.event(arn, Step.SET.value, token), FiveSecondsLeft())
        assert_blocker_unaffected(blocker)
    assert_lock_error(caught.value)
    assert f"setting up user {user!r}" in str(caught.value)
    assert connection_limit(multi.pg, user) == 5
    # The current user's guard login and the master's.
    assert multi.connections.total == 2
    # The pending user's new password is not set; the clone (current) and the user's
    # previous password still log in.
    assert multi.labelled_logins(arn) == [AWSCURRENT, AWSPREVIOUS]
    multi.driver(rotator).run(arn, token, [Step.SET, Step.TEST, Step.FINISH])
    assert AWSCURRENT in multi.labels(arn)[token]
    assert multi.value(arn)["username"] == user
    assert multi.logs_in(multi.value(arn))
