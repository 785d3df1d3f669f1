"""Bad input gets a clear error naming secret, step and problem, and changes nothing."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import (
    AWSCURRENT,
    AWSPENDING,
    ConfigurationError,
    EventError,
    LocalContext,
    RetryPolicy,
    Rotator,
    SecretFormatError,
    SecretsManagerError,
    SecretStore,
    StagingError,
    Step,
)
from rotation_contract.pg.errors import UnreachableError
from testbed.pgcluster import free_port
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


class Snapshot:
    """Labels and values of a secret, and the database's role passwords, to compare."""

    def __init__(self, bed: Bed, arn: str) -> None:
        self.labels = bed.labels(arn)
        self.values = bed.values_by_label(arn)


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ("not an object", "JSON object"),
        ({}, "'SecretId'"),
        ({"SecretId": "s", "Step": "createSecret"}, "'ClientRequestToken'"),
        ({"SecretId": "s", "ClientRequestToken": "t"}, "'Step'"),
        ({"SecretId": "s", "ClientRequestToken": "t", "Step": "rotateAll"}, "unknown step"),
        ({"SecretId": 7, "ClientRequestToken": "t", "Step": "createSecret"}, "'SecretId'"),
        ({"SecretId": "s", "ClientRequestToken": "", "Step": "createSecret"}, "Token'"),
        (
            {"SecretId": "s", "ClientRequestToken": "t", "Step": "setSecret", "RotationToken": 1},
            "'RotationToken'",
        ),
    ],
    ids=[
        "not-object", "empty", "no-token", "no-step", "unknown-step", "secretid-type",
        "empty-token", "rotationtoken-type",
    ],
)  # fmt: skip
def test_malformed_events_are_refused_before_any_call(bed: Bed, event: Any, fragment: str) -> None:
    rotator = bed.rotator()
    with pytest.raises(EventError, match=fragment):
        rotator.handle(event)
    assert bed.calls.names == []


def test_an_unknown_step_error_names_the_secret_and_token(bed: Bed) -> None:
    event = {"SecretId": "my/secret", "ClientRequestToken": "tok-1", "Step": "dance"}
    with pytest.raises(EventError) as caught:
        bed.rotator().handle(event)
    message = str(caught.value)
    assert "my/secret" in message
    assert "tok-1" in message
    assert "dance" in message


def test_a_token_that_is_not_a_version_is_refused(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    bed.driver(bed.rotator()).begin(arn)
    before = Snapshot(bed, arn)
    with pytest.raises(StagingError, match="not a version"):
        bed.rotator().handle(bed.event(arn, "createSecret", "no-such-token"))
    assert Snapshot(bed, arn).__dict__ == before.__dict__


def test_a_token_in_the_wrong_stage_is_refused(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    driver = bed.driver(bed.rotator())
    first = driver.rotate(arn).token
    driver.rotate(arn)  # first is AWSPREVIOUS now
    before = Snapshot(bed, arn)
    for step in Step:
        with pytest.raises(StagingError, match="AWSPREVIOUS") as caught:
            bed.rotator().handle(bed.event(arn, step.value, first))
        assert step.value in str(caught.value)
        assert arn in str(caught.value)
    assert Snapshot(bed, arn).__dict__ == before.__dict__


def test_rotation_disabled_is_refused(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    version = next(iter(bed.labels(arn)))
    with pytest.raises(StagingError, match="not enabled"):
        bed.rotator().handle(bed.event(arn, "createSecret", version))


def test_a_secret_that_does_not_exist_is_a_clear_error(bed: Bed) -> None:
    with pytest.raises(SecretsManagerError, match="ResourceNotFoundException") as caught:
        bed.rotator().handle(bed.event("no/such/secret", "createSecret", "t"))
    assert "no/such/secret" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("this is not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"engine": "mysql"}, "engine 'mysql' is not supported"),
        ({"engine": None}, "'engine'"),
        ({"host": None}, "'host'"),
        ({"username": None}, "'username'"),
        ({"password": None}, "'password'"),
        ({"port": "fivefourthreetwo"}, "'port'"),
        ({"port": 70000}, "'port'"),
        ({"ssl": "maybe"}, "'ssl'"),
        ({"dbname": 5}, "'dbname'"),
    ],
    ids=[
        "not-json", "not-object", "unknown-engine", "no-engine", "no-host", "no-username",
        "no-password", "port-not-number", "port-range", "ssl-unknown", "dbname-type",
    ],
)  # fmt: skip
def test_bad_secrets_are_refused_and_nothing_changes(bed: Bed, value: Any, fragment: str) -> None:
    user, password = bed.make_user()
    good = bed.pg.secret_value(user, password)
    if isinstance(value, dict):
        secret = {**good, **value}
        secret = {k: v for k, v in secret.items() if v is not None}
        raw = json.dumps(secret)
    else:
        raw = value
    arn = str(bed.sm.create_secret(Name=f"bad/{user}", SecretString=raw)["ARN"])
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    before = Snapshot(bed, arn) if isinstance(value, dict) else bed.labels(arn)
    rotator = bed.rotator()
    with pytest.raises(SecretFormatError, match=fragment) as caught:
        rotator.handle(bed.event(arn, Step.CREATE.value, token))
    message = str(caught.value)
    assert arn in message
    assert "createSecret" in message
    assert password not in message
    after = Snapshot(bed, arn) if isinstance(value, dict) else bed.labels(arn)
    assert (after.__dict__ if isinstance(after, Snapshot) else after) == (
        before.__dict__ if isinstance(before, Snapshot) else before
    )
    assert bed.connections.total == 0
    assert bed.logs_in({"username": user, "password": password})


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PASSWORD_LENGTH": "0"}, "PASSWORD_LENGTH"),
        ({"PASSWORD_LENGTH": "long"}, "PASSWORD_LENGTH"),
        (
            {
                "EXCLUDE_NUMBERS": "true", "EXCLUDE_PUNCTUATION": "yes",
                "EXCLUDE_UPPERCASE": "1", "EXCLUDE_LOWERCASE": "Y",
            },
            "excludes every character",
        ),
        ({"EXCLUDE_NUMBERS": "perhaps"}, "EXCLUDE_NUMBERS"),
    ],
    ids=["length-zero", "length-word", "everything-excluded", "bad-bool"],
)  # fmt: skip
def test_an_invalid_password_policy_is_a_configuration_error(
    bed: Bed, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], fragment: str
) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError, match=fragment):
        bed.rotator().handle(bed.event(arn, "createSecret", token))
    assert bed.calls.names.count("PutSecretValue") == 0
    assert bed.labels(arn)[token] == [AWSPENDING]


def test_the_password_policy_is_honoured(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    arn, _, _ = bed.user_secret()
    monkeypatch.setenv("PASSWORD_LENGTH", "48")
    monkeypatch.setenv("EXCLUDE_PUNCTUATION", "true")
    bed.driver(bed.rotator()).rotate(arn)
    password = bed.value(arn)["password"]
    assert len(password) == 48
    assert password.isalnum()


def test_a_pending_version_without_a_value_fails_setsecret_clearly(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)
    with pytest.raises(StagingError, match="createSecret must run first"):
        bed.rotator().handle(bed.event(arn, "setSecret", token))


class _FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_an_unreachable_database_fails_inside_the_deadline_with_labels_untouched(
    bed: Bed,
) -> None:
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, port=free_port()))
    _, token = bed.begin_and_create(arn)
    before = Snapshot(bed, arn)
    clock = _FakeClock()
    policy = RetryPolicy(attempts=10, initial_wait_s=0.5, jitter_s=0.0, sleep=clock.sleep)
    strategy = PostgresSingleUser(bed.connector(retry_policy=policy))
    rotator = Rotator(strategy, SecretStore(bed.handler_client), clock=clock)
    # A 6 s Lambda: the step has 4 s once the 2 s safety margin is kept back.
    with pytest.raises(UnreachableError, match="could not reach") as caught:
        rotator.handle(bed.event(arn, "setSecret", token), LocalContext(timeout_s=6.0))
    # The contract: the step fails with its own message before Lambda would kill it. A wait
    # is made only if one more attempt (1 s) fits after it: 0.5 s and 1 s do; at 1.5 s the
    # next 2 s would not. A refused TCP connection is transient, so it retried, not forever.
    assert clock.waits == [0.5, 1.0]
    assert bed.connections.total == 3
    assert clock.now < 4.0
    assert "setSecret" in str(caught.value)
    assert Snapshot(bed, arn).__dict__ == before.__dict__
    assert bed.labels(arn)[token] == [AWSPENDING]


def test_a_wrong_password_is_not_retried(bed: Bed) -> None:
    user, _ = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, "not-the-password"))
    strategy = PostgresSingleUser(PostgresConnector(connect=bed.connections))
    rotator = bed.rotator(strategy)
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    with pytest.raises(Exception, match="no labelled credential logs in"):
        rotator.handle(bed.event(arn, "setSecret", token))
    # One attempt each for AWSCURRENT and AWSPENDING (no AWSPREVIOUS yet): no retries.
    assert bed.connections.total == 2
    assert bed.labels(arn)[token] == [AWSPENDING]
    assert AWSCURRENT in next(s for v, s in bed.labels(arn).items() if v != token)


def test_a_server_that_never_answers_fails_inside_the_deadline(bed: Bed) -> None:
    """TCP connects (the kernel completes the handshake) but nothing ever answers: each
    attempt's connect_timeout shrinks to the time left, so the step still fails on its own."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        user, password = bed.make_user()
        port = silent.getsockname()[1]
        arn = bed.secret(bed.pg.secret_value(user, password, port=port, ssl=False))
        rotator, token = bed.begin_and_create(arn)
        context = LocalContext(timeout_s=6.0)
        with pytest.raises(UnreachableError, match="timeout") as caught:
            rotator.handle(bed.event(arn, "setSecret", token), context)
        assert context.get_remaining_time_in_millis() > 0  # Lambda would not have killed it
        assert "setSecret" in str(caught.value)
        assert bed.labels(arn)[token] == [AWSPENDING]
    finally:
        silent.close()
