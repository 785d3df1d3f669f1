"""A caller's own time running out is the caller's, not Secrets Manager's: a read cut by
one caller's budget is never remembered against the label (other callers, with time of
their own, read as usual), and the caller whose time ran out gets the right error: what
each version got from the server when logins were refused, else the timeout, with the fix.

Real PostgreSQL for the logins; a local endpoint plays Secrets Manager (its answers are
switched between the callers); the connect()s run on an injected clock, whose backoff
"sleep" plays a busy machine that wakes up with almost none of the budget left.
"""

from __future__ import annotations

import json
import math
from typing import Any

import boto3
import pytest

from rotation_client import ConnectRetry, RotatingCredentials, SecretsManagerSource
from rotation_contract.errors import ConnectTimeoutError, SecretReadTimeoutError
from rotation_contract.pg.errors import AuthenticationError
from tests.fix_clock import FakeClock
from tests.fix_rotation import Bed
from tests.fix_sm_endpoint import Answer, FakeSecretsManager

pytestmark = pytest.mark.functional

BUDGET_S = 3.0


def _client_for(fake: FakeSecretsManager) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=fake.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _oversleeping(clock: FakeClock, left_s: float) -> ConnectRetry:
    """A retry whose backoff wakes up with ``left_s`` of the budget left (from the
    connect() that starts at the clock's current time)."""
    start = clock()

    def sleep(_: float) -> None:
        clock.advance(start + BUDGET_S - left_s - clock())

    return ConnectRetry(timeout_s=BUDGET_S, sleep=sleep, rng=lambda: 0.0)


def test_a_read_cut_by_one_callers_budget_does_not_fail_the_next_caller(
    bed: Bed, fake_sm: FakeSecretsManager
) -> None:
    user, password = bed.make_user()
    wrong = bed.pg.secret_value(user, password + "-typo")
    fake_sm.answers["AWSCURRENT"] = Answer(value=json.dumps(wrong))
    clock = FakeClock()
    creds = RotatingCredentials(
        "test/own-time",
        source=SecretsManagerSource(_client_for(fake_sm)),
        retry=_oversleeping(clock, left_s=0.05),
        clock=clock,
    )

    # Caller A: refused, then its backoff leaves it 50 ms: the forced read it then starts
    # is cut by its own budget.
    with pytest.raises(AuthenticationError) as raised:
        creds.connect()
    said = str(raised.value)
    assert "AWSCURRENT: " in said  # what the version got from the server
    assert f"budget of {BUDGET_S:.1f} s" in said
    assert password not in said

    # Caller B: AWSCURRENT now holds the right password; a healthy endpoint, a fresh
    # budget. Nothing of A's cut read stands in its way.
    fake_sm.answers["AWSCURRENT"] = Answer(value=json.dumps(bed.pg.secret_value(user, password)))
    asked = fake_sm.requests
    with creds.connect(timeout_s=15) as conn:
        assert conn.info.user == user
    assert fake_sm.requests == asked + 1  # B's own forced read of AWSCURRENT


def test_a_read_cut_before_any_login_ends_as_the_timeout(
    fake_sm: FakeSecretsManager,
) -> None:
    """Nothing refused yet, no value known, no time to read: the public timeout error
    naming the budget and the fix (not a private class, not 'Secrets Manager did not
    answer'), and nothing remembered: the next caller reads."""
    fake_sm.answers["AWSCURRENT"] = Answer(value=json.dumps({"host": "h", "username": "u"}))
    creds = RotatingCredentials(
        "test/own-time-0", source=SecretsManagerSource(_client_for(fake_sm))
    )

    with pytest.raises(ConnectTimeoutError, match="Give connect\\(\\) more time"):
        creds.connect(timeout_s=0.05)
    assert fake_sm.requests == 0  # nothing asked, and no client built to ask it
    with pytest.raises(SecretReadTimeoutError):
        creds.versions.read("AWSCURRENT", timeout_s=0.0)
    assert creds.versions.read("AWSCURRENT", timeout_s=5) is not None
    assert fake_sm.requests == 1


@pytest.mark.parametrize("value", [math.nan, -1.0, "2"])
def test_a_budget_that_is_not_a_number_of_seconds_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match=r"timeout_s=.* is not a number of seconds"):
        ConnectRetry(timeout_s=value)
    creds = RotatingCredentials("test/own-time-nan", source=SecretsManagerSource(object()))
    with pytest.raises(ValueError, match=r"timeout_s=.* is not a number of seconds"):
        creds.connect(timeout_s=value)
