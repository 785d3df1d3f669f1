"""Every integration of rotation_client through real rotations, with workers querying
throughout: plain and async connections, both psycopg pools, both SQLAlchemy engines and a
Django project; a single-user rotation, and three multi-user rotations.

Each stack runs twice side by side: through the library, and as the plain baseline an
application writes without it (AWSCURRENT read once, at start-up, into the same stack's own
configuration). The library's workers must see zero failed queries; the baseline's failures
are counted beside them, and must be more than zero: else the rotation tested nothing.

Pools only open connections when they need new ones, and PostgreSQL checks a password only
at login: a pool that kept its connections would pass without proving anything. So after
every rotation step each pool drops every connection it opened before (psycopg_pool's
``drain()``, and its ``check`` callback for a connection that was still logging in during
the drain; SQLAlchemy's ``checkout`` event raising ``DisconnectionError``; Django closing
its connection at the end of each request), and the test asserts that the queries after
each step ran on connections opened after it (by backend pid and start time, from
``pg_stat_activity``). Synchronised with counters and
conditions (each worker finishes a query started after the step), never with sleeps.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg_pool
import pytest
import sqlalchemy
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine

import rotation_client.sqlalchemy as rotating_sqlalchemy
from rotation import AWSCURRENT, Step
from rotation_client import (
    ConnectRetry,
    RotatingCredentials,
    SecretsManagerSource,
    connect,
    connect_async,
    make_async_pool,
    make_pool,
)
from rotation_contract.pg.errors import AuthenticationError
from testbed.pgcluster import PostgresCluster
from tests.fix_aws import ApiCalls, new_client
from tests.fix_clock import FakeClock
from tests.fix_multi import MultiBed
from tests.fix_postgres import admin_connect
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

# Which backend served a query, and as whom: (pid, backend start) names one login.
_WHO = (
    "SELECT pg_backend_pid(), backend_start::text, current_user"
    " FROM pg_stat_activity WHERE pid = pg_backend_pid()"
)
Login = tuple[int, str]
# How long a pool's client waits for a connection: psycopg_pool's default for the library
# (a login that meets a rotation may take a refresh and a retry); short for the baseline,
# whose pool waits this long for each query once its logins are refused for good.
_LIBRARY_WAIT_S = 30.0
_BASELINE_WAIT_S = 1.0
_LIBRARY_WORKERS = 3
_BASELINE_WORKERS = 1


class Generation:
    """The logins that existed when the last rotation step ended: a pool drops such a
    connection when a client next asks for it, and opens a new one."""

    def __init__(self, pg: PostgresCluster) -> None:
        self.pg = pg
        self.stale_pids: frozenset[int] = frozenset()
        self.snapshots: list[frozenset[Login]] = [frozenset()]

    def bump(self) -> None:
        """After a step: every backend now on the server (those still authenticating
        too) is from before it."""
        with admin_connect(self.pg) as conn:
            rows = conn.execute(
                "SELECT pid, backend_start::text FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchall()
        logins = frozenset((int(pid), str(start)) for pid, start in rows)
        self.snapshots.append(logins)
        self.stale_pids = frozenset(pid for pid, _ in logins)

    def stale(self, conn: Any) -> bool:
        """``conn``: a psycopg connection (sync or async)."""
        return bool(conn.info.backend_pid in self.stale_pids)


@dataclass
class Tally:
    """Queries done by one stack's workers, per epoch (a new epoch after each step)."""

    workers: int
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    logins: dict[int, set[Login]] = field(default_factory=dict)
    users: set[str] = field(default_factory=set)
    _epoch: int = 0
    _done_in_epoch: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def epoch(self) -> int:
        with self._cond:
            return self._epoch

    def record(self, started_in: int, who: tuple[int, str, str] | None, error: str) -> None:
        with self._cond:
            if who is None:
                self.failed += 1
                if len(self.errors) < 3:
                    self.errors.append(error)
            else:
                self.ok += 1
                self.logins.setdefault(started_in, set()).add((who[0], who[1]))
                self.users.add(who[2])
            if started_in == self._epoch:
                self._done_in_epoch += 1
                self._cond.notify_all()

    def mark(self) -> None:
        """From now on, count only the queries that start after this call."""
        with self._cond:
            self._epoch += 1
            self._done_in_epoch = 0

    def settle(self) -> None:
        """Wait until each worker has finished a query started after :meth:`mark` (in
        total): what a step changed, they have seen. Progress, not time."""
        with self._cond:
            assert self._cond.wait_for(lambda: self._done_in_epoch >= self.workers, timeout=120)

    def summary(self) -> str:
        return f"{self.ok} ok / {self.failed} failed {self.errors[:1]}"


def _who(row: Any) -> tuple[int, str, str]:
    return int(row[0]), str(row[1]), str(row[2])


# -- the stacks: each opens, answers one query (returning who served it), and closes --------


class Stack:
    """One integration, sync: ``query`` is called from several threads at once."""

    is_async = False

    def __init__(self, generation: Generation) -> None:
        self.generation = generation

    def open(self) -> None:
        pass

    def query(self) -> tuple[int, str, str]:
        raise NotImplementedError

    def recycle(self) -> None:
        """After a rotation step: drop the connections opened before it (a pool's)."""

    def close(self) -> None:
        pass


class AsyncStack:
    """One integration, async: ``query`` runs in several tasks of one event loop."""

    is_async = True

    def __init__(self, generation: Generation) -> None:
        self.generation = generation
        self.loop: asyncio.AbstractEventLoop | None = None  # set by the loop's thread

    async def open(self) -> None:
        pass

    async def query(self) -> tuple[int, str, str]:
        raise NotImplementedError

    async def drain(self) -> None:
        pass

    def recycle(self) -> None:
        """Called from another thread: :meth:`drain` in the stack's event loop."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.drain(), self.loop).result(timeout=60)

    async def close(self) -> None:
        pass


@dataclass(frozen=True)
class Target:
    """What a stack connects to: the library's secret, or the baseline's fixed login."""

    arn: str
    conninfo: dict[str, Any] | None = None  # None: through the library

    @property
    def pool_wait_s(self) -> float:
        return _LIBRARY_WAIT_S if self.conninfo is None else _BASELINE_WAIT_S


class PlainConnect(Stack):
    def __init__(self, generation: Generation, target: Target) -> None:
        super().__init__(generation)
        self.target = target

    def query(self) -> tuple[int, str, str]:
        if self.target.conninfo is None:
            conn = connect(self.target.arn, autocommit=True)
        else:
            conn = psycopg.connect(**self.target.conninfo, autocommit=True)
        with conn:
            return _who(conn.execute(_WHO).fetchone())


class AsyncConnect(AsyncStack):
    def __init__(self, generation: Generation, target: Target) -> None:
        super().__init__(generation)
        self.target = target

    async def query(self) -> tuple[int, str, str]:
        if self.target.conninfo is None:
            conn = await connect_async(self.target.arn, autocommit=True)
        else:
            conn = await psycopg.AsyncConnection.connect(**self.target.conninfo, autocommit=True)
        async with conn:
            cur = await conn.execute(_WHO)
            return _who(await cur.fetchone())


class Pool(Stack):
    def __init__(self, generation: Generation, target: Target) -> None:
        super().__init__(generation)
        self.wait_s = target.pool_wait_s
        options: dict[str, Any] = {
            "name": "library" if target.conninfo is None else "baseline",
            "min_size": 2,
            "max_size": 4,
            "open": False,
            "check": self.check,
            "kwargs": {"autocommit": True},
        }
        if target.conninfo is None:
            self.pool = make_pool(target.arn, **options)
        else:
            options["kwargs"] = {**target.conninfo, "autocommit": True}
            self.pool = psycopg_pool.ConnectionPool(**options)

    def check(self, conn: psycopg.Connection[Any]) -> None:
        # drain() spares a connection that was logging in while it ran: this catches it.
        if self.generation.stale(conn):
            conn.close()
            raise psycopg.OperationalError("opened before this rotation step: recycled")

    def open(self) -> None:
        self.pool.open(wait=True, timeout=30)

    def recycle(self) -> None:
        self.pool.drain()

    def query(self) -> tuple[int, str, str]:
        with self.pool.connection(timeout=self.wait_s) as conn:
            return _who(conn.execute(_WHO).fetchone())

    def close(self) -> None:
        self.pool.close()


class AsyncPool(AsyncStack):
    def __init__(self, generation: Generation, target: Target) -> None:
        super().__init__(generation)
        self.target = target
        self.pool: psycopg_pool.AsyncConnectionPool[Any] | None = None

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.generation.stale(conn):
            await conn.close()
            raise psycopg.OperationalError("opened before this rotation step: recycled")

    async def open(self) -> None:
        options: dict[str, Any] = {
            "name": "library" if self.target.conninfo is None else "baseline",
            "min_size": 2,
            "max_size": 4,
            "check": self.check,
            "kwargs": {"autocommit": True},
        }
        if self.target.conninfo is None:
            self.pool = make_async_pool(self.target.arn, **options)
        else:
            options["kwargs"] = {**self.target.conninfo, "autocommit": True}
            self.pool = psycopg_pool.AsyncConnectionPool(open=False, **options)
        await self.pool.open(wait=True, timeout=30)

    async def drain(self) -> None:
        assert self.pool is not None
        await self.pool.drain()

    async def query(self) -> tuple[int, str, str]:
        assert self.pool is not None
        async with self.pool.connection(timeout=self.target.pool_wait_s) as conn:
            cur = await conn.execute(_WHO)
            return _who(await cur.fetchone())

    async def close(self) -> None:
        assert self.pool is not None
        await self.pool.close()


def _recycle_by_generation(engine: sqlalchemy.Engine, generation: Generation) -> None:
    """SQLAlchemy's documented way to refuse a pooled connection at checkout: raising
    ``DisconnectionError`` makes the pool discard it and open a new one."""

    @event.listens_for(engine, "checkout")
    def stale(_dbapi: Any, record: Any, _proxy: Any) -> None:
        if generation.stale(record.driver_connection):
            raise exc.DisconnectionError("opened before this rotation step: recycled")


class Engine(Stack):
    def __init__(self, generation: Generation, target: Target) -> None:
        super().__init__(generation)
        if target.conninfo is None:
            self.engine = rotating_sqlalchemy.create_engine(
                target.arn, pool_size=2, max_overflow=2, pool_timeout=target.pool_wait_s
            )
        else:
            self.engine = sqlalchemy.create_engine(
                "postgresql+psycopg://",
                connect_args=target.conninfo,
                pool_size=2,
                max_overflow=2,
                pool_timeout=target.pool_wait_s,
            )
        _recycle_by_generation(self.engine, generation)

    def query(self) -> tuple[int, str, str]:
        with self.engine.connect() as conn:
            return _who(conn.execute(text(_WHO)).one())

    def close(self) -> None:
        self.engine.dispose()


class AsyncEngine(AsyncStack):
    def __init__(self, generation: Generation, target: Target) -> None:
        super().__init__(generation)
        if target.conninfo is None:
            self.engine = rotating_sqlalchemy.create_async_engine(
                target.arn, pool_size=2, max_overflow=2, pool_timeout=target.pool_wait_s
            )
        else:
            self.engine = sa_create_async_engine(
                "postgresql+psycopg://",
                connect_args=target.conninfo,
                pool_size=2,
                max_overflow=2,
                pool_timeout=target.pool_wait_s,
            )
        _recycle_by_generation(self.engine.sync_engine, generation)

    async def query(self) -> tuple[int, str, str]:
        async with self.engine.connect() as conn:
            return _who((await conn.execute(text(_WHO))).one())

    async def close(self) -> None:
        await self.engine.dispose()


@pytest.fixture(scope="session")
def django_project() -> None:
    """A minimal Django project: settings configured in the test, no apps."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.dummy"}},
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


class Django(Stack):
    """Django's per-thread connections, each request closing its own (``CONN_MAX_AGE``
    0, Django's default): every request logs in anew."""

    def __init__(self, generation: Generation, target: Target) -> None:
        from django.conf import settings
        from django.db import connections

        super().__init__(generation)
        self.alias = f"db_{id(self)}"
        if target.conninfo is None:
            database: dict[str, Any] = {
                "ENGINE": "rotation_client.django",
                "OPTIONS": {"secret_id": target.arn, "max_age": 300},
            }
        else:
            info = target.conninfo
            database = {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": info["dbname"],
                "USER": info["user"],
                "PASSWORD": info["password"],
                "HOST": info["host"],
                "PORT": info["port"],
                "OPTIONS": {"sslmode": info["sslmode"]},
            }
        settings.DATABASES[self.alias] = database
        connections.configure_settings(settings.DATABASES)  # Django's defaults filled in

    def query(self) -> tuple[int, str, str]:
        from django.db import close_old_connections, connections

        try:
            with connections[self.alias].cursor() as cursor:
                cursor.execute(_WHO)
                return _who(cursor.fetchone())
        finally:
            close_old_connections()  # the end of a request

    def close(self) -> None:
        from django.conf import settings

        del settings.DATABASES[self.alias]


STACKS: dict[str, Callable[[Generation, Target], Stack | AsyncStack]] = {
    "connect": PlainConnect,
    "connect_async": AsyncConnect,
    "make_pool": Pool,
    "make_async_pool": AsyncPool,
    "sqlalchemy": Engine,
    "sqlalchemy_async": AsyncEngine,
    "django": Django,
}


# -- workers ------------------------------------------------------------------------------


class Workers:
    """Threads (or tasks of one event loop, for an async stack) querying until stopped."""

    def __init__(self, stack: Stack | AsyncStack, workers: int) -> None:
        self.stack = stack
        self.tally = Tally(workers)
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._open_error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def _once_sync(self, stack: Stack) -> None:
        started_in = self.tally.epoch()
        try:
            who, error = stack.query(), ""
        except Exception as caught:  # any failure counts (ours too); go on
            who, error = None, f"{type(caught).__name__}: {caught}"
        self.tally.record(started_in, who, error)

    def _run_sync(self, stack: Stack) -> None:
        while not self._stop.is_set():
            self._once_sync(stack)

    async def _run_async(self, stack: AsyncStack) -> None:
        while not self._stop.is_set():
            started_in = self.tally.epoch()
            try:
                who, error = await stack.query(), ""
            except Exception as caught:
                who, error = None, f"{type(caught).__name__}: {caught}"
            self.tally.record(started_in, who, error)

    async def _main_async(self, stack: AsyncStack) -> None:
        stack.loop = asyncio.get_running_loop()
        try:
            await stack.open()
        except BaseException as caught:
            self._open_error = caught
            self._opened.set()
            raise
        self._opened.set()
        try:
            tasks = [self._run_async(stack) for _ in range(self.tally.workers)]
            await asyncio.gather(*tasks)
        finally:
            await stack.close()

    def __enter__(self) -> Workers:
        stack = self.stack
        if isinstance(stack, AsyncStack):
            thread = threading.Thread(target=asyncio.run, args=(self._main_async(stack),))
            self._threads = [thread]
            thread.start()
            assert self._opened.wait(timeout=60)
            if self._open_error is not None:
                thread.join()
                raise self._open_error
        else:
            stack.open()
            self._threads = [
                threading.Thread(target=self._run_sync, args=(stack,))
                for _ in range(self.tally.workers)
            ]
            for thread in self._threads:
                thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads)
        if isinstance(self.stack, Stack):
            self.stack.close()


# -- rotations ----------------------------------------------------------------------------


def _rotate(bed: Any, arn: str, generation: Generation, *running: Workers) -> None:
    """One rotation; after each step (a separate Lambda invocation in AWS), the pools drop
    their connections and every worker finishes a query that started afterwards."""
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    for step in Step:
        driver.run(arn, token, [step])
        generation.bump()
        for workers in running:
            workers.stack.recycle()
            workers.tally.mark()
        for workers in running:
            workers.tally.settle()
    driver.complete(arn, token)


def _baseline_target(bed: Any, arn: str) -> Target:
    """The application without the library: AWSCURRENT read once, at start-up."""
    value = json.loads(
        new_client().get_secret_value(SecretId=arn, VersionStage=AWSCURRENT)["SecretString"]
    )
    return Target(arn, bed.pg.conninfo(value["username"], value["password"]))


def _assert_new_logins_after_each_step(tally: Tally, generation: Generation) -> None:
    """The queries started after each step ran on connections opened after it."""
    assert set(tally.logins) == set(range(len(generation.snapshots)))
    for epoch, before in enumerate(generation.snapshots):
        reused = tally.logins[epoch] & before
        assert not reused, f"after step {epoch}: served by connections from before it"


def _drive(
    kind: str,
    bed: Any,
    arn: str,
    rotations: int,
    request: pytest.FixtureRequest,
) -> tuple[Tally, Tally, Generation]:
    if kind == "django":
        request.getfixturevalue("django_project")
    generation = Generation(bed.pg)
    stack = STACKS[kind]
    with (
        Workers(stack(generation, Target(arn)), _LIBRARY_WORKERS) as library,
        Workers(stack(generation, _baseline_target(bed, arn)), _BASELINE_WORKERS) as baseline,
    ):
        # Every worker has logged in and queried before the rotation begins.
        library.tally.settle()
        baseline.tally.settle()
        for _ in range(rotations):
            _rotate(bed, arn, generation, library, baseline)
    return library.tally, baseline.tally, generation


def _report(kind: str, what: str, library: Tally, baseline: Tally) -> str:
    return (
        f"{kind}, {what}: library {library.summary()}; "
        f"plain AWSCURRENT read once {baseline.summary()}"
    )


@pytest.mark.parametrize("kind", list(STACKS))
def test_single_user_rotation(kind: str, bed: Bed, request: pytest.FixtureRequest) -> None:
    arn, _, _ = bed.user_secret()
    library, baseline, generation = _drive(kind, bed, arn, 1, request)
    counts = _report(kind, "single-user", library, baseline)
    # Kept with the test's report (pytest's user_properties; a --junitxml run writes them).
    request.node.user_properties.append(("failed queries", counts))
    assert library.failed == 0, counts
    assert library.ok > 0, counts
    _assert_new_logins_after_each_step(library, generation)
    # Once setSecret has changed the password, the baseline's new logins are refused.
    assert baseline.failed > 0, counts


@pytest.mark.parametrize("kind", list(STACKS))
def test_three_multi_user_rotations(
    kind: str, multi_tls: MultiBed, request: pytest.FixtureRequest
) -> None:
    arn, _, _ = multi_tls.app()
    library, baseline, generation = _drive(kind, multi_tls, arn, 3, request)
    counts = _report(kind, "three multi-user rotations", library, baseline)
    # Kept with the test's report (pytest's user_properties; a --junitxml run writes them).
    request.node.user_properties.append(("failed queries", counts))
    assert library.failed == 0, counts
    _assert_new_logins_after_each_step(library, generation)
    # The second rotation changes the first user's password: the baseline logs in no more.
    assert baseline.failed > 0, counts


# -- what each integration refuses or keeps, without a rotation ---------------------------


def test_connect_async_gives_up_as_connect_does(bed: Bed) -> None:
    """The async loop is connect()'s: the same rounds and waits (on the injected sleep),
    the same error, no password in it."""
    user, _ = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, "never-was-right-1"))
    waits: list[float] = []
    retry = ConnectRetry(rounds=3, initial_wait_s=0.1, jitter=0.0, sleep=waits.append)
    creds = RotatingCredentials(arn, source=SecretsManagerSource(new_client()), retry=retry)
    with pytest.raises(AuthenticationError, match="no labelled version") as caught:
        asyncio.run(connect_async(arn, credentials_=creds))
    assert "never-was-right-1" not in str(caught.value)
    assert waits == [0.1, 0.2]


def test_connect_async_keeps_the_tls_floor(bed: Bed) -> None:
    """A caller's weaker sslmode does not lower the secret's (verify-full here)."""
    arn, _, _ = bed.user_secret()
    creds = RotatingCredentials(arn, source=SecretsManagerSource(new_client()))

    async def ssl_in_use() -> bool:
        async with await connect_async(arn, credentials_=creds, sslmode="disable") as conn:
            cur = await conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            row = await cur.fetchone()
            assert row is not None
            return bool(row[0])

    assert asyncio.run(ssl_in_use())


def test_the_knobs_go_one_way(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    creds = RotatingCredentials(arn, source=SecretsManagerSource(new_client()))
    with pytest.raises(TypeError, match="credentials_ or max_age"):
        make_async_pool(arn, credentials_=creds, max_age=10)
    with pytest.raises(TypeError, match="creator: not taken here"):
        rotating_sqlalchemy.create_engine(arn, creator=lambda: None)


def _django_database(options: dict[str, Any], **settings_: Any) -> Any:
    from django.conf import settings
    from django.db import connections

    alias = f"db_{len(settings.DATABASES)}_{id(options)}"
    settings.DATABASES[alias] = {"ENGINE": "rotation_client.django", "OPTIONS": options}
    settings.DATABASES[alias].update(settings_)
    connections.configure_settings(settings.DATABASES)
    return connections[alias]


@pytest.mark.parametrize(
    ("options", "settings_", "says"),
    [
        ({}, {}, 'needs "OPTIONS": {"secret_id"'),
        ({"secret_id": "s"}, {"USER": "app"}, "remove USER; the secret s supplies it"),
        ({"secret_id": "s"}, {"PASSWORD": "pw"}, "remove PASSWORD"),
        ({"secret_id": "s", "pool": True}, {}, 'OPTIONS "pool" is not supported'),
        ({"secret_id": "s", "credentials": object(), "max_age": 5}, {}, "not both"),
    ],
    ids=["no-secret", "user", "password", "pool", "two-knobs"],
)
def test_the_django_backend_refuses_what_would_defeat_rotation(
    django_project: None, options: dict[str, Any], settings_: dict[str, Any], says: str
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    wrapper = _django_database(options, **settings_)
    with pytest.raises(ImproperlyConfigured, match=re.escape(says)):
        wrapper.get_connection_params()


def test_the_django_backend_passes_on_django_options_not_ours(
    django_project: None, moto_endpoint: Any
) -> None:
    options = {"secret_id": "myapp/db", "max_age": 60, "application_name": "web"}
    unnamed = _django_database(options).get_connection_params()
    assert "dbname" not in unnamed  # the secret's applies
    assert unnamed["application_name"] == "web"
    assert not set(unnamed) & {"secret_id", "max_age", "source", "client", "credentials"}
    named = _django_database(dict(options), NAME="test_app").get_connection_params()
    assert named["dbname"] == "test_app"  # as Django's test runner sets it


@pytest.mark.parametrize(
    ("steps", "expected_calls"),
    [
        ((Step.CREATE, Step.SET), ["GetSecretValue", "GetSecretValue"]),
        (tuple(Step), ["GetSecretValue"]),
    ],
    ids=["in-the-single-user-window", "after-the-rotation"],
)
def test_fifty_coroutines_failing_at_once_share_one_read(
    bed: Bed, steps: tuple[Step, ...], expected_calls: list[str]
) -> None:
    """Herd safety holds for asyncio too: its reads go through the same single flight as
    the threads' (tests/functional/test_client_herd.py counts the same for 50 threads)."""
    arn, user, _ = bed.user_secret()
    clock = FakeClock()
    client = new_client()
    creds = RotatingCredentials(
        arn,
        source=SecretsManagerSource(client, clock=clock),
        retry=ConnectRetry(jitter=0.0, sleep=clock.sleep),
        clock=clock,
    )
    calls = ApiCalls(client)

    async def session_user() -> str:
        async with await connect_async(arn, credentials_=creds, autocommit=True) as conn:
            row = await (await conn.execute("SELECT session_user")).fetchone()
        assert row is not None
        return str(row[0])

    async def fifty() -> list[str]:
        return await asyncio.gather(*(session_user() for _ in range(50)))

    assert asyncio.run(session_user()) == user  # the process has AWSCURRENT cached
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    driver.run(arn, token, list(steps))  # the cached password is now refused
    calls.reset()

    assert asyncio.run(fifty()) == [user] * 50
    assert calls.names == expected_calls  # at most 3, whatever the number of coroutines
    assert clock.sleeps == []  # nobody waited for another round


def test_the_sync_engine_needs_no_greenlet() -> None:
    """SQLAlchemy's asyncio module refuses to import without greenlet: a sync application
    that has none still makes its engine (a fresh interpreter, greenlet made unimportable)."""
    program = (
        "import sys\n"
        "class NoGreenlet:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'greenlet':\n"
        "            raise ImportError('no greenlet here')\n"
        "sys.meta_path.insert(0, NoGreenlet())\n"
        "from rotation_client.sqlalchemy import create_engine\n"
        "print(create_engine('myapp/db').dialect.driver)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "psycopg"
