"""One ``connect()`` returns or raises within its budget, Secrets Manager reads and every
retry included, against an endpoint that accepts connections and never answers.

The budget is ``ConnectRetry().timeout_s`` (the default) or the caller's ``timeout_s``.
Time is measured against a generous bound computed from the budget (a wall-clock bound is
the promise under test; the client's own tests of its logic run on a fake clock), and the
connections the hung endpoint accepted are counted (stable: one attempt, the retries cut).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from rotation_client import (
    ConnectRetry,
    ExtensionSource,
    RotatingCredentials,
    SecretsManagerSource,
    connect,
    connect_async,
)
from rotation_client._async import open_async
from rotation_contract.errors import SecretsManagerUnavailableError
from testbed.moto_server import FAKE_CREDENTIALS
from tests.fix_clock import FakeClock
from tests.fix_rotation import Bed
from tests.fix_sm_endpoint import Answer, FakeSecretsManager, HungEndpoint, TrickleEndpoint

pytestmark = pytest.mark.functional

DEFAULT_BUDGET_S = ConnectRetry().timeout_s


def bound_for(budget_s: float) -> float:
    """A generous upper bound on one connect() of this budget: the budget, plus a quarter
    of it (at least a second) for thread switches and a loaded machine. The old client
    took 45.6 s with a 2 s budget."""
    return budget_s + max(1.0, budget_s / 4)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def _timed(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except Exception as exc:  # returned for the test to assert on
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def _connect(name: str, budget: float | None, mode: str) -> Callable[[], Any]:
    kwargs: dict[str, Any] = {} if budget is None else {"timeout_s": budget}
    if mode == "async":
        return lambda: asyncio.run(connect_async(name, **kwargs))
    return lambda: connect(name, **kwargs)


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("budget", [None, 2.0], ids=["default-budget", "2s-budget"])
def test_connect_ends_within_its_budget_against_a_hung_endpoint(
    aws_env: None,
    hung_endpoint: HungEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    budget: float | None,
    mode: str,
) -> None:
    """The public connect() with the client it builds itself (SECRETS_MANAGER_ENDPOINT)."""
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", hung_endpoint.url)
    name = f"test/hung-{secrets.token_hex(4)}"

    elapsed, error = _timed(_connect(name, budget, mode))

    assert isinstance(error, SecretsManagerUnavailableError), error
    assert "did not answer" in str(error) or "timeout" in str(error).lower(), error
    assert elapsed <= bound_for(budget or DEFAULT_BUDGET_S), elapsed
    # One attempt: the retries that would not fit in the time left were not made.
    assert hung_endpoint.connections == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("budget", [None, 2.0], ids=["default-budget", "2s-budget"])
def test_connect_ends_within_its_budget_against_an_endpoint_that_trickles(
    aws_env: None,
    trickle_endpoint: TrickleEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    budget: float | None,
    mode: str,
) -> None:
    """An endpoint (or proxy) that answers a byte every 0.2 s: every socket read gets a
    byte within its timeout, so only a wall-clock deadline on the whole read ends it."""
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", trickle_endpoint.url)
    name = f"test/trickle-{secrets.token_hex(4)}"

    elapsed, error = _timed(_connect(name, budget, mode))

    assert isinstance(error, SecretsManagerUnavailableError), error
    assert "did not answer" in str(error), error
    assert elapsed <= bound_for(budget or DEFAULT_BUDGET_S), elapsed
    assert trickle_endpoint.connections == 1


def test_the_extension_read_ends_within_its_time_against_an_endpoint_that_trickles(
    trickle_endpoint: TrickleEndpoint,
) -> None:
    source = ExtensionSource(trickle_endpoint.url, "session-token")
    budget = 2.0

    elapsed, error = _timed(lambda: source.get("app/db", "AWSCURRENT", timeout_s=budget))

    assert isinstance(error, SecretsManagerUnavailableError), error
    assert "did not answer" in str(error), error
    assert elapsed <= bound_for(budget), elapsed
    assert trickle_endpoint.connections == 1


def test_a_caller_waiting_on_a_hung_read_in_another_thread_is_bounded_too(
    aws_env: None, hung_endpoint: HungEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", hung_endpoint.url)
    name = f"test/hung-{secrets.token_hex(4)}"
    budget = 2.0
    results: dict[str, tuple[float, BaseException | None]] = {}

    def run(who: str) -> None:
        results[who] = _timed(lambda: connect(name, timeout_s=budget))

    reader = threading.Thread(target=run, args=("reader",))
    reader.start()
    deadline = time.monotonic() + 30
    while hung_endpoint.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the reader's request is in flight (holding the label)
    waiter = threading.Thread(target=run, args=("waiter",))
    waiter.start()
    reader.join(30)
    waiter.join(30)

    for who in ("reader", "waiter"):
        elapsed, error = results[who]
        assert isinstance(error, SecretsManagerUnavailableError), (who, error)
        assert elapsed <= bound_for(budget), (who, elapsed)
    # The waiter did not ask a second time: it waited for the reader's answer (within its
    # own time), then got that answer's failure, or ran out of time waiting.
    assert hung_endpoint.connections == 1


def _client_for(fake: FakeSecretsManager) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=fake.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's and our fake's
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_known_value_is_served_in_time_when_the_read_at_cache_expiry_hangs(
    bed: Bed, fake_sm: FakeSecretsManager, mode: str
) -> None:
    """An injected boto3 client (its own retries, legacy mode) is bounded the same way; the
    read gets half the budget, so the login still fits."""
    user, password = bed.make_user()
    fake_sm.answers["AWSCURRENT"] = Answer(value=json.dumps(bed.pg.secret_value(user, password)))
    clock = FakeClock()
    source = SecretsManagerSource(_client_for(fake_sm), max_age_s=300, clock=clock)
    budget = 2.0
    creds = RotatingCredentials("test/hang", source=source, retry=ConnectRetry(timeout_s=budget))

    def login() -> str:
        if mode == "async":

            async def run() -> str:
                conn = await open_async(creds)
                async with conn:
                    row = await (await conn.execute("SELECT current_user")).fetchone()
                return str(row[0]) if row else ""

            return asyncio.run(run())
        with creds.connect() as conn:
            row = conn.execute("SELECT current_user").fetchone()
        return str(row[0]) if row else ""

    assert login() == user
    fake_sm.answers["AWSCURRENT"].hang = True
    clock.advance(300)  # the cache expires: the next connect() asks, and gets no answer

    got: list[str] = []
    elapsed, error = _timed(lambda: got.append(login()))

    assert error is None, error
    assert got == [user]
    assert elapsed <= bound_for(budget), elapsed
