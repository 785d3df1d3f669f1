"""Every statement of a rotation bounded by the step's deadline, in a way poolers pass.

The bounds used to travel in the startup packet (libpq ``options``: ``-c
statement_timeout=...``). PgBouncer refuses that parameter (``unsupported startup
parameter: options``) unless told to ignore it, which would drop the bounds silently; RDS
Proxy refuses it too. A session-level ``SET`` after login is no better: in transaction
pooling the server connection goes to another client after each transaction, with the
setting. So each transaction sets its own, as its first statement, with ``SET LOCAL``
semantics (:func:`handlers.pg_sql.bound_transaction`): the bound ends with the transaction,
on whatever server connection a pooler chose for it, and is computed from the time the step
has left when the transaction starts (later transactions get less). Advisory locks are
transaction-scoped for the same reason (:func:`handlers.pg_sql.pair_lock`).

The connector turns each connection it opens into a ``BoundedConnection``
(:func:`bound`), whatever made it (``psycopg.connect`` or a factory a test injects):
``execute`` on an idle connection and ``transaction()`` opening one send the bound first.
Cursors made with ``conn.cursor()`` are not covered; the handlers use ``conn.execute``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

    from rotation.retry import Deadline

__all__ = ["bound", "statement_bounds"]

# A lock wait gives up this share of the statement's time (at most 1 s) before the statement
# itself would: the more precise error (55P03, "a lock blocked it") wins the race.
_LOCK_SHARE = 0.1
_LOCK_LEAD_MAX_MS = 1000
_DEADLINE = "_rotation_deadline"


def statement_bounds(deadline: Deadline) -> tuple[int, int]:
    """``statement_timeout`` and ``lock_timeout`` in ms for a transaction starting now."""
    # Never 0: 0 would switch the timeouts off.
    statement_ms = max(int(deadline.remaining() * 1000), 1)
    lock_ms = max(statement_ms - min(int(statement_ms * _LOCK_SHARE), _LOCK_LEAD_MAX_MS), 1)
    return statement_ms, lock_ms


@functools.cache
def _bounded_class() -> type[psycopg.Connection[Any]]:
    # Built on first use: psycopg is imported with the first connection (see pg_connect),
    # and so is pg_sql, which imports it.
    import psycopg
    from psycopg import pq

    from handlers.pg_sql import bound_transaction

    class BoundedConnection(psycopg.Connection[Any]):
        """A psycopg connection whose transactions start with the step's bounds."""

        __slots__ = ()

        def _send_bounds(self) -> None:
            deadline: Deadline = getattr(self, _DEADLINE)
            statement_ms, lock_ms = statement_bounds(deadline)
            # Never prepared: a pooler in transaction mode may not know the statement on the
            # next server connection.
            super().execute(bound_transaction(), (str(statement_ms), str(lock_ms)), prepare=False)

        def _idle(self) -> bool:
            return self.info.transaction_status == pq.TransactionStatus.IDLE

        def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if not self.autocommit and self._idle():
                self._send_bounds()  # opens the transaction the statement joins
            return super().execute(query, params, **kwargs)

        @contextmanager
        def transaction(
            self, savepoint_name: str | None = None, force_rollback: bool = False
        ) -> Iterator[Any]:
            opens = self._idle()
            with super().transaction(savepoint_name, force_rollback) as tx:
                if opens:
                    self._send_bounds()
                yield tx

    return BoundedConnection


def bound(conn: psycopg.Connection[Any], deadline: Deadline) -> psycopg.Connection[Any]:
    """``conn``, its transactions from now on bounded by ``deadline``.

    The class is swapped rather than the connection wrapped, so that callers keep a
    ``psycopg.Connection`` whatever factory made it (the subclass adds no state: the
    deadline is an attribute of the instance).
    """
    import psycopg

    setattr(conn, _DEADLINE, deadline)
    if type(conn) is psycopg.Connection:
        conn.__class__ = _bounded_class()
    return conn
