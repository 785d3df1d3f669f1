"""Rotations through a real PgBouncer (Debian's package; skipped only where it is not
installed), in session and transaction pooling, with auth_query and scram-sha-256.

Applications read through the pooler between the steps of three rotations: a plain psycopg
reader that reads AWSCURRENT and opens a connection for each query, one that holds one
connection, and the client library. The steps and the reads interleave in a fixed order
(``LocalRotation``'s ``on_step``), so the counts of failed queries are exact, not a race.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import Rotator, SecretStore
from rotation.retry import Deadline
from rotation_contract.pg.errors import LoginConfigurationError
from rotation_contract.pg.settings import PostgresSettings
from testbed.pgbouncer import (
    QUERIES_PER_STEP,
    ROTATIONS,
    PgBouncer,
    Readers,
    find_pgbouncer,
    rotate_with_readers,
    running_pgbouncer,
)
from testbed.pgcluster import PostgresCluster
from tests.fix_aws import new_client
from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(
        find_pgbouncer() is None,
        reason="pgbouncer is not installed (Debian: apt-get install -y pgbouncer; .ci/run does)",
    ),
]


# (pool_mode, server_via_socket): see PgBouncer.server_via_socket.
SETUPS = {
    "session": ("session", False),
    "transaction-pooler-authenticates": ("transaction", True),
    "transaction-pass-through": ("transaction", False),
}


@pytest.fixture(params=sorted(SETUPS))
def bouncer(request: pytest.FixtureRequest, pg: PostgresCluster) -> Iterator[PgBouncer]:
    mode, via_socket = SETUPS[request.param]
    with running_pgbouncer(pg, pool_mode=mode, server_via_socket=via_socket) as running:
        yield running


def _holds_connections(bouncer: PgBouncer) -> bool:
    """Whether an application connection held across a password change keeps working.

    Not in transaction pooling with SCRAM pass-through: a server connection PgBouncer opens
    for that client's next transaction logs in with the keys of the old password, fails,
    and PgBouncer then answers every client of that user "server login has been failing,
    try again later (server_login_retry)" for server_login_retry seconds (measured in
    bench/PGBOUNCER.md); tested here without such a client."""
    return not (bouncer.pool_mode == "transaction" and not bouncer.server_via_socket)


def _no_leaked_bounds(bouncer: PgBouncer, value: dict[str, Any]) -> None:
    """Whatever server connection the pooler hands out next, it has the server's defaults:
    the rotation's bounds ended with their transactions."""
    for _ in range(5):
        with psycopg.connect(
            host=bouncer.host, port=bouncer.port, dbname="postgres", user=value["username"],
            password=value["password"], autocommit=True,
        ) as conn:  # fmt: skip
            assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
            assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)


def test_single_user_through_pgbouncer(bed: Bed, bouncer: PgBouncer) -> None:
    user, password = bed.make_user(None, None)
    arn = bed.secret(bouncer.secret_value(user, password))
    readers = Readers(bed.sm, arn, bouncer, hold=_holds_connections(bouncer), source=new_client())
    rotator = Rotator(PostgresSingleUser(PostgresConnector()), SecretStore(bed.handler_client))
    try:
        assert rotate_with_readers(bed.sm, rotator, arn, readers) == []
    finally:
        readers.close()
    steps = 4 * ROTATIONS + ROTATIONS  # reads after each step, and before each rotation
    assert set(readers.ran.values()) == {steps * QUERIES_PER_STEP}
    # Between setSecret and finishSecret the database has the new password and AWSCURRENT
    # the old one: a reader that logs in with AWSCURRENT fails there (twice a rotation:
    # after setSecret, after testSecret). The client library falls back to AWSPENDING,
    # and a connection already open keeps working.
    assert readers.failed == Counter(
        {"plain, a connection per query": 2 * QUERIES_PER_STEP * ROTATIONS}
    )
    _no_leaked_bounds(bouncer, readers._current())


def test_multi_user_through_pgbouncer(multi_tls: MultiBed, bouncer: PgBouncer) -> None:
    through: dict[str, Any] = {"host": bouncer.host, "port": bouncer.port, "ssl": False}
    master_arn = multi_tls.master_secret(**through)
    arn, _, _ = multi_tls.app(master_arn=master_arn, **through)
    readers = Readers(
        multi_tls.sm, arn, bouncer, hold=_holds_connections(bouncer), source=new_client()
    )
    connector = PostgresConnector()
    rotator = Rotator(PostgresMultiUser(connector), SecretStore(multi_tls.handler_client))
    try:
        assert rotate_with_readers(multi_tls.sm, rotator, arn, readers) == []
    finally:
        readers.close()
    # The user AWSCURRENT names keeps its password until the next rotation: no reader fails.
    assert readers.failed == Counter(), readers.errors
    assert set(readers.ran.values()) == {(4 * ROTATIONS + ROTATIONS) * QUERIES_PER_STEP}
    _no_leaked_bounds(bouncer, readers._current())


def test_a_startup_parameter_the_pooler_refuses_is_named_with_its_fix(
    bed: Bed, bouncer: PgBouncer
) -> None:
    """What PGOPTIONS (or the connector before #25) causes behind PgBouncer: not
    'unreachable' (retried, and the wrong advice) but a configuration error, at once."""
    user, password = bed.make_user(None, None)
    secret = PostgresSettings.from_env({"PGOPTIONS": "-c search_path=public"})
    from rotation_contract.pg.secret import parse_postgres_secret

    parsed = parse_postgres_secret(bouncer.secret_value(user, password), "AWSCURRENT")
    connector = PostgresConnector(secret)
    with pytest.raises(LoginConfigurationError) as caught:
        connector.connect(parsed, Deadline.in_seconds(10.0), who="AWSCURRENT", floor="disable")
    problem = str(caught.value)
    assert "unsupported startup parameter: options" in problem
    assert "PGOPTIONS" in problem
    assert "ignore_startup_parameters" in problem
    assert password not in problem
