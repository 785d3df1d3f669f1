"""Bounded overlap (``PREVIOUS_PASSWORD_TTL``, multi-user): AWSPREVIOUS's password stops
logging in at most N seconds after finishSecret returns; AWSCURRENT never gets an expiry.

Time is the server's: an expiry is checked by comparing ``rolvaliduntil`` with ``now()`` on
the server (which is what it checks at login), and the only waits are for the server's clock
to pass an expiry at most the TTL away (TTL 0 where the test allows: then none)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers import single_user
from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.pg_expiry import is_rotation_expiry
from rotation import AWSCURRENT, AWSPREVIOUS, Outcome, Rotator, SecretStore, Step
from rotation.driver import RotationFailed
from rotation.strategy import PromotedRequest
from testbed.pgcluster import PostgresCluster, running_cluster
from tests.fix_aws import new_client
from tests.fix_multi import HostMap, MultiBed, _ensure_master, bed_resolver
from tests.fix_postgres import ServerLog, admin_connect
from tests.fix_rotation import Bed, SimulatedCrash
from tests.functional.test_crash_recovery import CrashAtCall

pytestmark = pytest.mark.functional

OPERATOR = "2099-01-02T03:04:05.000000Z"


def ttl_rotator(bed: MultiBed, ttl: int | None, strategy: Any = None) -> Rotator:
    connector = PostgresConnector(connect=bed.connections, resolver=bed_resolver)
    strategy = strategy or PostgresMultiUser(connector, previous_ttl=ttl)
    return Rotator(strategy, SecretStore(bed.handler_client))


def validity(bed: MultiBed, user: str) -> tuple[str, bool]:
    """(``VALID UNTIL`` as the rotation spells it, whether it has passed on the server)."""
    with admin_connect(bed.pg) as conn:
        row = conn.execute(
            "SELECT CASE WHEN rolvaliduntil IS NULL THEN 'infinity'"
            " WHEN isfinite(rolvaliduntil) THEN to_char(rolvaliduntil AT TIME ZONE 'UTC',"
            ' \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') ELSE rolvaliduntil::text END,'
            " coalesce(rolvaliduntil <= now(), false) FROM pg_roles WHERE rolname = %s",
            (user,),
        ).fetchone()
    assert row is not None
    return str(row[0]), bool(row[1])


def wait_for_server_clock(bed: MultiBed, user: str, bound_s: float) -> None:
    """Until the server's now() passes ``user``'s VALID UNTIL, which is at most ``bound_s``
    ahead (checked first): a condition on the server's clock, never a guessed sleep."""
    with admin_connect(bed.pg) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM rolvaliduntil - now()) FROM pg_roles WHERE rolname = %s",
            (user,),
        ).fetchone()
    assert row is not None
    assert row[0] is not None
    left = float(row[0])
    assert left <= bound_s
    if left > 0:
        time.sleep(left + 0.05)
    assert validity(bed, user)[1]


def assert_current_clean(bed: MultiBed, arn: str) -> dict[str, Any]:
    current = bed.value(arn)
    assert bed.logs_in(current)
    valid_until, passed = validity(bed, current["username"])
    assert not is_rotation_expiry(valid_until)
    assert not passed
    return current


def test_three_rotations_with_a_two_second_ttl(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    for round_ in range(3):
        log = ServerLog(multi.pg)
        assert multi.driver(ttl_rotator(multi, 2)).rotate(arn).succeeded
        text = log.since()
        # One more login than a quiet rotation: the master's, in finishSecret.
        assert text.count("connection authorized:") == 4
        assert "password authentication failed" not in text
        current = assert_current_clean(multi, arn)
        previous = multi.value(arn, AWSPREVIOUS)
        assert current["username"] == (user if round_ % 2 else f"{user}_clone")
        valid_until, _ = validity(multi, previous["username"])
        assert is_rotation_expiry(valid_until)
        wait_for_server_clock(multi, previous["username"], 2.0)
        assert not multi.logs_in(previous)
        assert_current_clean(multi, arn)  # the current user always logs in


def test_ttl_zero_expires_the_previous_password_at_once(multi: MultiBed) -> None:
    arn, _, password = multi.app()
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    previous = multi.value(arn, AWSPREVIOUS)
    assert previous["password"] == password
    assert validity(multi, previous["username"])[1]
    assert not multi.logs_in(previous)
    assert_current_clean(multi, arn)
    # The next rotation gives that user a new password that logs in, expiry cleared.
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    assert multi.value(arn)["username"] == previous["username"]
    assert_current_clean(multi, arn)


def test_ttl_off_leaves_the_previous_password_working(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    for _ in range(2):
        log = ServerLog(multi.pg)
        assert multi.driver(ttl_rotator(multi, None)).rotate(arn).succeeded
        assert log.since().count("connection authorized:") == 3
        previous = multi.value(arn, AWSPREVIOUS)
        assert validity(multi, previous["username"]) == ("infinity", False)
        assert multi.logs_in(previous)


def test_the_operators_valid_until_is_what_awscurrent_carries(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2099-01-02 03:04:05+00'").format(
            sql.Identifier(user)))  # fmt: skip
    for _ in range(4):
        assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
        current, previous = multi.value(arn), multi.value(arn, AWSPREVIOUS)
        assert validity(multi, current["username"]) == (OPERATOR, False)
        assert multi.logs_in(current)
        assert is_rotation_expiry(validity(multi, previous["username"])[0])
        assert not multi.logs_in(previous)


def test_an_operator_change_on_the_previous_user_wins(multi: MultiBed) -> None:
    """The operator sets VALID UNTIL on the user while it carries the rotation's expiry:
    unmarked, it is the operator's, and the user keeps it when rotated back in."""
    arn, user, _ = multi.app()
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded  # user is previous
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2099-01-02 03:04:05+00'").format(
            sql.Identifier(user)))  # fmt: skip
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    assert multi.value(arn)["username"] == user
    assert validity(multi, user) == (OPERATOR, False)
    assert multi.logs_in(multi.value(arn))


def test_awscurrent_carrying_a_rotation_expiry_is_healed_by_the_next_rotation(
    multi: MultiBed,
) -> None:
    """Planted by hand (no path of ours does it): setSecret clears it from AWSCURRENT, and
    parity never copies it to the clone."""
    arn, user, _ = multi.app()
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2099-01-01 00:00:00.271828+00'").format(
            sql.Identifier(user)))  # fmt: skip
    assert multi.driver(ttl_rotator(multi, None)).rotate(arn).succeeded
    assert validity(multi, user) == ("infinity", False)
    assert validity(multi, f"{user}_clone") == ("infinity", False)


def _crash_points(multi: MultiBed) -> int:
    arn, _, _ = multi.app()
    multi.calls.reset()
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    return len(multi.calls)


@pytest.mark.parametrize("rotation", [1, 2])
@pytest.mark.parametrize("when", ["before", "after"])
def test_crash_sweep_with_the_ttl_on(multi: MultiBed, when: str, rotation: int) -> None:
    """At every Secrets Manager call of a rotation with TTL 0 (so every expiry set has
    passed at once): AWSCURRENT logs in, and the re-attempt completes with the previous
    password expired and AWSCURRENT clean."""
    points = _crash_points(multi)
    # create 4, set 2, test 1, finish 2; then the master secret and the check under the lock
    assert points == 11
    for index in range(points):
        arn, _, _ = multi.app()
        rotator = ttl_rotator(multi, 0)
        for _ in range(rotation - 1):
            assert multi.driver(rotator).rotate(arn).succeeded
        crash = CrashAtCall(multi.handler_client, index - (1 if rotation == 2 else 0), when)
        driver = multi.driver(rotator)
        token = driver.begin(arn)
        with contextlib.suppress(SimulatedCrash):
            driver.run(arn, token)
        crash.disarm()
        assert_current_clean(multi, arn)
        again = multi.driver(ttl_rotator(multi, 0))
        assert again.run(arn, token).succeeded
        again.complete(arn, token)
        assert multi.labels(arn)[token] == [AWSCURRENT]
        current = assert_current_clean(multi, arn)
        previous = multi.value(arn, AWSPREVIOUS)
        assert previous["username"] != current["username"]
        assert validity(multi, previous["username"])[1], f"crash {when} call {index}"
        assert not multi.logs_in(previous)


class FollowUpHook(PostgresMultiUser):
    """The multi-user strategy with something done at the start of finishSecret's
    follow-up: right after the label move, before the expiry."""

    def __init__(self, bed: MultiBed, ttl: int, before: Any) -> None:
        super().__init__(
            PostgresConnector(connect=bed.connections, resolver=bed_resolver), previous_ttl=ttl
        )
        self.before = before

    def promoted(self, request: PromotedRequest) -> None:
        self.before()
        super().promoted(request)


def test_a_late_finish_never_expires_a_user_a_later_rotation_made_current(
    multi: MultiBed,
) -> None:
    """A duplicate finishSecret of rotation N read the labels while N's token still held
    AWSPENDING, then stalled; meanwhile N completed and rotation N+1 set the previous
    user's new password. The duplicate's expiry must not land on that user, which N+1 makes
    AWSCURRENT (TTL 0: it would be locked out at once)."""
    arn, user, _ = multi.app()
    rotator = ttl_rotator(multi, 0)
    driver = multi.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET, Step.TEST])
    rotator.handle(multi.event(arn, "finishSecret", token))  # AWSPENDING still on the token
    assert validity(multi, user)[1]  # N expired the owner, now AWSPREVIOUS
    later = multi.driver(ttl_rotator(multi, 0))
    tokens: list[str] = []

    def meanwhile() -> None:
        driver.complete(arn, token)
        tokens.append(later.begin(arn))
        later.run(arn, tokens[0], [Step.CREATE, Step.SET])

    late = ttl_rotator(multi, 0, FollowUpHook(multi, 0, meanwhile))
    assert late.handle(multi.event(arn, "finishSecret", token)) == Outcome.ALREADY_CURRENT
    assert validity(multi, user) == ("infinity", False)  # N+1 cleared it; nobody set it again
    later.run(arn, tokens[0], [Step.TEST, Step.FINISH])
    later.complete(arn, tokens[0])
    current = assert_current_clean(multi, arn)
    assert current["username"] == user
    assert validity(multi, f"{user}_clone")[1]  # N+1's own expiry: the clone


def test_two_finish_secrets_at_once(multi: MultiBed) -> None:
    """Two containers run finishSecret together and meet in the follow-up: both end well,
    AWSCURRENT clean, AWSPREVIOUS expired."""
    arn, _, _ = multi.app()
    driver = multi.driver(ttl_rotator(multi, 0))
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET, Step.TEST])
    gate = threading.Barrier(2, timeout=60)
    outcomes: list[object] = []

    def finish() -> None:
        rotator = ttl_rotator(multi, 0, FollowUpHook(multi, 0, gate.wait))
        rotator.store = SecretStore(new_client())
        try:
            outcomes.append(rotator.handle(multi.event(arn, "finishSecret", token)))
        except Exception as exc:  # recorded and asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=finish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(isinstance(outcome, str) for outcome in outcomes), outcomes
    driver.complete(arn, token)
    assert_current_clean(multi, arn)
    previous = multi.value(arn, AWSPREVIOUS)
    assert validity(multi, previous["username"])[1]


def test_the_masters_own_expiry_fails_finish_after_the_move_and_the_reattempt_completes(
    multi: MultiBed,
) -> None:
    arn, _, _ = multi.app()

    def master_expires() -> None:
        with admin_connect(multi.pg) as conn:
            conn.execute("ALTER ROLE rotation_master VALID UNTIL '2000-01-01'")

    driver = multi.driver(ttl_rotator(multi, 0, FollowUpHook(multi, 0, master_expires)))
    token = driver.begin(arn)
    try:
        with pytest.raises(RotationFailed, match="AWSCURRENT is on the new version"):
            driver.run(arn, token)
    finally:
        with admin_connect(multi.pg) as conn:
            conn.execute("ALTER ROLE rotation_master VALID UNTIL 'infinity'")
    assert AWSCURRENT in multi.labels(arn)[token]
    assert_current_clean(multi, arn)
    previous = multi.value(arn, AWSPREVIOUS)
    assert multi.logs_in(previous)  # not expired yet: the master could not log in
    again = multi.driver(ttl_rotator(multi, 0))
    assert again.run(arn, token).succeeded  # Secrets Manager's re-attempt
    again.complete(arn, token)
    assert validity(multi, previous["username"])[1]
    assert_current_clean(multi, arn)


@pytest.fixture(scope="module")
def restart_pg() -> Iterator[PostgresCluster]:
    """A cluster of its own: restarting the session's would disturb every other test."""
    with running_cluster(tls=False) as cluster:
        yield cluster


@pytest.fixture
def restart_bed(restart_pg: PostgresCluster, moto_endpoint: Any, sm: Any) -> Iterator[MultiBed]:
    bed = MultiBed(pg=restart_pg, sm=sm, master_password=_ensure_master(restart_pg))
    yield bed
    bed.cleanup()


class CutMaster(HostMap):
    """Restarts the server right after the master's ``n``-th login opens: that session is
    cut as in a failover."""

    def __init__(self, cluster: PostgresCluster, n: int) -> None:
        super().__init__(cluster)
        self.n = n

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        conn = super().__call__(**kwargs)
        if kwargs["user"] == "rotation_master" and self.by_user["rotation_master"] == self.n:
            self.cluster.restart()
        return conn


def test_a_restart_between_the_label_move_and_the_expiry(restart_bed: MultiBed) -> None:
    """The server restarts after finishSecret moved AWSCURRENT and before the expiry: the
    follow-up logs in after it and sets the expiry."""
    arn, _, _ = restart_bed.app()
    hook = FollowUpHook(restart_bed, 0, restart_bed.pg.restart)
    assert restart_bed.driver(ttl_rotator(restart_bed, 0, hook)).rotate(arn).succeeded
    assert_current_clean(restart_bed, arn)
    assert validity(restart_bed, restart_bed.value(arn, AWSPREVIOUS)["username"])[1]


def test_a_restart_cutting_the_expiry_is_completed_by_the_reattempt(
    restart_bed: MultiBed,
) -> None:
    arn, _, _ = restart_bed.app()
    restart_bed.connections = CutMaster(restart_bed.pg, 2)  # setSecret's is the 1st
    driver = restart_bed.driver(ttl_rotator(restart_bed, 0))
    token = driver.begin(arn)
    with pytest.raises(RotationFailed, match="terminating connection"):
        driver.run(arn, token)
    assert AWSCURRENT in restart_bed.labels(arn)[token]
    assert_current_clean(restart_bed, arn)
    restart_bed.connections = HostMap(restart_bed.pg)
    again = restart_bed.driver(ttl_rotator(restart_bed, 0))
    assert again.run(arn, token).succeeded
    again.complete(arn, token)
    assert_current_clean(restart_bed, arn)
    assert validity(restart_bed, restart_bed.value(arn, AWSPREVIOUS)["username"])[1]


def test_single_user_ignores_the_ttl_and_says_so_once(
    bed: Bed, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PREVIOUS_PASSWORD_TTL", "5")
    monkeypatch.setattr(single_user, "_ttl_noted", [])
    for _ in range(2):
        arn, user, _ = bed.user_secret()
        assert bed.driver(bed.rotator()).rotate(arn).succeeded
        with admin_connect(bed.pg) as conn:
            row = conn.execute(
                "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (user,)
            ).fetchone()
        assert row == (None,)
    said = [r for r in caplog.records if "single-user rotation ignores it" in r.getMessage()]
    assert len(said) == 1


def test_verify_reports_an_expired_previous_as_expected_not_drift(multi: MultiBed) -> None:
    from rotation_tools.verify import verify_secrets

    arn, user, _ = multi.app()
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    connector = PostgresConnector(connect=multi.connections, resolver=bed_resolver)

    def verify() -> Any:
        (result,) = verify_secrets(
            multi.handler_client, [arn], strategy="multi-user", connector=connector
        )
        return result

    result = verify()
    assert result.state.value == "valid", result
    assert [(r.label, r.state.value) for r in result.logins] == [
        (AWSCURRENT, "valid"),
        (AWSPREVIOUS, "expired"),
    ]
    assert "PREVIOUS_PASSWORD_TTL" in result.logins[1].problem
    # An expiry the operator set (unmarked) is not the rotation's: that is drift.
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2001-01-01'").format(
            sql.Identifier(user)))  # fmt: skip
    assert verify().state.value == "drift"


def test_a_hand_rollback_names_an_expired_user_and_moving_forward_again_heals_it(
    multi: MultiBed,
) -> None:
    """Operator: moves AWSCURRENT back to the previous version by hand after a TTL
    rotation (docs/concepts/bounded-overlap.md). AWSCURRENT then names the expired user; moving
    AWSCURRENT forward to the version the rotation made current again heals it, and the
    next rotation runs as usual."""
    arn, _, _ = multi.app()
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    labels = multi.labels(arn)
    current = next(v for v, s in labels.items() if AWSCURRENT in s)
    previous = next(v for v, s in labels.items() if AWSPREVIOUS in s)
    multi.sm.update_secret_version_stage(
        SecretId=arn, VersionStage=AWSCURRENT, MoveToVersionId=previous,
        RemoveFromVersionId=current,
    )  # fmt: skip
    assert not multi.logs_in(multi.value(arn))
    assert multi.logs_in(multi.value(arn, AWSPREVIOUS))  # the version the rotation made current
    multi.sm.update_secret_version_stage(
        SecretId=arn, VersionStage=AWSCURRENT, MoveToVersionId=current,
        RemoveFromVersionId=previous,
    )  # fmt: skip
    assert multi.logs_in(multi.value(arn))
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    assert multi.logs_in(multi.value(arn))
