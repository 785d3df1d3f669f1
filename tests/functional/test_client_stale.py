"""rotation_client keeps a working credential through a Secrets Manager outage (stale if
error), and never waits on another thread's read past the caller's time."""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
import pytest
from botocore.config import Config

from rotation.errors import SecretsManagerError
from rotation_client import ConnectRetry, RotatingCredentials, SecretsManagerSource
from testbed.pgcluster import free_port
from tests.fix_aws import new_client
from tests.fix_clock import FakeClock
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

LOGGER = "rotation_client._versions"


class _Switch:
    """A Secrets Manager client that can be pointed elsewhere: moto, then a closed port
    (an unreachable Secrets Manager), both over real HTTP."""

    def __init__(self) -> None:
        self.to: Any = new_client()

    def unreachable(self) -> None:
        self.to = boto3.client(
            "secretsmanager",
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=2),
        )

    def get_secret_value(self, **kwargs: Any) -> Any:
        return self.to.get_secret_value(**kwargs)


def _query(creds: RotatingCredentials, **kwargs: Any) -> str:
    with creds.connect(**kwargs) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    return str(row[0])


def test_an_unreachable_secrets_manager_at_cache_expiry_keeps_the_known_credential(
    bed: Bed, caplog: pytest.LogCaptureFixture
) -> None:
    arn, user, password = bed.user_secret()
    clock = FakeClock()
    switch = _Switch()
    source = SecretsManagerSource(switch, max_age_s=300, clock=clock)
    creds = RotatingCredentials(arn, source=source, clock=clock)
    assert _query(creds) == user

    switch.unreachable()
    clock.advance(300)  # the cache expires: the next connect() reads AWSCURRENT again
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert _query(creds) == user
    clock.advance(120)  # past the failed read's pause: it is asked (and fails) again
    assert _query(creds) == user

    said = [r for r in caplog.records if r.name == LOGGER]
    assert len(said) == 1  # logged once, not per connection
    assert "serving the value read before" in said[0].getMessage()
    assert password not in said[0].getMessage()


def test_with_nothing_known_an_unreachable_secrets_manager_is_still_an_error(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    switch = _Switch()
    switch.unreachable()
    creds = RotatingCredentials(arn, source=SecretsManagerSource(switch), clock=FakeClock())
    with pytest.raises(SecretsManagerError, match="reading AWSCURRENT"):
        creds.connect()


class _Gate:
    """A source whose reads wait at a gate while ``closed`` (a read that hangs)."""

    def __init__(self, source: SecretsManagerSource) -> None:
        self.source = source
        self.closed = False
        self.entered = threading.Event()
        self.opened = threading.Event()

    def get(self, secret_id: str, stage: str, *, force: bool = False) -> str | None:
        if self.closed:
            self.entered.set()
            self.opened.wait()
        return self.source.get(secret_id, stage, force=force)


def test_waiting_on_another_threads_read_is_bounded_by_the_callers_time(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    clock = FakeClock()
    gate = _Gate(SecretsManagerSource(new_client(), max_age_s=300, clock=clock))
    retry = ConnectRetry(jitter=0.0, sleep=clock.sleep)
    creds = RotatingCredentials(arn, source=gate, clock=clock, retry=retry)
    assert _query(creds) == user

    clock.advance(300)
    gate.closed = True
    hung = threading.Thread(target=creds.versions.read, args=("AWSCURRENT",), daemon=True)
    hung.start()
    assert gate.entered.wait(30)  # that thread holds AWSCURRENT's lock, in its read
    try:
        got: list[str] = []
        waiter = threading.Thread(target=lambda: got.append(_query(creds, timeout_s=0.2)))
        waiter.start()
        waiter.join(30)
        assert not waiter.is_alive(), "connect() waited on another thread's read unbounded"
        assert got == [user]  # served the credential it knew
    finally:
        gate.opened.set()
        hung.join(30)
