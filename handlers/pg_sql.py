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


def bound_transaction() -> sql.SQL:
    """Parameterised: ``(statement_ms, lock_ms)``. ``statement_timeout`` and ``lock_timeout``
    for the rest of this transaction only (``set_config(..., true)`` is ``SET LOCAL``): a
    connection pooler in transaction mode hands the server connection to another client
    after the transaction, and a session-level ``SET`` would go with it."""
    return sql.SQL(
        "SELECT pg_catalog.set_config('statement_timeout', %s, true), "
        "pg_catalog.set_config('lock_timeout', %s, true)"
    )


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


# -- Role parity: the clone's settings, limits and memberships follow its owner's ----------


def role_settings() -> sql.SQL:
    """Parameterised: ``(roles,)``; per role and database (NULL: every database), the
    ``ALTER ROLE ... SET`` entries as stored (``text[]`` of ``name=value``). A database
    dropped meanwhile is left out rather than read as "every database"."""
    return sql.SQL(
        "SELECT r.rolname, d.datname, s.setconfig FROM pg_catalog.pg_db_role_setting s"
        " JOIN pg_catalog.pg_roles r ON r.oid = s.setrole"
        " LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase"
        " WHERE r.rolname = ANY(%s) AND (s.setdatabase = 0 OR d.oid IS NOT NULL)"
    )


def role_limits() -> sql.SQL:
    """Parameterised: ``(roles,)``; each role's connection limit and password validity.

    The validity is text independent of the session's DateStyle and TimeZone: ISO 8601 in
    UTC, or ``infinity`` / ``-infinity``; no limit (NULL) reads as ``infinity``, which is
    what ``VALID UNTIL 'infinity'`` means (ALTER ROLE cannot set NULL back).
    """
    return sql.SQL(
        "SELECT rolname, rolconnlimit, CASE"
        " WHEN rolvaliduntil IS NULL THEN 'infinity'"
        " WHEN isfinite(rolvaliduntil) THEN pg_catalog.to_char("
        "rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        " ELSE rolvaliduntil::text END"
        " FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)"
    )


def role_memberships(server_version: int) -> sql.Composed:
    """Parameterised: ``(roles,)``; the roles each role is a direct member of, with the
    INHERIT and SET options of its grants (PostgreSQL 16+; before, every grant has both)."""
    options = sql.SQL(
        "bool_or(m.inherit_option), bool_or(m.set_option)"
        if server_version >= 160000
        else "true, true"
    )
    return sql.SQL(
        "SELECT u.rolname, r.rolname, {} FROM pg_catalog.pg_auth_members m"
        " JOIN pg_catalog.pg_roles r ON r.oid = m.roleid"
        " JOIN pg_catalog.pg_roles u ON u.oid = m.member"
        " WHERE u.rolname = ANY(%s) GROUP BY u.rolname, r.rolname"
    ).format(options)


def _role_target(role: str, database: str | None) -> sql.Composed:
    if database is None:
        return sql.SQL("ALTER ROLE {}").format(sql.Identifier(role))
    return sql.SQL("ALTER ROLE {} IN DATABASE {}").format(
        sql.Identifier(role), sql.Identifier(database)
    )


def set_role_setting(role: str, database: str | None, name: str, values: list[str]) -> sql.Composed:
    """``ALTER ROLE <role> [IN DATABASE <db>] SET <name> TO '<v1>'[, '<v2>' ...]``.

    Every value is a literal: never spliced as SQL text, whatever it holds.
    """
    return sql.SQL("{} SET {} TO {}").format(
        _role_target(role, database),
        sql.Identifier(name),
        sql.SQL(", ").join(sql.Literal(value) for value in values),
    )


def reset_role_setting(role: str, database: str | None, name: str) -> sql.Composed:
    """``ALTER ROLE <role> [IN DATABASE <db>] RESET <name>``."""
    return sql.SQL("{} RESET {}").format(_role_target(role, database), sql.Identifier(name))


def set_connection_limit(role: str, limit: int) -> sql.Composed:
    """``ALTER ROLE <role> CONNECTION LIMIT <n>`` (-1: no limit)."""
    return sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
        sql.Identifier(role), sql.Literal(int(limit))
    )


def set_valid_until(role: str, valid_until: str) -> sql.Composed:
    """``ALTER ROLE <role> VALID UNTIL '<timestamp>'`` (the grammar takes a string only)."""
    return sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(
        sql.Identifier(role), sql.Literal(valid_until)
    )


def grant_role(
    role: str, member: str, *, inherit: bool, set_: bool, with_options: bool
) -> sql.Composed:
    """``GRANT <role> TO <member>``, on PostgreSQL 16+ ``WITH INHERIT <b>, SET <b>`` so the
    member gets no more than the grant it copies (granting again updates the options)."""
    grant = sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(member))
    if not with_options:
        return grant
    return sql.SQL("{} WITH INHERIT {}, SET {}").format(
        grant,
        sql.SQL("TRUE" if inherit else "FALSE"),
        sql.SQL("TRUE" if set_ else "FALSE"),
    )


def revoke_role(role: str, member: str) -> sql.Composed:
    """``REVOKE <role> FROM <member>``."""
    return sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(member))
