"""Every Secrets Manager attempt is bounded by the step's deadline, not by botocore's fixed
15 s read timeout: a Secrets Manager that accepts the connection and never answers fails the
step with its own message before the deadline.

The server that never answers is a socket on 127.0.0.1 that accepts and reads nothing back.
Deadlines with a frozen clock make the timeout each attempt gets exact (no timing in the
assertions); the one test on a real clock only checks that it ended well before 15 s.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from rotation import (
    Deadline,
    DeadlineError,
    RetryPolicy,
    Rotator,
    SecretsManagerError,
    SecretStore,
    Step,
)
from rotation.clients import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    attempt_timeouts,
    secrets_manager_client,
)
from tests.fix_rotation import Bed
from tests.fix_silent import SilentServer, frozen_deadline

pytestmark = pytest.mark.functional


def test_an_attempt_gets_the_configured_timeouts_cut_to_the_time_left() -> None:
    configured = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    assert attempt_timeouts(configured, 60.0) == (5.0, 15.0)
    assert attempt_timeouts(configured, 12.5) == (5.0, 12.5)
    assert attempt_timeouts(configured, 3.0) == (3.0, 3.0)


def test_a_hung_secrets_manager_fails_the_call_within_the_time_left(silent: SilentServer) -> None:
    store = SecretStore(
        secrets_manager_client(silent.url), retry_policy=RetryPolicy(attempts=1, sleep=no_sleep)
    )
    started = time.monotonic()
    with pytest.raises(SecretsManagerError) as caught:
        store.session(frozen_deadline(1.0)).get_current_of("app/db")
    elapsed = time.monotonic() - started
    message = str(caught.value)
    # The read timeout this attempt got: the 1 s the step had left, not botocore's 15 s.
    assert "Secrets Manager did not answer GetSecretValue(AWSCURRENT) within 1.0 s" in message
    assert "network path to Secrets Manager" in message
    assert silent.connections() == 1
    assert elapsed < READ_TIMEOUT_S / 2  # a sanity bound only; the message is the proof


def test_an_injected_client_is_bounded_too(silent: SilentServer) -> None:
    client = boto3.client("secretsmanager", endpoint_url=silent.url)
    store = SecretStore(client, retry_policy=RetryPolicy(attempts=1, sleep=no_sleep))
    with pytest.raises(SecretsManagerError, match=r"did not answer DescribeSecret within 1\.0 s"):
        store.session(frozen_deadline(1.0)).describe("app/db")


def test_retries_stop_when_the_time_is_used_up(silent: SilentServer) -> None:
    waits: list[float] = []
    store = SecretStore(
        secrets_manager_client(silent.url), retry_policy=RetryPolicy(attempts=5, sleep=waits.append)
    )
    # A real clock: the first attempt's 1.5 s use up the deadline, so no second attempt.
    with pytest.raises(SecretsManagerError, match=r"within 1\.[0-5] s .*1 attempt\)"):
        store.session(Deadline.in_seconds(1.5)).describe("app/db")
    assert waits == []
    assert silent.connections() == 1


def test_a_near_deadline_call_still_succeeds(bed: Bed) -> None:
    """With less time left than the configured timeouts the request goes out through the
    deadline-bound path; it must still get the real answer."""
    arn, _, _ = bed.user_secret()
    store = SecretStore(secrets_manager_client())
    description = store.session(frozen_deadline(1.0)).describe(arn)
    assert description.arn == arn
    assert store.session(frozen_deadline(1.0)).get_current_of(arn).json()["username"]


class ThreeSecondsLeft:
    """A Lambda context with 5 s left; with the 2 s safety margin the step gets 3 s."""

    def get_remaining_time_in_millis(self) -> int:
        return 5000


def test_a_step_fails_with_its_own_error_before_the_deadline(silent: SilentServer) -> None:
    rotator = Rotator(
        _NeverCalled(),
        SecretStore(secrets_manager_client(silent.url), retry_policy=RetryPolicy(sleep=no_sleep)),
    )
    event = {"SecretId": "app/db", "ClientRequestToken": "t" * 32, "Step": Step.SET.value}
    started = time.monotonic()
    with pytest.raises(SecretsManagerError) as caught:
        rotator.handle(event, ThreeSecondsLeft())
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith("secret app/db, step setSecret")
    assert "did not answer DescribeSecret within" in message
    # Lambda would have killed it at 5 s; botocore alone would have waited 15 s.
    assert elapsed < READ_TIMEOUT_S / 2


class _NeverCalled:
    name = "never-called"

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the strategy's {name} must not run")


def no_sleep(_: float) -> None:
    return None


class _SteppedClock:
    """A clock the test moves: the step's last instants pass while a call is prepared."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("left_at_send", [0.0, 0.001])
def test_a_deadline_that_runs_out_before_the_send_is_a_deadline_error(
    silent: SilentServer, left_at_send: float
) -> None:
    """Time left when the call starts, none (or almost none) when the request would go
    out: a DeadlineError naming the call, not urllib3's ValueError for a zero timeout, and
    nothing sent."""
    clock = _SteppedClock()
    deadline = Deadline(expires_at=1000.5, clock=clock)
    client = secrets_manager_client(silent.url)

    def time_passes(**_: Any) -> None:
        clock.now = 1000.5 - left_at_send

    client.meta.events.register("before-call.secrets-manager.*", time_passes)
    store = SecretStore(client, retry_policy=RetryPolicy(attempts=3, sleep=no_sleep))
    with pytest.raises(DeadlineError) as caught:
        store.session(deadline).describe("app/db")
    assert "no time was left in the step to call Secrets Manager (DescribeSecret)" in str(
        caught.value
    )
    assert silent.connections() == 0


def test_no_time_left_before_a_call_is_a_deadline_error(silent: SilentServer) -> None:
    store = SecretStore(
        secrets_manager_client(silent.url), retry_policy=RetryPolicy(sleep=no_sleep)
    )
    with pytest.raises(DeadlineError, match=r"to call Secrets Manager \(DescribeSecret\)"):
        store.session(frozen_deadline(0.0)).describe("app/db")
    assert silent.connections() == 0
