"""A database that restarts between steps or while a step runs, with a real ``pg_ctl``.

Every fault is set off at a point the rotation itself reaches (after a step, inside the
retry's pause, right after a chosen connection opens), never by a timer, so each run is the
same. Throughout, some labelled version logs in; in the end the rotation completes, in one
run when the server is back within the step's retries, else with Secrets Manager's
re-attempt (``LocalRotation.rotate`` resumes the token in progress).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    LocalRotation,
    RetryPolicy,
    RotationFailed,
    Rotator,
    SecretStore,
    Step,
    StepRecord,
)
from testbed.pgcluster import PostgresCluster, running_cluster
from tests.fix_faults import Pauses
from tests.fix_multi import MultiBed, _ensure_master
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed, ConnectionCounter, SecretInspection

pytestmark = pytest.mark.functional

STRATEGIES = ["single-user", "multi-user"]


@pytest.fixture(scope="module")
def restart_pg() -> Iterator[PostgresCluster]:
    """A cluster of its own: restarting the session's would disturb every other test."""
    with running_cluster(tls=False) as cluster:
        yield cluster


class Setup:
    """One secret on ``restart_pg`` rotated by either strategy, through an injected connect
    and retry sleep, with a check after every step that some labelled version logs in."""

    def __init__(self, strategy: str, cluster: PostgresCluster, sm: Any) -> None:
        self.cluster = cluster
        self.strategy = strategy
        self.inspect: SecretInspection
        if strategy == "multi-user":
            multi = MultiBed(pg=cluster, sm=sm, master_password=_ensure_master(cluster))
            self.arn, self.user, _ = multi.app()
            self.cleanup: Callable[[], None] = multi.cleanup
            self.inspect, self.handler_client = multi, multi.handler_client
        else:
            bed = Bed(pg=cluster, sm=sm, make_user=self._make_user)
            self.arn, self.user, _ = bed.user_secret()
            self.cleanup = self._drop_user
            self.inspect, self.handler_client = bed, bed.handler_client
        self.sm = sm
        self.logins_after: list[tuple[str, list[str]]] = []

    def _make_user(self, name: str | None = None, password: str | None = None) -> tuple[str, str]:
        name = name or f"app_{secrets.token_hex(4)}"
        password = password or secrets.token_urlsafe(18)
        with admin_connect(self.cluster) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
            set_role_password(conn, name, password)
        return name, password

    def _drop_user(self) -> None:
        with admin_connect(self.cluster) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.user)))

    def labelled_logins(self) -> list[str]:
        return self.inspect.labelled_logins(self.arn)

    def driver(
        self,
        connect: ConnectionCounter,
        pauses: Pauses,
        after_step: Callable[[Step], None] | None = None,
    ) -> LocalRotation:
        connector = PostgresConnector(
            connect=connect, retry_policy=RetryPolicy(attempts=5, sleep=pauses)
        )
        strategy: Any = (
            PostgresMultiUser(connector)
            if self.strategy == "multi-user"
            else PostgresSingleUser(connector)
        )
        rotator = Rotator(strategy, SecretStore(self.handler_client))

        def on_step(record: StepRecord) -> None:
            # The invariant, checked with the server up, after every step and every failure.
            self.logins_after.append((record.step.value, self.labelled_logins()))
            assert self.logins_after[-1][1], f"no labelled version logs in after {record}"
            if after_step is not None and record.error is None:
                after_step(record.step)

        return LocalRotation(self.sm, rotator.handle, on_step=on_step)

    def assert_rotated(self, before: dict[str, Any]) -> None:
        values = self.inspect.values_by_label(self.arn)
        assert AWSPENDING not in values or values[AWSPENDING] == values[AWSCURRENT]
        assert values[AWSCURRENT]["password"] != before["password"]
        assert self.inspect.logs_in(values[AWSCURRENT])
        if self.strategy == "single-user":
            assert not self.inspect.logs_in(values[AWSPREVIOUS])


@pytest.fixture(params=STRATEGIES)
def setup(request: pytest.FixtureRequest, restart_pg: PostgresCluster, sm: Any) -> Iterator[Setup]:
    made = Setup(request.param, restart_pg, sm)
    yield made
    made.cleanup()


def test_a_restart_between_every_two_steps_is_invisible(setup: Setup) -> None:
    """``pg_ctl restart`` after createSecret, setSecret and testSecret: each next step logs
    in again; nothing is retried and the rotation completes in one run."""
    before = setup.inspect.value(setup.arn)
    log_mark = len(setup.cluster.server_log())
    pauses = Pauses()
    restarts: list[Step] = []

    def restart(step: Step) -> None:
        if step is not Step.FINISH:
            setup.cluster.restart()
            restarts.append(step)

    run = setup.driver(ConnectionCounter(), pauses, restart).rotate(setup.arn)
    assert run.succeeded
    assert restarts == [Step.CREATE, Step.SET, Step.TEST]
    assert setup.cluster.server_log()[log_mark:].count("database system is ready") == 3
    assert pauses.waits == []
    setup.assert_rotated(before)


def test_a_server_down_when_a_step_starts_is_waited_for_inside_the_step(setup: Setup) -> None:
    """Stopped after setSecret; testSecret finds nobody listening (unreachable, retried) and
    the server is started again during its first pause: the rotation completes in one run."""
    before = setup.inspect.value(setup.arn)
    pauses = Pauses(setup.cluster.start_server)
    counter = ConnectionCounter()

    def stop_after_set(step: Step) -> None:
        if step is Step.SET:
            setup.cluster.stop_server()

    run = setup.driver(counter, pauses, stop_after_set).rotate(setup.arn)
    assert run.succeeded
    assert len(pauses.waits) == 1
    # Multi-user: setSecret's guard login and the master's; then testSecret's.
    happy = 3 if setup.strategy == "multi-user" else 2
    assert counter.total == happy + 1  # the one refused TCP connection
    setup.assert_rotated(before)


def test_a_server_shutting_down_when_a_step_logs_in_is_waited_for(setup: Setup) -> None:
    """A smart shutdown held open by a session: setSecret's login gets "the database
    system is shutting down" (57P03, retried); in the pause the session ends, the server
    stops and starts again, and the next attempt logs in."""
    before = setup.inspect.value(setup.arn)
    blocker: list[psycopg.Connection[Any]] = []

    def begin_shutdown(step: Step) -> None:
        if step is Step.CREATE:
            blocker.append(admin_connect(setup.cluster))
            setup.cluster.stop_server(mode="smart", wait=False)
            _wait_until_refusing(setup.cluster, "shutting down")

    def back_up() -> None:
        # A fast stop ends the held session and returns once the server is down (closing
        # the session first would let the smart shutdown finish on its own: a race).
        setup.cluster.stop_server()
        blocker.pop().close()
        setup.cluster.start_server()

    log_mark = len(setup.cluster.server_log())
    pauses = Pauses(back_up)
    run = setup.driver(ConnectionCounter(), pauses, begin_shutdown).rotate(setup.arn)
    assert run.succeeded
    assert len(pauses.waits) == 1
    assert "the database system is shutting down" in setup.cluster.server_log()[log_mark:]
    setup.assert_rotated(before)


def _wait_until_refusing(cluster: PostgresCluster, text: str) -> None:
    """Until a new login is refused with ``text``: pg_ctl -W returns once the signal is
    sent, the postmaster acts on it a moment later. A condition, not a sleep."""
    for _ in range(10_000):
        try:
            psycopg.connect(**cluster.conninfo()).close()
        except psycopg.OperationalError as exc:
            refusal = str(exc)
            break
    else:
        pytest.fail(f"the server never started refusing logins with {text!r}")
    assert text in refusal


class CutAfter(ConnectionCounter):
    """Connects for real, and right after the ``at``-th connection opens restarts the server
    (fast mode): that session is cut as in a failover in the middle of a step."""

    def __init__(self, cluster: PostgresCluster, at: int) -> None:
        super().__init__()
        self.cluster, self.at = cluster, at

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        conn = super().__call__(**kwargs)
        if self.total == self.at:
            self.cluster.restart()
        return conn


# (strategy, which connection of the rotation is cut, the step that fails). Single-user
# opens setSecret's and testSecret's; multi-user opens the current user's guard login
# (closed at once: nothing to cut), the master's and testSecret's.
CUTS = [
    ("single-user", 1, Step.SET),
    ("single-user", 2, Step.TEST),
    ("multi-user", 1, None),
    ("multi-user", 2, Step.SET),
    ("multi-user", 3, Step.TEST),
]


@pytest.mark.parametrize(
    ("strategy", "at", "fails"), CUTS, ids=[f"{s}-connection{n}" for s, n, _ in CUTS]
)
def test_a_restart_that_cuts_a_step_is_completed_by_the_reattempt(
    restart_pg: PostgresCluster, sm: Any, strategy: str, at: int, fails: Step | None
) -> None:
    setup = Setup(strategy, restart_pg, sm)
    try:
        before = setup.inspect.value(setup.arn)
        driver = setup.driver(CutAfter(restart_pg, at), Pauses())
        if fails is None:
            assert driver.rotate(setup.arn).succeeded
        else:
            with pytest.raises(RotationFailed) as caught:
                driver.rotate(setup.arn)
            assert caught.value.step is fails
            assert "terminating connection due to administrator command" in str(caught.value)
            resumed = driver.rotate(setup.arn)  # Secrets Manager's re-attempt, same token
            assert resumed.resumed
            assert resumed.succeeded
        setup.assert_rotated(before)
        assert all(logins for _, logins in setup.logins_after)
    finally:
        setup.cleanup()
