"""asyncio: one connection, and a pool (extra ``async`` for the pool)."""

from __future__ import annotations

import asyncio
import sys

from rotation_client import connect_async, make_async_pool


async def current_user(secret_id: str) -> str:
    async with await connect_async(secret_id, autocommit=True) as conn:  # AsyncConnection
        cursor = await conn.execute("SELECT current_user")
        row = await cursor.fetchone()
    return "" if row is None else str(row[0])


async def with_a_pool(secret_id: str) -> int:
    # The pool is made closed, as psycopg_pool asks of async pools: `async with` opens it.
    async with (
        make_async_pool(secret_id, min_size=2, max_size=10) as pool,
        pool.connection() as conn,
    ):
        cursor = await conn.execute("SELECT 1")
        row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


if __name__ == "__main__":
    print(asyncio.run(current_user(sys.argv[1] if len(sys.argv) > 1 else "myapp/prod/db")))
