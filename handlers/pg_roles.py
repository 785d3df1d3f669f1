"""Role operations on an open connection, shared by the PostgreSQL strategies."""

from __future__ import annotations

from typing import Any

import psycopg

from handlers.pg_connect import statement_error
from handlers.pg_sql import (
    alter_password,
    create_login_role,
    default_role,
    grant_membership,
    probe,
    role_exists,
    scram_verifier,
)
from rotation.errors import DatabaseError

__all__ = ["acting_role", "ensure_alternate_user", "run_probe", "set_password"]


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Set ``role``'s password from a SCRAM verifier, in its own transaction."""
    try:
        with conn.transaction():
            conn.execute(alter_password(role, scram_verifier(conn, role, password)))
    except psycopg.Error as exc:
        raise statement_error(exc, f"changing the password of {role!r}") from exc


def run_probe(conn: psycopg.Connection[Any], query: str) -> None:
    """Run the operator's probe query and read its result."""
    try:
        conn.execute(probe(query)).fetchall()
    except psycopg.Error as exc:
        raise statement_error(exc, "the probe query as AWSPENDING") from exc


def acting_role(conn: psycopg.Connection[Any]) -> str | None:
    """The role the session acts as (``current_user``)."""
    row = conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else None


def ensure_alternate_user(
    conn: psycopg.Connection[Any], *, user: str, owner: str, password: str
) -> bool:
    """Create ``user`` or change its password, and make it act as ``owner``; one transaction.

    A crash leaves either no clone or a complete one. Returns True when the role was created.
    """
    try:
        with conn.transaction():
            exists = conn.execute(role_exists(), (user,)).fetchone() is not None
            verifier = scram_verifier(conn, user, password)
            conn.execute(
                alter_password(user, verifier) if exists else create_login_role(user, verifier)
            )
            if user != owner:
                # Also on an existing clone: upgrades one the AWS reference created.
                conn.execute(grant_membership(owner, user))
                conn.execute(default_role(user, owner))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"the master may not set up {user!r} to act as {owner!r} ({exc.sqlstate}: "
            f"{' '.join(str(exc).split())}). It needs CREATEROLE, and on PostgreSQL 16+ also "
            f"ADMIN OPTION on {owner!r}: GRANT {owner} TO <master> WITH ADMIN OPTION"
        ) from exc
    except psycopg.Error as exc:
        raise statement_error(exc, f"setting up user {user!r}") from exc
    return not exists
