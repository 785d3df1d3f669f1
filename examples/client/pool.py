"""A psycopg_pool pool whose new connections follow rotations (extra ``pool``)."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from rotation_client import make_pool


def open_pool(secret_id: str) -> ConnectionPool[Any]:
    # Every connection the pool opens picks its credential as connect() does; recycle
    # connections as you would anyway (max_lifetime, in seconds).
    return make_pool(secret_id, min_size=2, max_size=10, max_lifetime=3600, open=True)


def current_user(pool: ConnectionPool[Any]) -> str:
    with pool.connection() as conn:
        row = conn.execute("SELECT current_user").fetchone()
    return "" if row is None else str(row[0])
