"""Connections and pools for an application: the public entry points over
:class:`~rotation_client.credentials.RotatingCredentials`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rotation_client._knobs import rotating_credentials
from rotation_client.credentials import RotatingCredentials, check_pool_kwargs
from rotation_client.sources import SecretSource

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["connect", "make_pool"]


def connect(
    secret_id: str,
    *,
    credentials_: RotatingCredentials | None = None,
    max_age: int | None = None,
    source: SecretSource | None = None,
    client: Any = None,
    **connect_kwargs: Any,
) -> psycopg.Connection[Any]:
    """A psycopg connection for the secret; extra keyword arguments go to ``psycopg.connect``.

    ``max_age``, ``source`` and ``client`` configure the process-wide credentials of the
    secret on first use (:func:`~rotation_client.credentials`); ``credentials_`` gives
    them outright (every integration takes these knobs).
    """
    creds = rotating_credentials(
        secret_id, credentials_=credentials_, max_age=max_age, source=source, client=client
    )
    return creds.connect(**connect_kwargs)


def make_pool(
    secret_id: str,
    *,
    credentials_: RotatingCredentials | None = None,
    max_age: int | None = None,
    source: SecretSource | None = None,
    client: Any = None,
    **pool_kwargs: Any,
) -> psycopg_pool.ConnectionPool[Any]:
    """A ``psycopg_pool.ConnectionPool`` whose new connections pick credentials like
    :func:`connect`, so the pool follows rotations without restarting the application."""
    import psycopg
    import psycopg_pool

    check_pool_kwargs(pool_kwargs, where="make_pool()")
    creds = rotating_credentials(
        secret_id, credentials_=credentials_, max_age=max_age, source=source, client=client
    )

    class RotatingConnection(psycopg.Connection[Any]):
        rotating: ClassVar[RotatingCredentials] = creds

        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> RotatingConnection:
            check_pool_kwargs({"conninfo": conninfo}, where="make_pool()")
            base = super().connect

            def open_with(**params: Any) -> psycopg.Connection[Any]:
                return base(conninfo, **params)

            return cls.rotating.connect(open_with, **kwargs)  # type: ignore[return-value]

    return psycopg_pool.ConnectionPool(connection_class=RotatingConnection, **pool_kwargs)
