"""Stale if error, only for transient causes: a throttled or failing Secrets Manager gets the
value read before; a denied caller, a disabled KMS key and a deleted secret are raised at
once, typed, with the fix. And every AWS call says who made it (the user agent).

moto plays the deleted secret; the error codes moto cannot produce for a caller
(AccessDenied, DecryptionFailure, throttling) come from a local endpoint that answers
Secrets Manager's JSON errors (it fakes AWS; the values it serves log in to the real
server).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest

from rotation.clients import secrets_manager_client
from rotation_client import ConnectRetry, RotatingCredentials, SecretsManagerSource
from rotation_contract.aws_calls import (
    CLIENT_DISTRIBUTION,
    ROTATION_DISTRIBUTION,
    running_version,
    user_agent_extra,
)
from rotation_contract.errors import (
    SecretAccessError,
    SecretDeletedError,
    SecretsManagerUnavailableError,
)
from testbed.moto_server import FAKE_CREDENTIALS
from tests.fix_aws import new_client
from tests.fix_clock import FakeClock
from tests.fix_rotation import Bed
from tests.fix_sm_endpoint import Answer, FakeSecretsManager

pytestmark = pytest.mark.functional

LOGGER = "rotation_client._versions"


def _client_for(fake: FakeSecretsManager) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=fake.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # the fake's
    )


def _user(creds: RotatingCredentials) -> str:
    with creds.connect() as conn:
        row = conn.execute("SELECT current_user").fetchone()
    return str(row[0]) if row else ""


@pytest.fixture
def known(bed: Bed, fake_sm: FakeSecretsManager) -> tuple[RotatingCredentials, FakeClock, str]:
    """Credentials that have read and used AWSCURRENT once; their cache then expires."""
    user, password = bed.make_user()
    fake_sm.answers["AWSCURRENT"] = Answer(value=json.dumps(bed.pg.secret_value(user, password)))
    clock = FakeClock()
    source = SecretsManagerSource(_client_for(fake_sm), max_age_s=300, clock=clock)
    retry = ConnectRetry(timeout_s=5)
    creds = RotatingCredentials("test/errors", source=source, retry=retry)
    assert _user(creds) == user
    clock.advance(300)
    return creds, clock, user


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("InternalServiceError", 500), ("ServiceUnavailable", 503)],
)
def test_a_transient_failure_serves_the_value_read_before(
    known: tuple[RotatingCredentials, FakeClock, str],
    fake_sm: FakeSecretsManager,
    caplog: pytest.LogCaptureFixture,
    code: str,
    status: int,
) -> None:
    creds, _, user = known
    fake_sm.answers["AWSCURRENT"] = Answer(error=code, status=status)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert _user(creds) == user
    said = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(said) == 1
    assert code in said[0]
    assert "serving the value read before" in said[0]


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("AccessDeniedException", "secretsmanager:GetSecretValue"),
        ("DecryptionFailure", "kms:Decrypt"),
        ("KMSDisabledException", "enable the key"),
    ],
)
def test_a_denied_caller_or_an_unusable_key_is_raised_at_once(
    known: tuple[RotatingCredentials, FakeClock, str],
    fake_sm: FakeSecretsManager,
    code: str,
    fix: str,
) -> None:
    """A value is known, and still not served: an old password would hide a fact only a
    person can fix (and the application would fail later, at the next rotation)."""
    creds, _, _ = known
    fake_sm.answers["AWSCURRENT"] = Answer(error=code, status=400)
    asked = fake_sm.requests
    with pytest.raises(SecretAccessError, match=fix) as raised:
        creds.connect()
    assert code in str(raised.value)
    assert fake_sm.requests == asked + 1  # one read: not retried
    with pytest.raises(SecretAccessError):
        creds.connect()  # remembered for a moment, with its type


def test_a_secret_scheduled_for_deletion_is_raised_at_once(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    clock = FakeClock()
    source = SecretsManagerSource(new_client(), max_age_s=300, clock=clock)
    creds = RotatingCredentials(arn, source=source)
    assert _user(creds) == user
    bed.sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    clock.advance(300)
    with pytest.raises(SecretDeletedError, match="restore-secret"):
        creds.connect()


def test_a_deleted_secret_is_raised_at_once(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    clock = FakeClock()
    source = SecretsManagerSource(new_client(), max_age_s=300, clock=clock)
    creds = RotatingCredentials(arn, source=source)
    assert _user(creds) == user
    bed.sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    clock.advance(300)
    with pytest.raises(SecretDeletedError, match="no such secret"):
        creds.connect()


def test_with_nothing_known_a_transient_failure_is_raised_typed(
    fake_sm: FakeSecretsManager,
) -> None:
    fake_sm.answers["AWSCURRENT"] = Answer(error="ThrottlingException", status=400)
    source = SecretsManagerSource(_client_for(fake_sm))
    creds = RotatingCredentials("test/throttled", source=source, retry=ConnectRetry(timeout_s=5))
    with pytest.raises(SecretsManagerUnavailableError, match="ThrottlingException"):
        creds.connect()


# -- who made the call -----------------------------------------------------------------


def test_the_clients_own_calls_name_its_distribution(
    fake_sm: FakeSecretsManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", fake_sm.url)
    fake_sm.answers["AWSCURRENT"] = Answer(value="{}")
    SecretsManagerSource().get("test/agent", "AWSCURRENT", timeout_s=5)
    tag = user_agent_extra(CLIENT_DISTRIBUTION)
    assert tag.startswith(f"{CLIENT_DISTRIBUTION}/")
    assert fake_sm.user_agents
    assert all(tag in agent.split() for agent in fake_sm.user_agents), fake_sm.user_agents


def test_the_rotation_functions_calls_name_its_distribution(
    fake_sm: FakeSecretsManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    fake_sm.answers["AWSCURRENT"] = Answer(value="{}")
    secrets_manager_client(fake_sm.url).get_secret_value(SecretId="test/agent")
    tag = user_agent_extra(ROTATION_DISTRIBUTION)
    assert tag.startswith(f"{ROTATION_DISTRIBUTION}/")
    assert all(tag in agent.split() for agent in fake_sm.user_agents), fake_sm.user_agents


def test_the_clients_calls_carry_the_client_distributions_version(
    fake_sm: FakeSecretsManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's calls carry its own distribution's installed version, never
    ``unknown`` (each side is its own distribution, installed here editable)."""
    from importlib.metadata import version

    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", fake_sm.url)
    fake_sm.answers["AWSCURRENT"] = Answer(value="{}")
    SecretsManagerSource().get("test/agent", "AWSCURRENT", timeout_s=5)
    agents = [agent.split() for agent in fake_sm.user_agents]
    assert agents
    expected = f"{CLIENT_DISTRIBUTION}/{version(CLIENT_DISTRIBUTION)}"
    assert all(expected in agent for agent in agents), agents
    assert running_version(CLIENT_DISTRIBUTION) == version(CLIENT_DISTRIBUTION)


def test_the_running_version_of_a_distribution_not_installed_is_unknown() -> None:
    assert running_version("pg-secrets-rotation-not-a-distribution") == "unknown"
