"""Every SQL statement the PostgreSQL strategies send, composed with ``psycopg.sql``.

DDL takes no bind parameters, so values travel as ``sql.Literal``. A password never does:
``ALTER ROLE ... PASSWORD`` carries the SCRAM-SHA-256 verifier computed on the client, so
the plaintext reaches neither the server nor its statement log.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from handlers.pg_authorised import AuthorisedRole
from handlers.pg_scram import ITERATIONS, deterministic_verifier, random_verifier
from rotation_contract.pg.errors import DatabaseError

__all__ = ["PINNED_SEARCH_PATH", "alter_password", "pin_search_path", "probe", "scram_verifier"]

# The only schemas the master's SQL resolves names in (see :func:`pin_search_path`).
PINNED_SEARCH_PATH = "pg_catalog, pg_temp"


def _target(target: AuthorisedRole) -> sql.Identifier:
    """The role a statement changes: only ever one the guard authorised
    (:mod:`handlers.pg_authority`). Checked at run time too, so a bare name fails loudly."""
    if not isinstance(target, AuthorisedRole):
        raise TypeError(f"a role to change must come from the guard, got {type(target).__name__}")
    return sql.Identifier(target.role)


# The server-reported scram_iterations libpq may use for a non-ASCII password (SASLprep is
# libpq's): PostgreSQL's default up to a cost that still fits a step's deadline.
_LIBPQ_ITERATIONS = range(ITERATIONS, 100_000 + 1)


def scram_verifier(
    conn: psycopg.Connection[Any], role: str, password: str, *, token: str | None = None
) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` for ``role``, computed locally with
    :data:`handlers.pg_scram.ITERATIONS` iterations.

    With ``token`` (multi-user setSecret), the salt comes from the rotation's token and the
    role (:mod:`handlers.pg_scram`), so that setting the same password again in a re-attempt
    stores the byte-identical verifier; otherwise the salt is random.

    A non-ASCII password needs SASLprep, which libpq has and we do not: libpq computes it,
    with the iteration count the server reports (``scram_iterations``, PostgreSQL 16+), a
    setting the role itself or the database's owner may change. So libpq gets it only when
    the server reports none or one within PostgreSQL's default and 100000; otherwise this
    raises :class:`rotation_contract.pg.errors.DatabaseError` naming the setting. The algorithm is
    named explicitly: with None, libpq would ask the server for its
    ``password_encryption`` and could fall back to md5.
    """
    ours = (
        deterministic_verifier(password, token=token, role=role)
        if token is not None
        else random_verifier(password)
    )
    if ours is not None:
        return ours
    reported = conn.info.parameter_status("scram_iterations")
    if reported is not None and not (reported.isdigit() and int(reported) in _LIBPQ_ITERATIONS):
        raise DatabaseError(
            f"the new password of {role!r} is not ASCII, so its SCRAM verifier needs the "
            f"server's scram_iterations, and the server reports {reported!r} (outside "
            f"{ITERATIONS}..{_LIBPQ_ITERATIONS[-1]}): a setting the role itself or the "
            f"database's owner can change, hostile or misconfigured. Reset it "
            f"(ALTER ROLE {role} RESET scram_iterations, or ALTER DATABASE <db> RESET "
            f"scram_iterations; see pg_db_role_setting), or use an ASCII password "
            f"(ExcludeCharacters / a generator without non-ASCII characters), then retry"
        )
    verifier = conn.pgconn.encrypt_password(
        password.encode("utf-8"), role.encode("utf-8"), b"scram-sha-256"
    )
    return verifier.decode("ascii")


def alter_password(target: AuthorisedRole, verifier: str) -> sql.Composed:
    """``ALTER ROLE <role> PASSWORD '<verifier>'``."""
    return sql.SQL("ALTER ROLE {} PASSWORD {}").format(_target(target), sql.Literal(verifier))


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
    """Parameterised: ``(key,)``, the pair's key from :func:`handlers.pg_lock.pair_lock_key`
    (an HMAC only the rotation can compute: a guessable key let any role that can connect
    hold the lock and stall every rotation). A transaction-scoped advisory lock on the
    pair, so that two invocations changing the same roles at the same moment (Secrets
    Manager re-invoking while an operator invokes by hand) take turns instead of racing in
    the catalog, where PostgreSQL answers concurrent ``ALTER ROLE`` with "tuple
    concurrently updated" and concurrent ``CREATE ROLE`` with a duplicate-key error."""
    return sql.SQL("SELECT pg_catalog.pg_advisory_xact_lock(%s::bigint)")


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


def create_login_role(target: AuthorisedRole, verifier: str) -> sql.Composed:
    """``CREATE ROLE <role> WITH LOGIN PASSWORD '<verifier>'``."""
    return sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
        _target(target), sql.Literal(verifier)
    )


def grant_membership(owner: str, member: AuthorisedRole) -> sql.Composed:
    """``GRANT <owner> TO <member>``: the member gets the owner's privileges and may SET ROLE.

    Plain GRANT has the same meaning on PostgreSQL 13 to 18 (16 added ``WITH INHERIT/SET``
    options whose defaults are what we want: inherit per the member's INHERIT attribute,
    SET allowed).
    """
    return sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), _target(member))


def default_role(member: AuthorisedRole, owner: str) -> sql.Composed:
    """``ALTER ROLE <member> SET role = <owner>``: every session of the member starts as the
    owner, so objects it creates are owned by the owner."""
    return sql.SQL("ALTER ROLE {} SET role = {}").format(_target(member), sql.Literal(owner))


def rotation_expiry() -> sql.SQL:
    """Parameterised: ``(seconds, microseconds)``. The previous password's expiry, on the
    server's clock, as :func:`role_limits` spells a validity: the whole second at or before
    ``now() + seconds``, minus one second, plus ``microseconds`` (the rotation's mark, see
    :mod:`handlers.pg_expiry`): never later than ``now() + seconds``."""
    return sql.SQL(
        "SELECT pg_catalog.to_char((pg_catalog.date_trunc('second', pg_catalog.now()"
        " + pg_catalog.make_interval(secs => %s)) - interval '1 second'"
        " + pg_catalog.make_interval(secs => %s::float8 / 1000000))"
        " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    )


def role_validity_passed() -> sql.SQL:
    """Parameterised: ``(role,)``; the role's validity spelt as :func:`role_limits` does,
    and whether it has passed on the server's clock."""
    return sql.SQL(
        "SELECT CASE WHEN rolvaliduntil IS NULL THEN 'infinity'"
        " WHEN isfinite(rolvaliduntil) THEN pg_catalog.to_char("
        "rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        " ELSE rolvaliduntil::text END, coalesce(rolvaliduntil <= pg_catalog.now(), false)"
        " FROM pg_catalog.pg_roles WHERE rolname = %s"
    )


# -- The master's session (handlers.master.MasterSession) ---------------------------------


def pin_search_path() -> sql.SQL:
    """The first statement of every transaction the master runs: names resolve in
    ``pg_catalog`` only (``pg_temp`` last, where it finds no function or operator).

    The master logs in to the application's database, whose owner may ``ALTER DATABASE ...
    SET search_path = public, pg_catalog`` and put an operator such as ``public.=(oid, oid)``
    there: every unqualified ``=`` of the master's catalog queries would then run the
    owner's function with the master's rights. ``SET LOCAL`` (not ``SET``, not the startup
    packet's ``options``) because it ends with the transaction: behind a transaction-pooling
    PgBouncer the server session is shared, and the pin must neither leak to other clients
    nor be missing from the next transaction. Costs one round trip per master transaction
    (a rotation's master runs two: stragglers, then the change), no connection.
    """
    return sql.SQL("SET LOCAL search_path = " + PINNED_SEARCH_PATH)


# -- The master's guard (handlers.pg_authority) reads these -------------------------------


def session_role() -> sql.SQL:
    """Who this session logged in as (``session_user``: ``SET ROLE`` does not change it),
    and the search_path in force, which the guard checks is the master's pin
    (:func:`pin_search_path`) before it runs a query with an operator in it. Calls no
    operator and no unqualified function: safe before the check."""
    return sql.SQL("SELECT session_user, pg_catalog.current_setting('search_path')")


def privileged_closure() -> sql.SQL:
    """Parameterised: ``(roles, named)``. For each existing role in ``roles``: one row for
    the role itself, and one for every role it is a member of, directly or not (any grant,
    whatever its INHERIT/SET options), that has SUPERUSER, CREATEROLE, BYPASSRLS or
    REPLICATION, whose name is in ``named``, or that is predefined (``pg_*``: the guard
    tells the monitoring ones apart). Columns: (start, rolname, rolsuper,
    rolcreaterole, rolbypassrls, rolreplication).

    ``UNION`` (not ``UNION ALL``) ends the recursion on any repeated role; PostgreSQL 16+
    may hold several grants of one role to one member (one per grantor), which it also
    folds. Written against the catalog columns PostgreSQL 13 to 18 share.
    """
    return sql.SQL(
        "WITH RECURSIVE closure(start, oid) AS ("
        " SELECT r.rolname, r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = ANY(%s)"
        " UNION"
        " SELECT c.start, m.roleid FROM pg_catalog.pg_auth_members m"
        " JOIN closure c ON m.member = c.oid)"
        " SELECT c.start::text, r.rolname::text, r.rolsuper, r.rolcreaterole, r.rolbypassrls,"
        " r.rolreplication FROM closure c JOIN pg_catalog.pg_roles r ON r.oid = c.oid"
        " WHERE r.rolname = c.start OR r.rolsuper OR r.rolcreaterole OR r.rolbypassrls"
        " OR r.rolreplication OR r.rolname = ANY(%s)"
        " OR pg_catalog.starts_with(r.rolname::text, 'pg_')"
        " ORDER BY 1, 2"
    )


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


def _role_target(role: AuthorisedRole, database: str | None) -> sql.Composed:
    if database is None:
        return sql.SQL("ALTER ROLE {}").format(_target(role))
    return sql.SQL("ALTER ROLE {} IN DATABASE {}").format(_target(role), sql.Identifier(database))


def set_role_setting(
    role: AuthorisedRole, database: str | None, name: str, values: list[str]
) -> sql.Composed:
    """``ALTER ROLE <role> [IN DATABASE <db>] SET <name> TO '<v1>'[, '<v2>' ...]``.

    Every value is a literal: never spliced as SQL text, whatever it holds.
    """
    return sql.SQL("{} SET {} TO {}").format(
        _role_target(role, database),
        sql.Identifier(name),
        sql.SQL(", ").join(sql.Literal(value) for value in values),
    )


def reset_role_setting(role: AuthorisedRole, database: str | None, name: str) -> sql.Composed:
    """``ALTER ROLE <role> [IN DATABASE <db>] RESET <name>``."""
    return sql.SQL("{} RESET {}").format(_role_target(role, database), sql.Identifier(name))


def set_connection_limit(role: AuthorisedRole, limit: int) -> sql.Composed:
    """``ALTER ROLE <role> CONNECTION LIMIT <n>`` (-1: no limit)."""
    return sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
        _target(role), sql.Literal(int(limit))
    )


def set_valid_until(role: AuthorisedRole, valid_until: str) -> sql.Composed:
    """``ALTER ROLE <role> VALID UNTIL '<timestamp>'`` (the grammar takes a string only)."""
    return sql.SQL("ALTER ROLE {} VALID UNTIL {}").format(_target(role), sql.Literal(valid_until))


def grant_role(
    role: str, member: AuthorisedRole, *, inherit: bool, set_: bool, with_options: bool
) -> sql.Composed:
    """``GRANT <role> TO <member>``, on PostgreSQL 16+ ``WITH INHERIT <b>, SET <b>`` so the
    member gets no more than the grant it copies (granting again updates the options)."""
    grant = sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), _target(member))
    if not with_options:
        return grant
    return sql.SQL("{} WITH INHERIT {}, SET {}").format(
        grant,
        sql.SQL("TRUE" if inherit else "FALSE"),
        sql.SQL("TRUE" if set_ else "FALSE"),
    )


def revoke_role(role: str, member: AuthorisedRole) -> sql.Composed:
    """``REVOKE <role> FROM <member>``."""
    return sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), _target(member))
