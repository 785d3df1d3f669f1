"""Transaction access modes: what a transaction that changes a role asks for.

``default_transaction_read_only`` (for the role, the database or the server) is a default,
not a lock (PostgreSQL: "not a security measure"): on the primary, a session may ask for
READ WRITE, and the rotation's transactions that change a password do, so that such a
default does not stop a rotation. A standby refuses ``BEGIN READ WRITE`` (SQLSTATE 0A000),
which :mod:`handlers.single_user` tells apart. Its own module so that the master's session
(:mod:`handlers.master`) and the role operations (:mod:`handlers.pg_roles`) need not import
each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = ["read_write", "server_default_mode"]


def read_write(conn: psycopg.Connection[Any]) -> None:
    """The next transaction ``conn`` begins asks for READ WRITE (``BEGIN READ WRITE``).
    Only for an idle connection: psycopg sets it for the transactions it begins."""
    from psycopg.pq import TransactionStatus  # loaded: conn is psycopg's

    if conn.info.transaction_status == TransactionStatus.IDLE and conn.read_only is not False:
        conn.read_only = False


def server_default_mode(conn: psycopg.Connection[Any]) -> None:
    """Undo :func:`read_write`: the next transaction takes the server's default mode (a
    read-only question to a host that may be a standby). A failed transaction is rolled
    back first (a standby's refusal of ``BEGIN READ WRITE`` leaves one)."""
    from psycopg.pq import TransactionStatus  # loaded: conn is psycopg's

    if conn.info.transaction_status == TransactionStatus.INERROR:
        conn.rollback()
    if conn.info.transaction_status == TransactionStatus.IDLE:
        conn.read_only = None
