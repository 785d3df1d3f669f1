"""The application's own AWS credentials are fetched within the budget too: botocore
fetches them from the ECS container endpoint when it builds the client and refreshes
them while signing a request, each time without a timeout of ours. A container
credentials endpoint that accepts and never answers must not hold a connect() past its
budget, and keying the process-wide registry must not fetch them at all.

A local endpoint plays the container credentials endpoint (botocore allows a loopback
address in ``AWS_CONTAINER_CREDENTIALS_FULL_URI``); time is measured against a generous
bound computed from the budget, and the endpoint's requests are counted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest

from rotation_client import RotatingCredentials, SecretsManagerSource, connect, credentials
from rotation_contract.errors import SecretsManagerUnavailableError
from tests.fix_sm_endpoint import Answer, ContainerCredentials, FakeSecretsManager

pytestmark = pytest.mark.functional

BUDGET_S = 2.0


def bound_for(budget_s: float) -> float:
    """The budget, plus a quarter of it (at least a second) for a loaded machine (botocore
    alone would take 3 attempts of 2 s, with pauses, per fetch)."""
    return budget_s + max(1.0, budget_s / 4)


@pytest.fixture
def container_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_sm: FakeSecretsManager
) -> None:
    """No credentials but the container endpoint's; Secrets Manager at the fake."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", fake_sm.url)
    fake_sm.answers["AWSCURRENT"] = Answer(value=json.dumps({"host": "h", "username": "u"}))


def _timed_error(call: object) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()  # type: ignore[operator]
    except Exception as exc:  # returned for the test to assert on
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_a_hung_container_endpoint_at_client_build_is_within_the_budget(
    container_env: None, monkeypatch: pytest.MonkeyPatch, fake_sm: FakeSecretsManager
) -> None:
    endpoint = ContainerCredentials(answers=0)  # never answers
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url)
    try:
        elapsed, error = _timed_error(lambda: connect("test/creds-build", timeout_s=BUDGET_S))
        assert isinstance(error, SecretsManagerUnavailableError), error
        assert "AWS credentials" in str(error), error
        assert elapsed <= bound_for(BUDGET_S), elapsed
        assert fake_sm.requests == 0  # nothing could be signed
    finally:
        endpoint.close()


def test_a_hung_container_endpoint_at_refresh_is_within_the_budget(
    container_env: None, monkeypatch: pytest.MonkeyPatch, fake_sm: FakeSecretsManager
) -> None:
    """The first fetch works, with credentials that expire within botocore's mandatory
    refresh window; the refresh before the next signature hangs."""
    endpoint = ContainerCredentials(answers=1, expires_in_s=300)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url)
    try:
        source = SecretsManagerSource(max_age_s=0)
        creds = RotatingCredentials("test/creds-refresh", source=source)
        elapsed, error = _timed_error(lambda: creds.connect(timeout_s=BUDGET_S))
        assert isinstance(error, SecretsManagerUnavailableError), error
        assert "AWS credentials" in str(error), error
        assert elapsed <= bound_for(BUDGET_S), elapsed
        assert endpoint.requests == 2  # the fetch at build, the refresh held
        assert fake_sm.requests == 0
    finally:
        endpoint.close()


def test_keying_the_registry_fetches_no_credentials(
    container_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """credentials(client=...) names the store by the access key known already: no
    refresh (which would wait on the hung endpoint outside any budget)."""
    endpoint = ContainerCredentials(answers=1, expires_in_s=300)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url)
    try:
        session = boto3.session.Session()  # its own: the default session caches credentials
        client = session.client("secretsmanager")
        assert endpoint.requests == 1  # fetched at build; due for refresh from now on
        first = credentials("test/creds-key", client=client)
        again = credentials("test/creds-key", client=session.client("secretsmanager"))
        assert again is first  # the same store: the same access key, endpoint, region
        assert endpoint.requests == 1  # no refresh
    finally:
        endpoint.close()
