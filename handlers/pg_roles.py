"""Role operations on an open connection, shared by the PostgreSQL strategies."""

from __future__ import annotations

from typing import Any

import psycopg

from handlers.pg_errors import statement_error
from handlers.pg_parity import ParityError, match_owner
from handlers.pg_parity import quoted_name as _quoted
from handlers.pg_sql import (
    alter_password,
    create_login_role,
    default_role,
    grant_membership,
    is_member_of,
    pair_lock,
    probe,
    role_exists,
    scram_verifier,
)
from rotation.errors import DatabaseError
from rotation.observability import logger

__all__ = [
    "PairError",
    "ParityError",
    "acting_role",
    "ensure_alternate_user",
    "in_recovery",
    "run_probe",
    "set_password",
]


class PairError(DatabaseError):
    """A role with the alternate user's name is not the user's rotation partner."""


_LOCK_PREFIX = "secrets-rotation:"
# A concurrent invocation that created the clone first (outside our lock: another tool, or
# a master logged in to another database) is met by one more attempt, which then finds it.
_ATTEMPTS = 2


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Set ``role``'s password from a SCRAM verifier, in its own transaction, holding the
    pair's advisory lock (see :func:`handlers.pg_sql.pair_lock`)."""
    try:
        with conn.transaction():
            conn.execute(pair_lock(), (_LOCK_PREFIX + role,))
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


def in_recovery(conn: psycopg.Connection[Any]) -> bool:
    """Whether the server is a standby (read replica, Aurora reader): in recovery, it
    replays the primary's changes and makes none of its own."""
    row = conn.execute("SELECT pg_catalog.pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def _check_pair(conn: psycopg.Connection[Any], *, user: str, owner: str, exists: bool) -> None:
    """Refuse to touch a role outside the pair ``owner`` / ``owner_clone``.

    The clone is recognised by its membership in the owner role, not by its name alone: a
    role that merely happens to be called ``<owner>_clone`` (or an owner whose "clone" was
    never granted it) belongs to somebody else, and the master must not reset its password.
    A clone that does not exist yet is created as a member, so it is in the pair by birth.
    """
    clone = user if user != owner else f"{owner}_clone"
    if user == owner and not exists:
        raise PairError(
            f"the secret's user {clone!r} has no owner role {owner!r}: multi-user rotation "
            f"alternates {owner!r} and {clone!r}. Create {owner!r} and "
            f"GRANT {_quoted(owner)} TO {_quoted(clone)}, or rotate this secret with the "
            "single-user strategy"
        )
    if not exists:
        return
    if conn.execute(is_member_of(), (owner, clone)).fetchone() is None:
        raise PairError(
            f"role {clone!r} exists but is not a member of {owner!r}, so it is not "
            f"{owner!r}'s rotation partner and its password is not rotation's to change; "
            "nothing was changed. To adopt it deliberately: "
            f"GRANT {_quoted(owner)} TO {_quoted(clone)}; "
            "otherwise rename or drop it"
        )


def ensure_alternate_user(
    conn: psycopg.Connection[Any], *, user: str, owner: str, password: str
) -> bool:
    """Create ``user`` or change its password, and make it act as ``owner``; one transaction.

    When ``user`` is the clone, it is also made to match the owner at login: settings,
    connection limit, validity and memberships (:func:`handlers.pg_parity.match_owner`).
    When ``user`` is the owner, the clone is current and is left alone.

    Changes only a role of the pair (see :func:`_check_pair`). A crash leaves either no
    clone or a complete one. Returns True when the role was created.

    Raises
    ------
    PairError
        A role with the partner's name exists outside the pair; nothing changed.
    ParityError
        The clone could not be made to match the owner; nothing changed.
    """
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return _ensure_alternate_user_once(conn, user=user, owner=owner, password=password)
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation) as exc:
            # Mapped by SQLSTATE (42710, 23505): someone created the role between our check
            # and our CREATE. "Already done" for the creation; the next attempt finds the
            # role and checks that it is in the pair before touching it.
            if attempt == _ATTEMPTS:
                raise statement_error(exc, f"creating user {user!r}") from exc
            logger.info("the alternate user was created concurrently; checking it again")
    raise AssertionError("unreachable")  # pragma: no cover


def _ensure_alternate_user_once(
    conn: psycopg.Connection[Any], *, user: str, owner: str, password: str
) -> bool:
    try:
        with conn.transaction():
            conn.execute(pair_lock(), (_LOCK_PREFIX + owner,))
            exists = conn.execute(role_exists(), (user,)).fetchone() is not None
            _check_pair(conn, user=user, owner=owner, exists=exists)
            verifier = scram_verifier(conn, user, password)
            conn.execute(
                alter_password(user, verifier) if exists else create_login_role(user, verifier)
            )
            if user != owner:
                # Also on an existing clone: upgrades one the AWS reference created.
                conn.execute(grant_membership(owner, user))
                conn.execute(default_role(user, owner))
                match_owner(conn, owner=owner, clone=user)
    except (
        PairError,
        ParityError,
        psycopg.errors.DuplicateObject,
        psycopg.errors.UniqueViolation,
    ):
        raise
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"the master may not set up {user!r} to act as {owner!r} ({exc.sqlstate}: "
            f"{' '.join(str(exc).split())}). It needs CREATEROLE, and on PostgreSQL 16+ also "
            f"ADMIN OPTION on {owner!r}: GRANT {owner} TO <master> WITH ADMIN OPTION"
        ) from exc
    except psycopg.Error as exc:
        raise statement_error(exc, f"setting up user {user!r}") from exc
    return not exists
