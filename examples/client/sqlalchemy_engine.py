"""SQLAlchemy 2.x engines on postgresql+psycopg (extra ``sqlalchemy``)."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine

from rotation_client.sqlalchemy import create_async_engine, create_engine


def make_engine(secret_id: str) -> Engine:
    # Engine keyword arguments go to SQLAlchemy; psycopg's go in connect_args.
    return create_engine(secret_id, pool_pre_ping=True, pool_recycle=3600)


def current_user(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT current_user")).scalar_one())


def make_async_engine(secret_id: str) -> AsyncEngine:
    return create_async_engine(secret_id, pool_recycle=3600)


async def current_user_async(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(text("SELECT current_user"))).scalar_one())
