"""rotation_client: cached credentials that survive rotation, against the real test bed."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest

from rotation import AWSCURRENT, Step
from rotation_client import (
    ConnectRetry,
    ExtensionSource,
    RotatingCredentials,
    SecretsManagerSource,
    default_source,
    make_pool,
)
from rotation_contract.pg.errors import AuthenticationError
from testbed.pgcluster import free_port
from tests.fix_aws import ApiCalls, new_client
from tests.fix_clock import FakeClock
from tests.fix_multi import MultiBed
from tests.fix_postgres import admin_connect
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

FAST = ConnectRetry(rounds=3, initial_wait_s=0.05, max_wait_s=0.2, jitter=0.0)


def _counted_source(max_age_s: int = 300) -> tuple[SecretsManagerSource, ApiCalls]:
    client = new_client()
    return SecretsManagerSource(client, max_age_s=max_age_s), ApiCalls(client)


def _query(conn: psycopg.Connection[Any]) -> None:
    with conn:
        conn.execute("SELECT 1").fetchone()


def test_the_secret_is_read_once_within_max_age(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    source, calls = _counted_source()
    creds = RotatingCredentials(arn, source=source)
    for _ in range(5):
        _query(creds.connect())
    assert calls.names == ["GetSecretValue"]


def test_the_secret_is_read_again_after_max_age(bed: Bed) -> None:
    """On an injected clock: just under max_age the cache answers, at max_age it does not."""
    arn, _, _ = bed.user_secret()
    now = [1000.0]
    client = new_client()
    calls = ApiCalls(client)
    source = SecretsManagerSource(client, max_age_s=300, clock=lambda: now[0])
    creds = RotatingCredentials(arn, source=source)
    _query(creds.connect())
    now[0] += 299.9
    _query(creds.connect())
    assert calls.names == ["GetSecretValue"]
    now[0] += 0.1
    _query(creds.connect())
    assert calls.names == ["GetSecretValue", "GetSecretValue"]


def test_an_authentication_failure_refreshes_past_the_cache(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    source, calls = _counted_source()
    creds = RotatingCredentials(arn, source=source, retry=FAST)
    _query(creds.connect())
    bed.driver(bed.rotator()).rotate(arn)  # the cached password is now refused
    calls.reset()
    _query(creds.connect())
    # The cached AWSCURRENT was refused; one forced read found the new one.
    assert calls.names == ["GetSecretValue"]
    _query(creds.connect())
    assert calls.names == ["GetSecretValue"]  # and it is cached again


def test_a_password_no_version_fixes_fails_clearly_after_bounded_retries(bed: Bed) -> None:
    user, _ = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, "never-was-right-1"))
    waits: list[float] = []
    retry = ConnectRetry(rounds=3, initial_wait_s=0.1, jitter=0.0, sleep=waits.append)
    creds = RotatingCredentials(arn, source=_counted_source()[0], retry=retry)
    with pytest.raises(AuthenticationError, match="no labelled version") as caught:
        creds.connect()
    assert "never-was-right-1" not in str(caught.value)
    assert "AWSCURRENT" in str(caught.value)
    assert waits == [0.1, 0.2]


def test_an_unreachable_server_is_retried_within_the_timeout_then_raised_unchanged(
    bed: Bed,
) -> None:
    """Transient: retried with backoff until the caller's time is up (on a fake clock),
    then the driver's own error, as a pool or a framework expects it."""
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, port=free_port()))
    clock = FakeClock()
    attempts: list[dict[str, Any]] = []

    def counting_connect(**params: Any) -> psycopg.Connection[Any]:
        attempts.append(params)
        return psycopg.connect(**params)

    retry = ConnectRetry(
        timeout_s=10, initial_wait_s=0.5, max_wait_s=2, jitter=0, sleep=clock.sleep
    )
    creds = RotatingCredentials(arn, source=_counted_source()[0], retry=retry, clock=clock)
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        creds.connect(counting_connect)
    # 0.5 + 1 + 2 + 2 + 2 = 7.5 s of waits; after another 2 s, 0.5 s would be left: less
    # than a round needs for a read of the secret and a login (0.6 s).
    assert clock.sleeps == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert len(attempts) == 6
    # The same credential each time: the server, not the password, is the problem.
    assert {p["password"] for p in attempts} == {password}


class _FakeExtension(BaseHTTPRequestHandler):
    """Stands in for the Parameters and Secrets extension on localhost:2773."""

    sm: Any = None
    token = "session-token-xyz"
    seen: ClassVar[list[dict[str, list[str]]]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        type(self).seen.append(query)
        if self.headers.get("X-Aws-Parameters-Secrets-Token") != self.token:
            self.send_response(403)
            self.end_headers()
            return
        try:
            value = self.sm.get_secret_value(
                SecretId=query["secretId"][0], VersionStage=query["versionStage"][0]
            )
        except self.sm.exceptions.ResourceNotFoundException:
            self.send_response(404)
            self.end_headers()
            return
        body = json.dumps({"SecretString": value["SecretString"], "ARN": value["ARN"]}).encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def extension(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_FakeExtension]]:
    _FakeExtension.sm = bed.sm
    _FakeExtension.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeExtension)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "my-app")
    monkeypatch.setenv("AWS_SESSION_TOKEN", _FakeExtension.token)
    monkeypatch.setenv("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", str(server.server_address[1]))
    yield _FakeExtension
    server.shutdown()
    server.server_close()


def test_inside_lambda_the_extension_is_used(bed: Bed, extension: type[_FakeExtension]) -> None:
    arn, _, _ = bed.user_secret()
    source = default_source()
    assert isinstance(source, ExtensionSource)
    creds = RotatingCredentials(arn, source=source, retry=FAST)
    _query(creds.connect())
    _query(creds.connect())
    assert len(extension.seen) == 1  # cached
    bed.driver(bed.rotator()).rotate(arn)
    _query(creds.connect())
    assert extension.seen[-1].get("refreshNow") == ["true"]


def test_outside_lambda_boto3_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert isinstance(default_source(), SecretsManagerSource)


class _Loop:
    """Client threads that connect and query in a loop, counting failed queries."""

    def __init__(self, work: Callable[[], None], threads: int = 3) -> None:
        self.work = work
        self.ok = 0
        self.failed = 0
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._epoch = 0
        self._done_in_epoch = 0
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._progress:
                started_in = self._epoch
            try:
                self.work()
                outcome = "ok"
            except Exception:  # any failure counts (our AuthenticationError too); go on
                outcome = "failed"
            with self._progress:
                setattr(self, outcome, getattr(self, outcome) + 1)
                if started_in == self._epoch:
                    self._done_in_epoch += 1
                    self._progress.notify_all()

    def mark(self) -> None:
        """From now on, count only the queries that start after this call."""
        with self._progress:
            self._epoch += 1
            self._done_in_epoch = 0

    def settle(self, rounds: int = 1) -> None:
        """Wait until the threads have made ``rounds`` queries each (in total) that started
        after :meth:`mark`: what a step changed, they have seen. Progress, not time."""
        wanted = rounds * len(self._threads)
        with self._progress:
            assert self._progress.wait_for(lambda: self._done_in_epoch >= wanted, timeout=60)

    def __enter__(self) -> _Loop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def _rotate_with_clients_between_steps(bed: Any, arn: str, *loops: _Loop) -> None:
    """A rotation whose clients query between every two steps, as they would in Lambda,
    where each step is a separate invocation (cold starts, network)."""
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    for step in Step:
        driver.run(arn, token, [step])
        for loop in loops:
            loop.mark()
        for loop in loops:
            loop.settle()
    driver.complete(arn, token)


def _naive_work(bed: Any, arn: str) -> Callable[[], None]:
    client = new_client()

    def work() -> None:
        value = json.loads(
            client.get_secret_value(SecretId=arn, VersionStage=AWSCURRENT)["SecretString"]
        )
        _query(psycopg.connect(**bed.pg.conninfo(value["username"], value["password"])))

    return work


def test_single_user_rotation_with_and_without_the_client(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    creds = RotatingCredentials(arn, source=_counted_source(max_age_s=1)[0])
    with (
        _Loop(lambda: _query(creds.connect())) as with_client,
        _Loop(_naive_work(bed, arn)) as naive,
    ):
        _rotate_with_clients_between_steps(bed, arn, with_client, naive)
    counts = (
        f"single-user rotation: client {with_client.ok} ok / {with_client.failed} failed; "
        f"plain AWSCURRENT reads {naive.ok} ok / {naive.failed} failed"
    )
    assert with_client.failed == 0, counts
    assert with_client.ok > 0, counts
    # Without the client, the window between setSecret and finishSecret shows.
    assert naive.failed > 0, counts


def test_multi_user_rotation_with_the_client(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    creds = RotatingCredentials(arn, source=_counted_source(max_age_s=1)[0])
    with _Loop(lambda: _query(creds.connect())) as with_client:
        for _ in range(2):
            _rotate_with_clients_between_steps(multi, arn, with_client)
    assert with_client.failed == 0
    assert with_client.ok > 0


def _use_pool(pool: Any, times: int) -> tuple[set[int], set[str], int]:
    """Query ``times`` times through ``pool``: the backend pids and the passwords of the
    connections it served, and how many queries failed."""
    pids: set[int] = set()
    passwords: set[str] = set()
    failures = 0
    for _ in range(times):
        try:
            with pool.connection(timeout=10) as conn:
                conn.execute("SELECT 1")
                pids.add(conn.info.backend_pid)
                passwords.add(conn.info.password)
        except psycopg.Error:
            failures += 1
    return pids, passwords, failures


def _end_sessions(bed: Bed, user: str) -> int:
    """End every session of ``user``, waiting until each has gone; how many there were."""
    with admin_connect(bed.pg) as conn:
        ended = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000))"
            " FROM pg_stat_activity WHERE usename = %s",
            (user,),
        ).fetchone()
    assert ended is not None
    return int(ended[0])


def test_a_pool_follows_rotations(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    # The cache outlives the test: the pool's new connections find each new password by
    # being refused the cached one, not because a cache expired (no timing involved).
    # Rotations come hours apart, not within the second that a forced refresh of the
    # secret waits before the next (RefreshPolicy): the credentials' clock (not the
    # cache's) says so.
    clock = FakeClock()
    creds = RotatingCredentials(arn, source=_counted_source()[0], retry=FAST, clock=clock)
    pool = make_pool(arn, credentials_=creds, min_size=2, max_size=4, max_lifetime=3600)
    passwords = [bed.value(arn)["password"]]
    with pool:
        pool.wait(timeout=10)
        seen, _, failures = _use_pool(pool, 6)
        assert failures == 0
        for round_ in range(3):
            assert bed.driver(bed.rotator()).rotate(arn).succeeded, f"round {round_}"
            clock.advance(3600)
            passwords.append(bed.value(arn)["password"])
            # PostgreSQL checks a password only at login, so the pool's connections keep
            # working after a rotation and would be reused for hours. End them, as a failover
            # or an idle timeout would: check() then replaces them with new connections.
            assert _end_sessions(bed, user) >= 2, f"round {round_}"  # min_size
            pool.check()
            pids, used, failures = _use_pool(pool, 6)
            assert failures == 0, f"round {round_}"
            # Connections opened after the rotation, with the new password.
            assert pids, f"round {round_}"
            assert not pids & seen, f"round {round_}: the pool served a connection from before"
            assert used == {passwords[-1]}, f"round {round_}"
            seen |= pids
    # Every round rotated: each AWSCURRENT password is one never seen before.
    assert len(set(passwords)) == len(passwords) == 4
