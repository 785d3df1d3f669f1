"""Where the master credential logs in, and the only way it runs SQL: one rule for every
path that uses it (single-user recovery, multi-user setSecret, ``rotation verify
--reconcile``, and the command's read-only uses: ``status``, ``doctor``, ``plan``).

A master secret with a ``host`` logs in there; one made by RDS (only ``username`` and
``password``) at the primary its ``aws:rds:primaryDb*Arn`` tag names, asked of the RDS API
(:class:`handlers.rds.RdsTopology`). Either way that host must be the user's host, or the
primary the user's host reads from (asked of the RDS API too): otherwise the master's
credential would be sent to a server the secret's writer chose.

Once logged in, the master runs SQL only inside :meth:`MasterSession.transaction`, whose
first statement pins ``search_path`` to ``pg_catalog, pg_temp``
(:func:`handlers.pg_sql.pin_search_path`): the master logs in to the application's database,
whose owner controls its schemas and its ``ALTER DATABASE ... SET`` defaults, and an
operator or function that owner put first in the path would otherwise run with the master's
rights. The connector opens a :class:`~rotation_contract.pg.secret.MasterSecret` for
:func:`open_master` only, the session hands its connection out only inside a pinned
transaction, and the guard (:func:`handlers.pg_authority.authorise`) checks the pin before
its first operator; ``tests/unit/test_authority_boundary.py`` holds the source to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

# The seal the connector asks of a MasterSecret: held here only.
from handlers.pg_connect import _MASTER_SEAL
from handlers.rds import RdsTopology
from rotation.errors import SecretFormatError
from rotation.retry import Deadline
from rotation_contract.pg.secret import (
    MasterSecret,
    PostgresSecret,
    master_login,
    parse_postgres_secret,
)

if TYPE_CHECKING:
    import psycopg

    from handlers.pg_connect import PostgresConnector

__all__ = ["MASTER_WHO", "MasterSession", "locate_master", "open_master"]

# How the master's credential is named in messages.
MASTER_WHO = "the master secret"


class MasterSession:
    """The master's logged-in session. Its connection is reachable only inside
    :meth:`transaction`, so no statement of the master's runs outside a pinned transaction.
    Close it (or use it as a context manager) when done."""

    def __init__(self, conn: psycopg.Connection[Any], *, password: str) -> None:
        # Imported by the steps that log in only (like psycopg).
        from handlers.pg_lock import lock_secret

        self._conn = conn
        # Derived from the master's password, which is not kept (handlers.pg_lock).
        self._lock_secret = lock_secret(password)

    def pair_lock_key(self, owner: str) -> int:
        """The key of ``owner``'s pair lock (:func:`handlers.pg_lock.pair_lock_key`)."""
        from handlers.pg_lock import pair_lock_key

        return pair_lock_key(self._lock_secret, owner)

    @property
    def info(self) -> psycopg.ConnectionInfo:
        """Who and where (for messages and server-version checks); runs nothing."""
        return self._conn.info

    @contextmanager
    def transaction(self, *, writes: bool) -> Iterator[psycopg.Connection[Any]]:
        """One transaction whose first statement pins ``search_path``
        (:func:`handlers.pg_sql.pin_search_path`); committed when the block ends, rolled
        back when it raises. Use the connection it yields inside the block only.

        ``writes`` (no default: each caller decides): True for a transaction that changes a
        role, which asks for READ WRITE (:func:`handlers.pg_modes.read_write`) and which a
        standby refuses; False for one that only reads (sessions, privileges, whether the
        host is a standby), which takes the server's default and works on a standby too."""
        # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
        from handlers.pg_modes import read_write, server_default_mode
        from handlers.pg_sql import pin_search_path

        if writes:
            read_write(self._conn)  # the master changes roles: never a read-only default
        else:
            server_default_mode(self._conn)
        with self._conn.transaction():
            self._conn.execute(pin_search_path())
            yield self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> MasterSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_master(
    connector: PostgresConnector,
    master: MasterSecret,
    deadline: Deadline,
    *,
    floor: str,
    who: str = MASTER_WHO,
) -> MasterSession:
    """Log in as the master (see :meth:`~handlers.pg_connect.PostgresConnector.connect` for
    what it raises)."""
    conn = connector.connect(master, deadline, who=who, floor=floor, _master=_MASTER_SEAL)
    return MasterSession(conn, password=master.password)


def locate_master(
    current: PostgresSecret,
    master_value: Mapping[str, Any],
    *,
    tags: Callable[[], Mapping[str, str]],
    rds: RdsTopology,
    deadline: Deadline,
) -> MasterSecret:
    """The master's credential, logging in at the user's host or the primary it reads from.

    Parameters
    ----------
    current:
        AWSCURRENT of the secret being rotated or reconciled.
    master_value:
        The master secret's AWSCURRENT value.
    tags:
        The master secret's tags, asked only for an RDS-managed master (no ``host``).

    Raises
    ------
    SecretFormatError
        The master is for another host; or it has neither host nor RDS tag.
    RdsError
        The RDS API failed or does not know the tagged instance or cluster.
    """
    master = parse_postgres_secret(master_value, "the master secret", require_engine=False)
    if master.host:
        host, port = master.host, master.port
    else:
        # Made by RDS: only username and password; the database is in the tags.
        host, port = rds.primary_endpoint(tags(), deadline)
    if host.lower() != current.host.lower() and not rds.is_reader_of(current.host, host, deadline):
        raise SecretFormatError(
            f"the master secret is for host {host!r}, which is neither the user's host "
            f"({current.host!r}) nor the primary it reads from; refusing to use it"
        )
    return master_login(current, master, host=host, port=port, dbname=master_value.get("dbname"))
