"""Role operations on an open connection, shared by the PostgreSQL strategies."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg

from handlers.pg_authority import (
    AuthorityError,
    MasterAction,
    PairError,
    authorise,
    own_login,
)
from handlers.pg_errors import pair_lock_error, statement_error
from handlers.pg_expiry import (
    NO_EXPIRY,
    Validity,
    expiry_time,
    is_rotation_expiry,
    new_expiry,
    operator_validity,
    read_validity,
    set_validity,
)
from handlers.pg_lock import lock_secret, pair_lock_key
from handlers.pg_modes import read_write
from handlers.pg_parity import ParityError, match_owner
from handlers.pg_sql import (
    alter_password,
    create_login_role,
    default_role,
    grant_membership,
    pair_lock,
    probe,
    role_exists,
    scram_verifier,
)
from rotation.observability import logger
from rotation_contract.pg.errors import DatabaseError

if TYPE_CHECKING:
    from handlers.master import MasterSession

__all__ = [
    "PairError",
    "ParityError",
    "acting_role",
    "ensure_alternate_user",
    "expire_previous",
    "in_recovery",
    "master_set_password",
    "run_probe",
    "set_own_password",
]


# A concurrent invocation that created the clone first (outside our lock: another tool, or
# a master logged in to another database) is met by one more attempt, which then finds it.
_ATTEMPTS = 2


def set_own_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """A session logged in as ``role`` sets its own password from a SCRAM verifier, in its
    own transaction, holding the pair's advisory lock (see
    :func:`handlers.pg_sql.pair_lock`). No master: the login itself is the authority."""
    target = own_login(conn, role)
    doing = f"changing the password of {role!r}"
    try:
        read_write(conn)
        with conn.transaction():
            # Keyed by the pending password: every invocation of this rotation holds it,
            # an application does not (handlers.pg_lock).
            _take_pair_lock(conn, pair_lock_key(lock_secret(password), role), doing)
            conn.execute(alter_password(target, scram_verifier(conn, role, password)))
    except psycopg.Error as exc:
        raise statement_error(exc, doing) from exc


def _take_pair_lock(conn: psycopg.Connection[Any], key: int, doing: str) -> None:
    """Wait for the pair's advisory lock, with a message that names it when that fails."""
    try:
        conn.execute(pair_lock(), (key,))
    except psycopg.Error as exc:
        raise pair_lock_error(exc, doing) from exc


def master_set_password(master: MasterSession, action: MasterAction, password: str) -> None:
    """As the master: set ``action.role``'s password, if the guard
    (:func:`handlers.pg_authority.authorise`) allows it, in one (pinned) transaction holding
    the role's advisory lock. Single-user recovery and single-user reconcile.

    Raises
    ------
    AuthorityError
        The guard refused; nothing changed.
    """
    role = action.role
    try:
        with master.transaction(writes=True) as conn:
            _take_pair_lock(conn, master.pair_lock_key(role), f"changing the password of {role!r}")
            target = authorise(conn, action)
            conn.execute(alter_password(target, scram_verifier(conn, role, password)))
    except AuthorityError:
        raise
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


def ensure_alternate_user(
    master: MasterSession, action: MasterAction, *, password: str, token: str | None = None
) -> bool:
    """Create ``action.role`` or change its password, and make it act as the pair's owner;
    one (pinned) transaction of the master's.

    When the role is the clone, it is also made to match the owner at login: settings,
    connection limit, validity and memberships (:func:`handlers.pg_parity.match_owner`).
    When it is the owner, the clone is current and is left alone.

    Changes only what the guard allows (:func:`handlers.pg_authority.authorise`: a real
    pair, not the master, nothing privileged, on proven or managed grounds). A crash leaves
    either no clone or a complete one. Returns True when the role was created.

    With the rotation's ``token``, the verifier's salt comes from it
    (:mod:`handlers.pg_scram`): running this again in a re-attempt stores exactly what the
    first run stored, and every other statement finds its change already made.

    Raises
    ------
    AuthorityError
        The guard refused (:class:`PairError`: a role with the partner's name exists
        outside the pair); nothing changed.
    ParityError
        The clone could not be made to match the owner; nothing changed.
    """
    assert action.pair is not None  # noqa: S101  # a pair action by construction
    user = action.role
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return _ensure_alternate_user_once(master, action, password=password, token=token)
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation) as exc:
            # Mapped by SQLSTATE (42710, 23505): someone created the role between our check
            # and our CREATE. "Already done" for the creation; the next attempt finds the
            # role and checks that it is in the pair before touching it.
            if attempt == _ATTEMPTS:
                raise statement_error(exc, f"creating user {user!r}") from exc
            logger.info("the alternate user was created concurrently; checking it again")
    raise AssertionError("unreachable")  # pragma: no cover


def _ensure_alternate_user_once(
    master: MasterSession, action: MasterAction, *, password: str, token: str | None
) -> bool:
    assert action.pair is not None  # noqa: S101  # checked by the caller
    user, owner = action.role, action.pair[0]
    try:
        with master.transaction(writes=True) as conn:
            _take_pair_lock(conn, master.pair_lock_key(owner), f"setting up user {user!r}")
            exists = conn.execute(role_exists(), (user,)).fetchone() is not None
            target = authorise(conn, action)
            verifier = scram_verifier(conn, user, password, token=token)
            conn.execute(
                alter_password(target, verifier) if exists else create_login_role(target, verifier)
            )
            if user != owner:
                # Also on an existing clone: upgrades one the AWS reference created.
                conn.execute(grant_membership(owner, target))
                conn.execute(default_role(target, owner))
            # The rotation's expiry (PREVIOUS_PASSWORD_TTL) comes off the user rotated in,
            # and never stays on AWSCURRENT (handlers.pg_expiry); the clone gets the
            # operator's value through parity.
            _restore_validity(conn, action, read_validity(conn, list(action.pair)), target)
            if user != owner:
                match_owner(conn, owner=owner, clone=target)
    except (
        AuthorityError,
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


def _heal_current(
    conn: psycopg.Connection[Any], action: MasterAction, validity: Validity, want: str
) -> None:
    """AWSCURRENT (the proven user) never keeps a rotation's expiry: none of our paths puts
    one there, but a hand-moved label, a late invocation of an old rotation or an old
    version's bug might; met here, it gets the operator's value back."""
    assert action.pair is not None  # noqa: S101  # a pair action by construction
    proven = action.proven
    if proven is None or not is_rotation_expiry(validity.of(proven) or ""):
        return
    healed = authorise(
        conn,
        MasterAction(
            role=proven, what=f"{action.what} (AWSCURRENT's expiry)", pair=action.pair,
            proven=proven,
        ),
    )  # fmt: skip
    set_validity(conn, healed, want)
    logger.warning(
        "AWSCURRENT's user carried a rotation's expiry; cleared it",
        extra={"user": proven, "valid_until": want},
    )


def _restore_validity(
    conn: psycopg.Connection[Any], action: MasterAction, validity: Validity, target: Any
) -> None:
    assert action.pair is not None  # noqa: S101  # a pair action by construction
    owner, clone = action.pair
    want = operator_validity(validity.of(owner) or NO_EXPIRY, validity.of(clone))
    _heal_current(conn, action, validity, want)
    if action.role == owner and is_rotation_expiry(validity.of(owner) or ""):
        set_validity(conn, target, want)
        logger.info("the user rotated in gets the operator's validity back", extra={"user": owner})


def expire_previous(
    master: MasterSession,
    action: MasterAction,
    *,
    seconds: int,
    still_promoted: Callable[[], bool],
) -> str | None:
    """As the master, give ``action.role`` (the AWSPREVIOUS user) a rotation's expiry at
    most ``seconds`` ahead on the server's clock; one transaction holding the pair's lock.

    ``still_promoted`` is asked under the lock (:class:`rotation.strategy.PromotedRequest`):
    a later rotation's setSecret, which gives this user a new password and takes the
    expiry off, takes the same lock, so an expiry is never set after it. An expiry already
    sooner (the operator's, or ours from a first attempt) is kept. Returns the expiry in
    effect, or None when nothing was done (no longer the previous user).

    Raises
    ------
    AuthorityError
        The guard refused; nothing changed.
    """
    assert action.pair is not None  # noqa: S101  # a pair action by construction
    role, owner = action.role, action.pair[0]
    try:
        with master.transaction(writes=True) as conn:
            _take_pair_lock(
                conn, master.pair_lock_key(owner), f"giving the previous user {role!r} its expiry"
            )
            if not still_promoted():
                logger.info(
                    "no expiry set: the token is no longer AWSCURRENT, or a later rotation "
                    "has started (it gives this user a new password)",
                    extra={"user": role},
                )
                return None
            target = authorise(conn, action)
            validity = read_validity(conn, list(action.pair))
            want = operator_validity(validity.of(owner) or NO_EXPIRY, validity.of(action.pair[1]))
            _heal_current(conn, action, validity, want)
            expiry = new_expiry(conn, seconds)
            have = validity.of(role) or NO_EXPIRY
            have_time, new_time = expiry_time(have), expiry_time(expiry)
            if have == "-infinity" or (
                have_time is not None and new_time is not None and have_time <= new_time
            ):
                return have  # already no later: the operator's, or a first attempt's
            set_validity(conn, target, expiry)
    except AuthorityError:
        raise
    except psycopg.Error as exc:
        raise statement_error(exc, f"giving the previous user {role!r} its expiry") from exc
    return expiry
