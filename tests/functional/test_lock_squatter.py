"""Nobody but the rotation can take the pair's advisory lock.

Actor: any role that can connect (an application, or whoever holds a leaked AWSPREVIOUS
password before its expiry). With a key anyone could compute
(``hashtext('secrets-rotation:' || owner)``), holding it at session level made every
setSecret, and finishSecret's expiry, time out on every re-attempt: the leaked password
was never rotated nor expired. The key is an HMAC of a password the application does not
hold (:mod:`handlers.pg_lock`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from handlers.pg_connect import PostgresConnector
from handlers.pg_lock import lock_secret, pair_lock_key
from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, AWSPREVIOUS, Rotator, SecretStore, Step
from rotation_contract.pg.errors import DatabaseError
from testbed.pgcluster import PostgresCluster
from tests.fix_multi import MASTER, MultiBed, bed_resolver
from tests.functional.test_previous_expiry import ttl_rotator, validity
from tests.functional.test_statement_deadlines import FiveSecondsLeft

pytestmark = pytest.mark.functional


@contextmanager
def squatting(
    cluster: PostgresCluster, user: str, password: str, key: Any, *, form: str = "%s::bigint"
) -> Iterator[None]:
    """A session of ``user``'s holding advisory lock ``key`` at session level."""
    with psycopg.connect(**cluster.conninfo(user, password), autocommit=True) as conn:
        conn.execute(f"SELECT pg_catalog.pg_advisory_lock({form})", (key,))
        yield


def _old_key(cluster: PostgresCluster, user: str, password: str, owner: str) -> Any:
    return squatting(
        cluster, user, password, "secrets-rotation:" + owner, form="pg_catalog.hashtext(%s)"
    )


def test_the_old_key_blocks_no_multi_user_rotation_nor_its_expiry(multi: MultiBed) -> None:
    arn, user, password = multi.app()
    with _old_key(multi.pg, user, password, user):
        for _ in range(2):  # creates the clone, then alters the user: both setSecrets
            assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
        previous = multi.value(arn, AWSPREVIOUS)
        assert validity(multi, previous["username"])[1], "the previous password did not expire"
        assert not multi.logs_in(previous)
        assert multi.logs_in(multi.value(arn, AWSCURRENT))


def test_the_old_key_blocks_no_single_user_rotation(multi: MultiBed) -> None:
    arn, user, password = multi.app()
    connector = PostgresConnector(connect=multi.connections, resolver=bed_resolver)
    rotator = Rotator(PostgresSingleUser(connector), SecretStore(multi.handler_client))
    with _old_key(multi.pg, user, password, user):
        assert multi.driver(rotator).rotate(arn).succeeded
    assert multi.logs_in(multi.value(arn, AWSCURRENT))
    assert not multi.logs_in({"username": user, "password": password})


def test_a_holder_of_the_real_key_is_named_as_an_advisory_lock(multi: MultiBed) -> None:
    """The key is the one the master's transactions take (the test holds the master's
    password, as an application does not); waiting for it fails with a message that names
    an advisory lock, and once it is released the re-attempt finishes."""
    arn, user, password = multi.app()
    rotator, token = multi.begin_and_create(arn)
    key = pair_lock_key(lock_secret(multi.master_password), user)
    with (
        squatting(multi.pg, MASTER, multi.master_password, key),
        pytest.raises(DatabaseError) as caught,
    ):
        rotator.handle(multi.event(arn, Step.SET.value, token), FiveSecondsLeft())
    message = str(caught.value)
    assert "advisory lock" in message
    assert "locktype 'advisory'" in message
    assert password not in message
    assert multi.master_password not in message
    multi.driver(rotator).run(arn, token, [Step.SET, Step.TEST, Step.FINISH])
    assert multi.logs_in(multi.value(arn, AWSCURRENT))
