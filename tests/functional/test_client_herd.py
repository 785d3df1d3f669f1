"""Herd safety of rotation_client, counted: a real PostgreSQL server, moto's Secrets Manager
over HTTP, and the client's clock injected (no test sleeps or depends on timing).

A rotation hits every instance of an application at once; within one process, connections
that fail at the same moment must share one read of the secret, forced reads are paced, and
the first refused login moves the process to the credential that works.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rotation import Step
from rotation.errors import SecretsManagerError
from rotation_client import (
    ConnectRetry,
    RefreshPolicy,
    RotatingCredentials,
    SecretsManagerSource,
)
from rotation_contract.pg.errors import AuthenticationError, LoginConfigurationError
from tests.fix_aws import ApiCalls, new_client
from tests.fix_clock import FakeClock
from tests.fix_multi import MultiBed
from tests.fix_postgres import admin_connect
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

THREADS = 50


class Logins:
    """A ``connect`` for :meth:`RotatingCredentials.connect` that records each login's user
    and password and whether the server took it."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, str, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, **params: Any) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(**params)
        except psycopg.OperationalError:
            self._record(params, ok=False)
            raise
        self._record(params, ok=True)
        return conn

    def _record(self, params: dict[str, Any], *, ok: bool) -> None:
        with self._lock:
            self.attempts.append((params["user"], params["password"], ok))

    def refused(self) -> int:
        return sum(1 for *_, ok in self.attempts if not ok)

    def reset(self) -> None:
        with self._lock:
            self.attempts.clear()


def _counted(
    arn: str, clock: FakeClock, *, retry: ConnectRetry | None = None, **options: Any
) -> tuple[RotatingCredentials, ApiCalls]:
    client = new_client()
    source = SecretsManagerSource(client, clock=clock)
    retry = retry or ConnectRetry(jitter=0.0, sleep=clock.sleep)
    return RotatingCredentials(arn, source=source, retry=retry, clock=clock, **options), ApiCalls(
        client
    )


def _all_at_once(work: Callable[[], object], threads: int = THREADS) -> list[BaseException]:
    """Run ``work`` in ``threads`` threads released together; the errors they raised."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            work()
        except Exception as exc:
            with lock:
                errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return errors


def _query(creds: RotatingCredentials, logins: Logins | None = None) -> str:
    with creds.connect(logins, autocommit=True) as conn:
        row = conn.execute("SELECT session_user").fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize(
    ("steps", "expected_calls"),
    [
        # The database has the pending password, AWSCURRENT has not moved: one forced
        # read of AWSCURRENT (unchanged) and one of AWSPENDING (works).
        ((Step.CREATE, Step.SET), ["GetSecretValue", "GetSecretValue"]),
        # The rotation is over: one forced read of AWSCURRENT.
        (tuple(Step), ["GetSecretValue"]),
    ],
    ids=["in-the-single-user-window", "after-the-rotation"],
)
def test_fifty_threads_failing_at_once_share_one_read(
    bed: Bed, steps: tuple[Step, ...], expected_calls: list[str]
) -> None:
    arn, user, _ = bed.user_secret()
    clock = FakeClock()
    creds, calls = _counted(arn, clock)
    assert _query(creds) == user  # the process has AWSCURRENT cached
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    driver.run(arn, token, list(steps))  # the cached password is now refused
    calls.reset()
    logins = Logins()

    errors = _all_at_once(lambda: _query(creds, logins))

    assert errors == []
    assert len(logins.attempts) - logins.refused() == THREADS
    assert calls.names == expected_calls  # at most 3, whatever the number of threads
    assert clock.sleeps == []  # nobody had to wait for another round


def test_after_the_first_refused_login_the_credential_that_works_comes_first(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    clock = FakeClock()
    creds, calls = _counted(arn, clock)
    _query(creds)
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET])
    pending = bed.value(arn, "AWSPENDING")["password"]
    logins = Logins()

    _query(creds, logins)  # the stale AWSCURRENT is refused once, AWSPENDING logs in
    assert [(ok, pw == pending) for _, pw, ok in logins.attempts] == [(False, False), (True, True)]
    logins.reset()
    for _ in range(3):
        _query(creds, logins)
    assert logins.attempts == [(user, pending, True)] * 3  # never the stale one again

    driver.run(arn, token, [Step.TEST, Step.FINISH])
    driver.complete(arn, token)
    clock.advance(300)  # the cache expires: AWSCURRENT is read again, and is that one
    calls.reset()
    logins.reset()
    _query(creds, logins)
    assert logins.attempts == [(user, pending, True)]
    assert calls.names == ["GetSecretValue"]


def test_when_awscurrent_moves_the_process_follows_it(multi: MultiBed) -> None:
    """Multi-user: the old user still logs in, but once the cache has the new AWSCURRENT,
    connections use it (so that the next rotation may change the old user's password)."""
    arn, _, _ = multi.app()
    clock = FakeClock()
    creds, _ = _counted(arn, clock)
    before = _query(creds)
    multi.driver(multi.rotator()).rotate(arn)
    assert _query(creds) == before  # cached, and still accepted
    clock.advance(300)
    logins = Logins()
    after = _query(creds, logins)
    assert after == multi.value(arn)["username"] != before
    assert len(logins.attempts) == 1


def _refused_for_a_minute(
    bed: Bed, refresh: RefreshPolicy, threads: int = 4
) -> tuple[list[str], int]:
    """``threads`` threads connecting in a loop for one minute of the client's clock with a
    password no label fixes; the Secrets Manager calls made, and the connect() calls."""
    user, _ = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, "never-was-right-3"))
    clock = FakeClock()
    creds, calls = _counted(arn, clock, refresh=refresh)
    end = clock() + 60
    connects = [0]
    lock = threading.Lock()

    def loop() -> None:
        while clock() < end:
            with lock:
                connects[0] += 1
            with pytest.raises(AuthenticationError):
                creds.connect()

    assert _all_at_once(loop, threads) == []
    return calls.names, connects[0]


def test_a_refused_process_makes_a_bounded_number_of_calls_per_minute(bed: Bed) -> None:
    names, connects = _refused_for_a_minute(bed, RefreshPolicy())
    # One cached read, then per label (AWSCURRENT, AWSPENDING, AWSPREVIOUS) forced reads
    # at most at 0, 1, 3, 7, 15, 31 and 63 s (a connect() begun before the minute ended
    # may still be in its rounds): at most 7 each, whatever the number of threads.
    assert set(names) == {"GetSecretValue"}
    assert len(names) <= 1 + 3 * 7, len(names)
    assert connects >= 10  # the threads did keep trying
    # The control: without the pacing, the same minute asks three times in every round of
    # every connect() (as the client did before: up to 12 calls per connect()).
    unpaced, unpaced_connects = _refused_for_a_minute(
        bed, RefreshPolicy(min_interval_s=0.0, max_interval_s=0.0)
    )
    assert len(unpaced) >= 3 * unpaced_connects
    assert len(unpaced) > 5 * len(names)


def test_a_failed_read_is_remembered_for_a_moment(bed: Bed) -> None:
    """A short negative cache: a read that failed is not repeated by every connection."""
    clock = FakeClock()
    creds, calls = _counted("test/no-such-secret", clock)

    errors = _all_at_once(lambda: _query(creds), threads=20)

    assert len(errors) == 20
    assert all(isinstance(exc, SecretsManagerError) for exc in errors)
    assert calls.names == ["GetSecretValue"]
    clock.advance(RefreshPolicy().min_interval_s)
    with pytest.raises(SecretsManagerError, match="ResourceNotFoundException"):
        _query(creds)
    assert calls.names == ["GetSecretValue"] * 2


def test_a_configuration_cause_is_raised_at_once(bed: Bed) -> None:
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, dbname="no_such_database"))
    clock = FakeClock()
    creds, calls = _counted(arn, clock)
    logins = Logins()

    with pytest.raises(LoginConfigurationError, match="does not exist") as caught:
        _query(creds, logins)

    assert "Fix 'dbname' in the secret" in str(caught.value)
    assert password not in str(caught.value)
    assert caught.value.__cause__ is None  # the driver's error holds the password
    assert len(logins.attempts) == 1
    assert calls.names == ["GetSecretValue"]  # no refresh: the password is not the problem
    assert clock.sleeps == []


def test_a_full_server_is_waited_for_within_the_callers_time(bed: Bed) -> None:
    """Transient: a role at its connection limit is retried with backoff (on the fake
    clock) and logs in once a slot frees, without asking Secrets Manager again."""
    arn, user, _ = bed.user_secret()
    with admin_connect(bed.pg) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 0").format(sql.Identifier(user)))
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:  # a slot frees after the third wait
            with admin_connect(bed.pg) as conn:
                conn.execute(
                    sql.SQL("ALTER ROLE {} CONNECTION LIMIT -1").format(sql.Identifier(user))
                )

    retry = ConnectRetry(jitter=0.0, sleep=sleep)
    creds, calls = _counted(arn, clock, retry=retry)
    logins = Logins()

    assert _query(creds, logins) == user

    assert [ok for *_, ok in logins.attempts] == [False, False, False, True]
    assert clock.sleeps == [0.2, 0.4, 0.8]
    assert calls.names == ["GetSecretValue"]


def test_a_full_server_raises_the_drivers_error_when_the_time_is_up(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    with admin_connect(bed.pg) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 0").format(sql.Identifier(user)))
    clock = FakeClock()
    retry = ConnectRetry(timeout_s=5.0, jitter=0.0, sleep=clock.sleep)
    creds, calls = _counted(arn, clock, retry=retry)

    with pytest.raises(psycopg.OperationalError, match="too many connections"):
        _query(creds)

    assert sum(clock.sleeps) < 5.0
    # 3 s of waits; the next (2 s) would reach the 5 s.
    assert clock.sleeps == [0.2, 0.4, 0.8, 1.6]
    assert calls.names == ["GetSecretValue"]


class _FinishesDuringTheRead:
    """A source through which the rotation's last two steps run right after the client's
    first forced read of AWSCURRENT: that read still got the old value, and by the time the
    client asks for AWSPENDING the label has gone. The worst moment for pacing."""

    def __init__(self, inner: SecretsManagerSource, finish: Callable[[], None]) -> None:
        self.inner = inner
        self.finish: Callable[[], None] | None = finish

    def get(self, secret_id: str, stage: str, *, force: bool = False) -> str | None:
        value = self.inner.get(secret_id, stage, force=force)
        if force and stage == "AWSCURRENT" and self.finish is not None:
            finish, self.finish = self.finish, None
            finish()
        return value


def test_a_rotation_finishing_between_two_reads_is_caught_up_within_a_few_rounds(
    bed: Bed,
) -> None:
    arn, user, _ = bed.user_secret()
    clock = FakeClock()
    client = new_client()
    calls = ApiCalls(client)
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)

    def finish() -> None:
        driver.run(arn, token, [Step.TEST, Step.FINISH])
        driver.complete(arn, token)

    source = _FinishesDuringTheRead(SecretsManagerSource(client, clock=clock), finish)
    retry = ConnectRetry(jitter=0.0, sleep=clock.sleep)
    creds = RotatingCredentials(arn, source=source, retry=retry, clock=clock)
    creds.versions.read("AWSCURRENT")  # the process has the old AWSCURRENT cached
    driver.run(arn, token, [Step.CREATE, Step.SET])
    calls.reset()
    logins = Logins()

    assert _query(creds, logins) == user

    # Round 1: AWSCURRENT (old) refused, AWSPENDING gone, AWSPREVIOUS is the old one.
    # Rounds 2 and 3 find nothing new to try (AWSCURRENT was read past the cache less than
    # a second ago), and knock with nothing already refused; round 4, 1.4 s later, reads
    # it again and logs in.
    assert clock.sleeps == [0.2, 0.4, 0.8]
    assert [ok for *_, ok in logins.attempts] == [False, True]
    assert calls.names == ["GetSecretValue"] * 4  # AWSCURRENT, AWSPENDING, AWSPREVIOUS, AWSCURRENT
