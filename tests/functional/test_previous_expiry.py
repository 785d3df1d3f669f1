"""Bounded overlap (``PREVIOUS_PASSWORD_TTL``, multi-user): AWSPREVIOUS's password stops
logging in at most N seconds after finishSecret returns; AWSCURRENT never gets an expiry.

Time is the server's: an expiry is checked by comparing ``rolvaliduntil`` with ``now()`` on
the server (which is what it checks at login), and the only waits are for the server's clock
to pass an expiry at most the TTL away (TTL 0 where the test allows: then none)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from psycopg import sql

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.pg_expiry import is_rotation_expiry
from rotation import AWSCURRENT, AWSPREVIOUS, Rotator, SecretStore
from tests.fix_multi import MultiBed, bed_resolver
from tests.fix_postgres import ServerLog, admin_connect
from tests.fix_rotation import SimulatedCrash
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
