"""SQLAlchemy 2.x engines whose every new DBAPI connection picks credentials as
:func:`~rotation_client.connect` does (the client's ``sqlalchemy`` extra).

The engines are SQLAlchemy's own, on the ``postgresql+psycopg`` dialect, with its pools,
events and sessions; only how a DBAPI connection is made changes (the documented
``creator`` and ``async_creator`` hooks). So a connection the pool opens after a rotation
(to replace one recycled by ``pool_recycle``, invalidated after a disconnect, or dropped by
``engine.dispose()``) logs in with whichever labelled credential the database accepts: an
authentication failure there refreshes the secret and retries instead of reaching the
application. Connections already in the pool keep working: PostgreSQL checks a password only
at login.

Example
-------
>>> from sqlalchemy import text
>>> from rotation_client.sqlalchemy import create_engine
>>> engine = create_engine("myapp/prod/db", pool_pre_ping=True, pool_recycle=3600)
>>> with engine.connect() as conn:
...     conn.execute(text("SELECT 1"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy

from rotation_client._async import open_async
from rotation_client._knobs import rotating_credentials
from rotation_client.credentials import RotatingCredentials, check_connect_kwargs
from rotation_client.sources import SecretSource

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["URL", "create_async_engine", "create_engine"]

# The dialect and driver; host, user and password come from the secret at each login.
URL = "postgresql+psycopg://"

# Engine arguments that would bypass the secret: the credentials are the point.
_REFUSED = ("creator", "async_creator", "url")


def _check(engine_kwargs: dict[str, Any]) -> dict[str, Any]:
    refused = sorted(set(_REFUSED) & set(engine_kwargs))
    if refused:
        raise TypeError(
            f"{', '.join(refused)}: not taken here (connections are made from the secret); "
            "pass psycopg's connection arguments as connect_args"
        )
    connect_args: dict[str, Any] = dict(engine_kwargs.pop("connect_args", None) or {})
    check_connect_kwargs(connect_args, where="connect_args")  # at once, not at first login
    return connect_args


def create_engine(
    secret_id: str,
    *,
    credentials_: RotatingCredentials | None = None,
    max_age: int | None = None,
    source: SecretSource | None = None,
    client: Any = None,
    **engine_kwargs: Any,
) -> sqlalchemy.Engine:
    """A SQLAlchemy ``Engine`` on ``postgresql+psycopg`` for the secret.

    ``engine_kwargs`` go to ``sqlalchemy.create_engine`` (``pool_size``, ``pool_recycle``,
    ``pool_pre_ping``, ``echo``...); ``connect_args`` go to ``psycopg.connect`` after the
    credential's own arguments (they may ask for stronger TLS, never weaker). The knobs
    are those of :func:`~rotation_client.connect_async`.
    """
    connect_args = _check(engine_kwargs)
    creds = rotating_credentials(
        secret_id, credentials_=credentials_, max_age=max_age, source=source, client=client
    )

    def creator() -> Any:
        return creds.connect(**connect_args)

    return sqlalchemy.create_engine(URL, creator=creator, **engine_kwargs)


def create_async_engine(
    secret_id: str,
    *,
    credentials_: RotatingCredentials | None = None,
    max_age: int | None = None,
    source: SecretSource | None = None,
    client: Any = None,
    **engine_kwargs: Any,
) -> AsyncEngine:
    """A SQLAlchemy ``AsyncEngine`` on ``postgresql+psycopg`` (psycopg's async driver) for
    the secret, its connections made as :func:`~rotation_client.connect_async` makes them.
    Arguments as for :func:`create_engine`.
    """
    # Here, not at import: SQLAlchemy's asyncio module needs greenlet, which a sync
    # application may not have installed.
    from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine

    connect_args = _check(engine_kwargs)
    creds = rotating_credentials(
        secret_id, credentials_=credentials_, max_age=max_age, source=source, client=client
    )

    async def async_creator() -> Any:
        return await open_async(creds, **connect_args)

    return sa_create_async_engine(URL, async_creator=async_creator, **engine_kwargs)
