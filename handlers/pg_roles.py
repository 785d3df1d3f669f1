"""Role operations on an open connection, shared by the PostgreSQL strategies."""

from __future__ import annotations

from typing import Any

import psycopg

from handlers.pg_connect import statement_error
from handlers.pg_sql import alter_password, probe, scram_verifier

__all__ = ["run_probe", "set_password"]


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Set ``role``'s password from a SCRAM verifier, in its own transaction."""
    try:
        with conn.transaction():
            conn.execute(alter_password(role, scram_verifier(conn, role, password)))
    except psycopg.Error as exc:
        raise statement_error(exc, f"changing the password of {role!r}") from exc


def run_probe(conn: psycopg.Connection[Any], query: str) -> None:
    """Run the operator's probe query and read its result."""
    try:
        conn.execute(probe(query)).fetchall()
    except psycopg.Error as exc:
        raise statement_error(exc, "the probe query as AWSPENDING") from exc
