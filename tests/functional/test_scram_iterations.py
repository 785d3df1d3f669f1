"""The server's ``scram_iterations`` never sets the cost of a verifier we compute.

Actor: the application role itself (``ALTER ROLE app SET scram_iterations``) or its
database's owner (``ALTER DATABASE ... SET``), PostgreSQL 16+. The server reports the
setting at login; a verifier built with it would run PBKDF2 for as long as they like in
the function (2^31-1 iterations outlast Lambda's 15 minutes: the leaked password is never
rotated) or store a verifier of one iteration. Every verifier has
:data:`handlers.pg_scram.ITERATIONS`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.pg_scram import ITERATIONS
from handlers.pg_sql import scram_verifier
from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, Rotator, SecretStore
from rotation_contract.pg.errors import DatabaseError
from tests.fix_multi import MultiBed, bed_resolver
from tests.fix_postgres import admin_connect

pytestmark = pytest.mark.functional

_HUGE = 2**31 - 1


def _needs_setting(bed: MultiBed) -> None:
    with admin_connect(bed.pg) as conn:
        if conn.info.server_version < 160000:
            pytest.skip("scram_iterations is a setting from PostgreSQL 16 (none to abuse here)")


def _stored_iterations(bed: MultiBed, user: str) -> int:
    with admin_connect(bed.pg) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s", (user,)
        ).fetchone()
    assert row is not None
    assert row[0] is not None
    assert str(row[0]).startswith("SCRAM-SHA-256$"), "not a SCRAM verifier"
    return int(str(row[0]).split("$")[1].split(":")[0])


@pytest.fixture
def own_database(multi: MultiBed) -> Iterator[tuple[MultiBed, str]]:
    """A database the application owns, as on RDS (the master secret names none)."""
    _needs_setting(multi)
    arn, user, _ = multi.app(master_arn=multi.master_secret(dbname=None))
    db = f"db_{user}"
    with admin_connect(multi.pg) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db), sql.Identifier(user))
        )
    value = {**multi.value(arn), "dbname": db}
    multi.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(value))
    try:
        yield multi, arn
    finally:
        with admin_connect(multi.pg) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))


def _hostile(bed: MultiBed, arn: str, iterations: int) -> None:
    """The application, as itself: its role's and its database's scram_iterations."""
    value = bed.value(arn)
    conninfo = {**bed.pg.conninfo(value["username"], value["password"]), "dbname": value["dbname"]}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} SET scram_iterations = {}").format(
                sql.Identifier(value["username"]), sql.Literal(iterations)
            )
        )
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET scram_iterations = {}").format(
                sql.Identifier(value["dbname"]), sql.Literal(iterations)
            )
        )
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        assert conn.info.parameter_status("scram_iterations") == str(iterations)


def _rotator(bed: MultiBed, strategy: str) -> Rotator:
    connector = PostgresConnector(connect=bed.connections, resolver=bed_resolver)
    chosen: Any = (
        PostgresMultiUser(connector) if strategy == "multi" else PostgresSingleUser(connector)
    )
    return Rotator(chosen, SecretStore(bed.handler_client))


@pytest.mark.parametrize("strategy", ["single", "multi"])
@pytest.mark.parametrize("iterations", [_HUGE, 1], ids=["huge", "tiny"])
def test_rotation_ignores_the_servers_scram_iterations(
    own_database: tuple[MultiBed, str], strategy: str, iterations: int
) -> None:
    bed, arn = own_database
    _hostile(bed, arn, iterations)
    for _ in range(2):  # the second creates/alters the clone, or changes the password again
        assert bed.driver(_rotator(bed, strategy)).rotate(arn).succeeded
        current = bed.value(arn, AWSCURRENT)
        assert _stored_iterations(bed, current["username"]) == ITERATIONS
        assert bed.logs_in(current)


def test_a_non_ascii_password_refuses_a_hostile_setting(multi: MultiBed) -> None:
    """libpq computes a non-ASCII password's verifier (SASLprep) with the reported count:
    only when that is within bounds."""
    _needs_setting(multi)
    _, user, password = multi.app()
    conninfo = multi.pg.conninfo(user, password)
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        fine = scram_verifier(conn, user, "pässwörd-ünïcode")
        assert fine.startswith(f"SCRAM-SHA-256${ITERATIONS}:")
        conn.execute(sql.SQL("ALTER ROLE {} SET scram_iterations = 1").format(sql.Identifier(user)))
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        with pytest.raises(DatabaseError) as raised:
            scram_verifier(conn, user, "pässwörd-ünïcode")
        assert "scram_iterations" in str(raised.value)
        assert f"ALTER ROLE {user} RESET scram_iterations" in str(raised.value)
        assert "pässwörd" not in str(raised.value)
        # An ASCII password is ours, whatever the server says.
        assert scram_verifier(conn, user, "ascii-password").startswith(
            f"SCRAM-SHA-256${ITERATIONS}:"
        )
