"""A throwaway PostgreSQL cluster with TLS, shared by the session, and users in it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from testbed.pgcluster import PostgresCluster, running_cluster


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresCluster]:
    """The session's cluster: scram-sha-256 on 127.0.0.1, TLS with a private CA.

    ``PGSSLROOTCERT`` points at that CA, so secrets without an ``ssl`` key (verify-full,
    the default) connect exactly as they would to RDS with its bundle.
    """
    with running_cluster(tls=True) as cluster:
        assert cluster.certificates is not None
        saved = os.environ.get("PGSSLROOTCERT")
        os.environ["PGSSLROOTCERT"] = str(cluster.certificates.ca_cert)
        try:
            yield cluster
        finally:
            if saved is None:
                os.environ.pop("PGSSLROOTCERT", None)
            else:
                os.environ["PGSSLROOTCERT"] = saved


def admin_connect(cluster: PostgresCluster) -> psycopg.Connection[Any]:
    return psycopg.connect(**cluster.conninfo(), autocommit=True)


def set_role_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Like the handlers do it: a SCRAM verifier, so the server log never sees plaintext."""
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(verifier.decode())
        )
    )


@pytest.fixture
def make_user(pg: PostgresCluster) -> Iterator[Callable[..., tuple[str, str]]]:
    """Create a LOGIN role with a random password and a table it owns; dropped afterwards."""
    created: list[str] = []

    def make(name: str | None = None, password: str | None = None) -> tuple[str, str]:
        name = name or f"app_{secrets.token_hex(4)}"
        password = password or secrets.token_urlsafe(18)
        with admin_connect(pg) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
            set_role_password(conn, name, password)
            conn.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(name))
            )
        created.append(name)
        return name, password

    yield make
    with admin_connect(pg) as conn:
        for name in created:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def can_login(cluster: PostgresCluster, user: str, password: str) -> bool:
    try:
        psycopg.connect(**cluster.conninfo(user, password)).close()
    except psycopg.OperationalError:
        return False
    return True


class ServerLog:
    """The part of the server log written since a mark."""

    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster
        self.offset = len(cluster.server_log())

    def since(self) -> str:
        return self.cluster.server_log()[self.offset :]

    def connections(self) -> int:
        """TCP connections the server accepted since the mark."""
        return self.since().count("connection received:")


@pytest.fixture
def server_log(pg: PostgresCluster) -> ServerLog:
    return ServerLog(pg)
