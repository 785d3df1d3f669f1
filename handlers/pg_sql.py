"""Every SQL statement the PostgreSQL strategies send, composed with ``psycopg.sql``.

DDL takes no bind parameters, so values travel as ``sql.Literal``. A password never does:
``ALTER ROLE ... PASSWORD`` carries the SCRAM-SHA-256 verifier computed on the client, so
the plaintext reaches neither the server nor its statement log.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

__all__ = ["alter_password", "probe", "scram_verifier"]


def scram_verifier(conn: psycopg.Connection[Any], role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` for ``role``, computed by libpq locally.

    The algorithm is named explicitly: with None, libpq would ask the server for its
    ``password_encryption`` and could fall back to md5.
    """
    verifier = conn.pgconn.encrypt_password(
        password.encode("utf-8"), role.encode("utf-8"), b"scram-sha-256"
    )
    return verifier.decode("ascii")


def alter_password(role: str, verifier: str) -> sql.Composed:
    """``ALTER ROLE <role> PASSWORD '<verifier>'``."""
    return sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))


def probe(query: str) -> sql.SQL:
    """The operator-configured probe query testSecret runs (trusted configuration)."""
    return sql.SQL(query)


def pair_lock() -> sql.SQL:
    """Parameterised: ``(owner,)``. A transaction-scoped advisory lock on the pair, so that
    two invocations changing the same roles at the same moment (Secrets Manager re-invoking
    while an operator invokes by hand) take turns instead of racing in the catalog, where
    PostgreSQL answers concurrent ``ALTER ROLE`` with "tuple concurrently updated" and
    concurrent ``CREATE ROLE`` with a duplicate-key error. Any role may take one."""
    return sql.SQL("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(%s))")


def role_exists() -> sql.SQL:
    """Parameterised: ``(role,)``; one row when the role exists."""
    return sql.SQL("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s")


def is_member_of() -> sql.SQL:
    """Parameterised: ``(owner, member)``; one row when ``member`` is a direct member of
    ``owner`` (``GRANT owner TO member``)."""
    return sql.SQL(
        "SELECT 1 FROM pg_catalog.pg_auth_members m"
        " JOIN pg_catalog.pg_roles o ON o.oid = m.roleid"
        " JOIN pg_catalog.pg_roles u ON u.oid = m.member"
        " WHERE o.rolname = %s AND u.rolname = %s"
    )


def create_login_role(role: str, verifier: str) -> sql.Composed:
    """``CREATE ROLE <role> WITH LOGIN PASSWORD '<verifier>'``."""
    return sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(verifier)
    )


def grant_membership(owner: str, member: str) -> sql.Composed:
    """``GRANT <owner> TO <member>``: the member gets the owner's privileges and may SET ROLE.

    Plain GRANT has the same meaning on PostgreSQL 13 to 18 (16 added ``WITH INHERIT/SET``
    options whose defaults are what we want: inherit per the member's INHERIT attribute,
    SET allowed).
    """
    return sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(member))


def default_role(member: str, owner: str) -> sql.Composed:
    """``ALTER ROLE <member> SET role = <owner>``: every session of the member starts as the
    owner, so objects it creates are owned by the owner."""
    return sql.SQL("ALTER ROLE {} SET role = {}").format(sql.Identifier(member), sql.Literal(owner))
