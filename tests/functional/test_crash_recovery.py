"""Crash at every Secrets Manager call and every connection, then re-attempt with the token.

At every crash point some labelled version must still log in, and the re-attempt (what
Secrets Manager does after a failed rotation: the four steps again, same token) completes.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, AWSPREVIOUS
from tests.fix_rotation import Bed, ConnectionCounter, SimulatedCrash

pytestmark = [pytest.mark.functional, pytest.mark.crash]

# DescribeSecret, GetSecretValue x2, PutSecretValue, DescribeSecret x3,
# UpdateSecretVersionStage: a happy single-user rotation's handler calls.
HAPPY_CALLS = 8


class CrashAtCall:
    """Raise :class:`SimulatedCrash` before or after the n-th API call of a client."""

    def __init__(self, client: Any, index: int, when: str) -> None:
        self.index = index
        self.seen = 0
        self.when = when
        self.fired: str | None = None
        client.meta.events.register(f"{when}-call.secrets-manager.*", self._hook)

    def _hook(self, model: Any, **_: Any) -> None:
        if self.fired is None and self.seen == self.index:
            self.fired = model.name
            raise SimulatedCrash(f"crash {self.when} {model.name}")
        self.seen += 1

    def disarm(self) -> None:
        self.index = -1


def _assert_recovers(bed: Bed, arn: str, *, warm: bool, rotator: Any) -> None:
    logins = bed.labelled_logins(arn)
    assert logins, "no labelled version logs in after the crash"
    driver = bed.driver(rotator if warm else bed.rotator())
    token = driver.pending_token(arn)
    if token is None:
        # The crash hit after AWSCURRENT moved: the rotation is done; the service would
        # now take AWSPENDING off. Re-running the steps must change nothing.
        (token,) = [v for v, s in bed.labels(arn).items() if AWSCURRENT in s]
    run = driver.run(arn, token)
    assert run.succeeded
    labels = bed.labels(arn)
    assert labels[token] == [AWSCURRENT]
    assert sorted(s for stages in labels.values() for s in stages) == [AWSCURRENT, AWSPREVIOUS]
    assert bed.labelled_logins(arn) == [AWSCURRENT]


@pytest.mark.parametrize("warm", [True, False], ids=["same-container", "new-container"])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("index", range(HAPPY_CALLS))
def test_crash_at_every_api_call_then_reattempt(
    bed: Bed, index: int, when: str, warm: bool
) -> None:
    arn, _, _ = bed.user_secret()
    rotator = bed.rotator()
    crash = CrashAtCall(bed.handler_client, index, when)
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    with pytest.raises(SimulatedCrash):
        driver.run(arn, token)
    assert crash.fired is not None
    crash.disarm()
    _assert_recovers(bed, arn, warm=warm, rotator=rotator)


class CrashAtConnection(ConnectionCounter):
    """Connects for real, but crashes before or after the n-th connection."""

    def __init__(self, index: int, when: str) -> None:
        super().__init__()
        self.index = index
        self.when = when

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        number = self.total
        if number == self.index and self.when == "before":
            self.index = -1
            raise SimulatedCrash("crash before connecting")
        conn = super().__call__(**kwargs)
        if number == self.index and self.when == "after":
            self.index = -1
            conn.close()
            raise SimulatedCrash("crash after connecting")
        return conn


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("index", range(2), ids=["setSecret-login", "testSecret-login"])
def test_crash_at_every_connection_then_reattempt(bed: Bed, index: int, when: str) -> None:
    arn, _, _ = bed.user_secret()
    connect = CrashAtConnection(index, when)
    rotator = bed.rotator(PostgresSingleUser(bed.connector().__class__(connect=connect)))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    with pytest.raises(SimulatedCrash):
        driver.run(arn, token)
    _assert_recovers(bed, arn, warm=True, rotator=rotator)


def test_crash_after_the_password_changed_inside_setsecret(bed: Bed) -> None:
    """The ALTER ROLE committed, then the container died before setSecret returned."""
    arn, _, _ = bed.user_secret()
    rotator = bed.rotator()
    strategy = rotator.strategy
    assert isinstance(strategy, PostgresSingleUser)
    original_set = strategy.set

    def set_then_crash(request: Any) -> Any:
        original_set(request)
        raise SimulatedCrash("crash after ALTER ROLE")

    # Patching this one instance's method is the point: the crash is injected inside setSecret.
    strategy.set = set_then_crash  # type: ignore[method-assign]
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    with pytest.raises(SimulatedCrash):
        driver.run(arn, token)
    assert bed.labelled_logins(arn) == ["AWSPENDING"]
    _assert_recovers(bed, arn, warm=False, rotator=rotator)
