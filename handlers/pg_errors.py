"""What a failed statement on an open connection means, in words that name the fix.

Once a connection is up, psycopg raises one class per SQLSTATE, so the cause is read from
the class (a login failure is different: see :mod:`rotation_contract.pg.login`). Its own module so
that the role operations (:mod:`handlers.pg_roles`) and the connector
(:mod:`handlers.pg_connect`) need not import each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rotation_contract.pg.errors import DatabaseError
from rotation_contract.pg.login import login_failure_reason

if TYPE_CHECKING:
    import psycopg

__all__ = ["ReadOnlyHostError", "ReplicaLagError", "pair_lock_error", "statement_error"]


class ReadOnlyHostError(DatabaseError):
    """The secret's host is a read-only standby, where no password can be changed (single-user
    setSecret: the standby refuses the READ WRITE transaction the change asks for). Nothing
    changed. A primary whose ``default_transaction_read_only`` is on is no such host: the
    rotation asks for READ WRITE there, and only something that makes the transaction
    read-only after it began (a function setting ``transaction_read_only``) gets this error
    on a primary, with its own message.

    Fix: point ``host`` at the writer (the primary instance, or the cluster's writer
    endpoint), or rotate multi-user, which changes the password on the primary. On a
    primary, remove what sets ``transaction_read_only`` for the role or database.
    """


class ReplicaLagError(DatabaseError):
    """The new password did not reach the standby named by ``host`` within the step's time
    (multi-user testSecret on a read replica).

    Fix: usually none: Secrets Manager's re-attempt tests again. If it recurs, check the
    replica's lag (``pg_stat_replication``, ``recovery_min_apply_delay``) or raise the
    function's timeout.
    """


# How to find the session that holds the lock, for the error message.
_FIND_BLOCKER = (
    "find it in pg_stat_activity (an old xact_start, state 'idle in transaction'; while it "
    "blocks, pg_blocking_pids() of the waiting session and pg_locks name it), end its "
    "transaction (COMMIT, ROLLBACK or pg_terminate_backend(pid)), then retry the rotation"
)


def pair_lock_error(exc: psycopg.Error, doing: str) -> DatabaseError:
    """Waiting for the pair's advisory lock (:func:`handlers.pg_sql.pair_lock`) failed."""
    from psycopg import errors  # psycopg is loaded: exc came from it

    if not isinstance(exc, (errors.LockNotAvailable, errors.QueryCanceled)):
        return statement_error(exc, doing)
    return DatabaseError(
        f"{doing} failed: another session held the pair's advisory lock until the time the "
        f"step had left ran out ({type(exc).__name__}, {exc.sqlstate}). Usually another "
        f"invocation of this rotation still at work: wait for it and retry. Otherwise find "
        f"the holder in pg_locks (locktype 'advisory', granted) joined to pg_stat_activity "
        f"on pid, end it (pg_terminate_backend(pid)), then retry the rotation"
    )


def statement_error(exc: psycopg.Error, doing: str) -> DatabaseError:
    """A failed statement on an open connection; these do carry a SQLSTATE."""
    from psycopg import errors  # psycopg is loaded: exc came from it

    if isinstance(exc, errors.LockNotAvailable):
        return DatabaseError(
            f"{doing} failed: a lock held by another session blocked the statement until "
            f"the time the step had left ran out (lock_timeout; LockNotAvailable, "
            f"{exc.sqlstate}). Another transaction holds a lock on the same object, e.g. "
            f"it altered the role and has not committed: {_FIND_BLOCKER}"
        )
    if isinstance(exc, errors.QueryCanceled):
        return DatabaseError(
            f"{doing} failed: the statement was cancelled when the time the step had left "
            f"ran out (statement_timeout), or by an administrator (QueryCanceled, "
            f"{exc.sqlstate}). A statement this slow is usually waiting for a lock held by "
            f"another session: {_FIND_BLOCKER}"
        )
    sqlstate = exc.sqlstate or "no SQLSTATE"
    return DatabaseError(
        f"{doing} failed ({type(exc).__name__}, {sqlstate}): {login_failure_reason(exc)}"
    )
