"""asyncio connections and pools: the same credential choice as :func:`~rotation_client.connect`,
driven from a coroutine.

The choice itself is not written twice: :class:`~rotation_client.LoginAttempt` (the state of
one ``connect()``) says which credential to try next and what a failure means, and this
module only awaits the driver. Reading the secret stays blocking (boto3, or urllib for the
Lambda extension) and runs in a worker thread (``asyncio.to_thread``), for two reasons:

- the read may wait on a lock, not only on the network: forced refreshes are single-flight
  per process (:mod:`rotation_client._versions`), so a coroutine whose refresh is in flight
  in another thread (a sync pool, Django) waits for that answer. Inline, that wait would
  stall the event loop;
- one set of sources, caches and locks then serves sync and async code in the same process
  (herd safety holds across both), where an async source would be a second cache.

The thread hop costs tens of microseconds beside a login's SCRAM exchange and round trips,
and most reads are answered from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

from rotation_client._knobs import rotating_credentials
from rotation_client._retry import ConnectRetry
from rotation_client.credentials import LoginAttempt, RotatingCredentials, check_pool_kwargs
from rotation_client.sources import SecretSource

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["connect_async", "make_async_pool", "open_async"]


async def _pause(retry: ConnectRetry, seconds: float) -> None:
    import asyncio  # loaded by an async caller already; not at import

    # The production sleep must not block the loop; an injected one (a fake clock's)
    # returns at once and is called as it is, so tests on a fake clock do not sleep.
    if retry.sleep is time.sleep:
        await asyncio.sleep(seconds)
    else:
        retry.sleep(seconds)


async def open_async(
    creds: RotatingCredentials,
    connect: Callable[..., Awaitable[psycopg.AsyncConnection[Any]]] | None = None,
    *,
    timeout_s: float | None = None,
    **extra: Any,
) -> psycopg.AsyncConnection[Any]:
    """:meth:`RotatingCredentials.connect <rotation_client.RotatingCredentials.connect>`
    for an async driver: ``connect`` opens one connection from keyword arguments
    (``psycopg.AsyncConnection.connect`` unless given). Raises what ``connect()`` raises."""
    import asyncio  # not at import: `import rotation_client` stays light

    if connect is None:
        import psycopg

        connect = psycopg.AsyncConnection.connect
    attempt = creds.attempt(extra, timeout_s=timeout_s)
    while True:
        params = await asyncio.to_thread(attempt.next_parameters)
        if params is None:
            await _pause(creds.retry, attempt.next_wait())  # raises when out of rounds or time
            continue
        error: BaseException | None = None
        try:
            conn = await _login(attempt, connect, params)
        except Exception as exc:  # failed() says what must not go on
            error = attempt.failed(exc)
        else:
            attempt.succeeded()
            return conn
        # Raised outside the except block, so that our error's __context__ is not the
        # driver's (whose ``pgconn`` holds the password).
        if error is not None:
            raise error


async def _login(
    attempt: LoginAttempt,
    connect: Callable[..., Awaitable[psycopg.AsyncConnection[Any]]],
    params: dict[str, Any],
) -> psycopg.AsyncConnection[Any]:
    """One login within the time left: the host name resolved in a thread (the resolver
    blocks), and the login awaited at most the time left when psycopg's own
    ``connect_timeout`` cannot end in time (see :meth:`LoginAttempt.prepare`)."""
    import asyncio

    ready, wait_s = await asyncio.to_thread(attempt.prepare, params)
    if wait_s is None:
        return await connect(**ready)
    try:
        # Cancelled at the end of the wait: psycopg drops the half-made connection.
        return await asyncio.wait_for(connect(**ready), wait_s)
    except TimeoutError:
        raise attempt.login_timed_out(ready, wait_s) from None


async def connect_async(
    secret_id: str,
    *,
    credentials_: RotatingCredentials | None = None,
    max_age: int | None = None,
    source: SecretSource | None = None,
    client: Any = None,
    **connect_kwargs: Any,
) -> psycopg.AsyncConnection[Any]:
    """A ``psycopg.AsyncConnection`` for the secret, with the credential choice, retries,
    TLS floor and ``require_auth`` of :func:`~rotation_client.connect`.

    ``max_age``, ``source`` and ``client`` configure the process-wide credentials of the
    secret on first use (:func:`~rotation_client.credentials`); ``credentials_`` gives
    them outright. Other keyword arguments go to ``psycopg.AsyncConnection.connect``.

    Example
    -------
    >>> conn = await connect_async("myapp/prod/db", autocommit=True)
    >>> async with conn:
    ...     await conn.execute("SELECT 1")
    """
    creds = rotating_credentials(
        secret_id, credentials_=credentials_, max_age=max_age, source=source, client=client
    )
    return await open_async(creds, **connect_kwargs)


def make_async_pool(
    secret_id: str,
    *,
    credentials_: RotatingCredentials | None = None,
    max_age: int | None = None,
    source: SecretSource | None = None,
    client: Any = None,
    **pool_kwargs: Any,
) -> psycopg_pool.AsyncConnectionPool[Any]:
    """A ``psycopg_pool.AsyncConnectionPool`` whose every new connection picks credentials
    as :func:`connect_async` does (``pip install psycopg-pool``).

    The pool is made closed (``open=False`` unless given: psycopg_pool deprecates opening
    an async pool in its constructor); open it with ``async with make_async_pool(...) as
    pool`` or ``await pool.open()``. Connections already in the pool keep working after a
    rotation (PostgreSQL checks a password only at login); the ones it opens later, to
    replace a broken or expired one (``max_lifetime``), log in with whichever credential
    the database accepts.
    """
    import psycopg
    import psycopg_pool

    check_pool_kwargs(pool_kwargs, where="make_async_pool()")
    creds = rotating_credentials(
        secret_id, credentials_=credentials_, max_age=max_age, source=source, client=client
    )

    class RotatingAsyncConnection(psycopg.AsyncConnection[Any]):
        rotating: ClassVar[RotatingCredentials] = creds

        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> RotatingAsyncConnection:
            check_pool_kwargs({"conninfo": conninfo}, where="make_async_pool()")
            base = super().connect

            async def open_with(**params: Any) -> psycopg.AsyncConnection[Any]:
                return await base(conninfo, **params)

            conn = await open_async(cls.rotating, open_with, **kwargs)
            return conn  # type: ignore[return-value]

    pool_kwargs.setdefault("open", False)
    return psycopg_pool.AsyncConnectionPool(connection_class=RotatingAsyncConnection, **pool_kwargs)
