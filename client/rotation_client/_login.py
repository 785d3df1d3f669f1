"""One login of the client, bounded by the time its ``connect()`` has left.

Two waits of a login are not the caller's to set, and each could outlast the budget
(``ConnectRetry.timeout_s``) after the Secrets Manager reads used most of it:

- the host name's resolution: psycopg resolves it itself (``socket.getaddrinfo``, unbounded).
  The client resolves it first, through the resolver the rotation function uses
  (:mod:`rotation_contract.pg.resolve`), within the time left, and hands libpq the addresses as
  ``hostaddr``, keeping ``host`` so that verify-full still checks the name in the secret;
- the login itself: psycopg enforces ``connect_timeout`` in Python, per address tried, in
  whole seconds and never below 2 (``psycopg.conninfo.timeout_from_conninfo``, libpq's
  convention). When ``connect_timeout`` times the number of addresses fits in the time
  left, psycopg's own bound is enough and the login runs in the caller's thread; when it
  does not (less than 2 s left per address), the login runs in a worker thread that the
  caller waits for no longer than the time left (:func:`call_within`; an async caller uses
  ``asyncio.wait_for`` instead). A login that outlives the wait is left to end on its own
  ``connect_timeout``, and a connection it opens late is closed, never handed out.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rotation_contract.pg.resolve import Resolver, needs_resolution, resolve
from rotation_contract.pg.settings import MIN_CONNECT_TIMEOUT_S

__all__ = [
    "MIN_CONNECT_TIMEOUT_S",
    "MIN_LOGIN_S",
    "addresses",
    "attempts",
    "call_within",
    "close_late",
    "fitting_timeout",
]

T = TypeVar("T")

# Less time than this left: no login is started (nothing could come of it but a cut).
MIN_LOGIN_S = 0.1


def addresses(params: Mapping[str, Any], *, timeout_s: float, resolver: Resolver) -> dict[str, str]:
    """``host`` and ``hostaddr`` for libpq with ``params["host"]`` resolved within
    ``timeout_s``; empty when there is nothing to resolve (an address, a socket directory,
    or ``hostaddr`` given already).

    Raises
    ------
    TimeoutError
        The resolver did not answer within ``timeout_s``.
    OSError
        The name does not resolve.
    """
    host = str(params.get("host") or "")
    if params.get("hostaddr") or "," in host or not needs_resolution(host):
        return {}
    found = resolve(host, int(params.get("port") or 5432), timeout_s=timeout_s, resolver=resolver)
    # One host entry per address: psycopg tries each in turn, as it would have after
    # resolving itself, and libpq checks the certificate against the name.
    return {"host": ",".join([host] * len(found)), "hostaddr": ",".join(found)}


def attempts(params: Mapping[str, Any]) -> int:
    """How many addresses psycopg tries, each with its own ``connect_timeout``."""
    listed = str(params.get("hostaddr") or params.get("host") or "")
    return max(listed.count(",") + 1, 1)


def fitting_timeout(configured: int, time_left_s: float, tries: int) -> int | None:
    """The ``connect_timeout`` that makes psycopg's own bound (``tries`` addresses of
    ``connect_timeout`` each) end within ``time_left_s``, at most ``configured``; None when
    even its 2 s minimum would not fit (the login must then be bounded in Python)."""
    fits = math.floor(time_left_s / tries)
    if fits < MIN_CONNECT_TIMEOUT_S:
        return None
    return min(configured, fits)


def call_within(call: Callable[[], T], timeout_s: float, *, discard: Callable[[T], None]) -> T:
    """``call()`` in a worker thread (with the caller's context variables), waited for at
    most ``timeout_s``; what it raises is raised here.

    Raises
    ------
    TimeoutError
        ``call`` did not end within ``timeout_s``. It goes on in its thread; what it
        returns after that is given to ``discard`` (a connection is closed), never to the
        caller.
    """
    lock = threading.Lock()
    done = threading.Event()
    outcome: list[Any] = []
    abandoned = False
    context = contextvars.copy_context()

    def run() -> None:
        try:
            result: Any = context.run(call)
            failed = False
        except BaseException as exc:  # handed to the waiting thread
            result, failed = exc, True
        with lock:
            if not abandoned:
                outcome.append((failed, result))
                done.set()
                return
        if not failed:
            discard(result)

    threading.Thread(target=run, name="rotation-client-login", daemon=True).start()
    try:
        done.wait(max(timeout_s, 0.0))
    finally:
        with lock:
            if not done.is_set():  # out of time, or the wait itself was interrupted
                abandoned = True
    if abandoned:
        raise TimeoutError(f"no answer within {timeout_s:.1f} s")
    failed, result = outcome[0]
    if failed:
        raise result
    return result  # type: ignore[no-any-return]


def close_late(conn: Any) -> None:
    """Close a connection a login opened after its caller stopped waiting (nobody is left
    to tell of a failure: the socket goes with it)."""
    with contextlib.suppress(Exception):
        conn.close()
