"""Single-user rotation against a real PostgreSQL server and moto's Secrets Manager server."""

from __future__ import annotations

import json

import pytest

from handlers.single_user import PostgresSingleUser
from rotation import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    Outcome,
    RotationError,
    RotationFailed,
    Step,
)
from rotation_contract.pg.errors import DatabaseError
from tests.fix_postgres import ServerLog, admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def test_full_rotation_changes_the_password_and_moves_the_labels(bed: Bed) -> None:
    arn, user, old_password = bed.user_secret(extra_key="kept", port=str(bed.pg.port))
    before = bed.labels(arn)

    run = bed.driver(bed.rotator()).rotate(arn)

    assert run.succeeded
    labels = bed.labels(arn)
    current = bed.value(arn)
    assert labels[run.token] == [AWSCURRENT]
    (old_version,) = before
    assert labels[old_version] == [AWSPREVIOUS]
    assert current["password"] != old_password
    assert bed.logs_in(current)
    assert not bed.logs_in({"username": user, "password": old_password})
    # Unknown keys and the port's original spelling survive the rotation.
    assert current["extra_key"] == "kept"
    assert current["port"] == str(bed.pg.port)
    assert bed.value(arn, AWSPREVIOUS)["password"] == old_password


def test_a_happy_rotation_makes_at_most_ten_api_calls_and_two_connections(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    bed.driver(bed.rotator()).rotate(arn)

    # One warm container runs all four steps: createSecret reads/writes, setSecret and
    # testSecret find the versions in the cache, finishSecret only moves the label.
    assert bed.calls.names == [
        "DescribeSecret", "GetSecretValue", "GetSecretValue", "PutSecretValue",
        "DescribeSecret",
        "DescribeSecret",
        "DescribeSecret", "UpdateSecretVersionStage",
    ]  # fmt: skip
    assert len(bed.calls) <= 10
    assert bed.connections.by_user == {user: 2}


def test_the_server_sees_exactly_two_connections_for_a_rotation(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    log = ServerLog(bed.pg)
    bed.driver(bed.rotator()).rotate(arn)
    assert log.connections() == 2


def test_a_cold_container_per_step_still_works(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    for step in Step:
        # A new rotator per step: nothing cached, as if each step ran in a new container.
        bed.driver(bed.rotator()).run(arn, token, [step])
    driver.complete(arn, token)
    assert bed.logs_in(bed.value(arn))
    assert bed.labels(arn)[token] == [AWSCURRENT]


@pytest.mark.parametrize("step", list(Step), ids=lambda s: s.value)
def test_every_step_can_run_twice(bed: Bed, step: Step) -> None:
    arn, _, _ = bed.user_secret()
    rotator = bed.rotator()
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    steps = list(Step)
    for each in steps[: steps.index(step) + 1]:
        driver.run(arn, token, [each])
    pending_before = bed.values_by_label(arn)
    # The same step again, in a new container (nothing cached), then the rest.
    bed.driver(bed.rotator()).run(arn, token, [step])
    if step is not Step.FINISH:
        assert bed.values_by_label(arn) == pending_before
    driver.run(arn, token, steps[steps.index(step) + 1 :])
    driver.complete(arn, token)
    current = bed.value(arn)
    assert bed.logs_in(current)
    assert bed.labels(arn)[token] == [AWSCURRENT]
    assert bed.labelled_logins(arn) == [AWSCURRENT]


def test_a_token_that_is_already_current_changes_nothing(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    rotator = bed.rotator()
    run = bed.driver(rotator).rotate(arn)
    labels = bed.labels(arn)
    bed.calls.reset()
    bed.connections.reset()
    for step in Step:
        assert rotator.handle(bed.event(arn, step.value, run.token)) == Outcome.ALREADY_CURRENT
    assert bed.labels(arn) == labels
    assert bed.calls.names == ["DescribeSecret"] * 4
    assert bed.connections.total == 0


def test_rotating_three_times_keeps_previous_one_behind(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    rotator = bed.rotator()
    passwords = []
    for _ in range(3):
        bed.driver(rotator).rotate(arn)
        passwords.append(bed.value(arn)["password"])
    assert len(set(passwords)) == 3
    assert bed.value(arn, AWSPREVIOUS)["password"] == passwords[1]
    assert bed.labelled_logins(arn) == [AWSCURRENT]
    labels = [s for stages in bed.labels(arn).values() for s in stages]
    assert sorted(labels) == [AWSCURRENT, AWSPREVIOUS]


@pytest.mark.parametrize(
    "username",
    ['we"ird', "semi;colon", "with space", "ünïcødé_名前", "drop table x; --"],
    ids=["double-quote", "semicolon", "space", "non-ascii", "injection"],
)
def test_hostile_usernames_rotate(bed: Bed, username: str) -> None:
    arn, user, _ = bed.user_secret(username=username)
    assert user == username
    bed.driver(bed.rotator()).rotate(arn)
    assert bed.logs_in(bed.value(arn))


def test_setsecret_after_the_password_was_already_changed_keeps_it(bed: Bed) -> None:
    """A crash after ALTER ROLE but before setSecret returned: AWSCURRENT no longer logs in."""
    arn, user, _ = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    driver = bed.driver(rotator)
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, bed.value(arn, AWSPENDING)["password"])
    bed.connections.reset()
    assert rotator.handle(bed.event(arn, "setSecret", token)) == Outcome.KEPT
    # Tried AWSCURRENT (refused), then AWSPENDING (logs in): nothing else.
    assert bed.connections.by_user == {user: 2}
    driver.run(arn, token, [Step.TEST, Step.FINISH])
    assert bed.logs_in(bed.value(arn))


def test_setsecret_falls_back_to_awsprevious(bed: Bed) -> None:
    arn, user, first_password = bed.user_secret()
    rotator = bed.rotator()
    bed.driver(rotator).rotate(arn)
    # Someone restored the old password in the database (e.g. a snapshot restore).
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, first_password)
    run = bed.driver(rotator).rotate(arn)
    assert run.succeeded
    assert bed.logs_in(bed.value(arn))


def test_no_credential_logs_in_is_a_clear_error_naming_the_labels(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, "somebody-else-changed-it")
    labels = bed.labels(arn)
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    message = str(caught.value)
    assert arn in message
    assert "setSecret" in message
    assert "AWSCURRENT" in message
    assert "AWSPENDING" in message
    assert "masterarn" in message
    assert bed.labels(arn) == labels


def test_masterarn_repairs_a_user_no_label_logs_in_with(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only for a role MASTER_MANAGED_ROLES lists (unset, recovery fails: see
    tests/functional/test_hostile_writer.py)."""
    master_arn = bed.secret(bed.pg.secret_value("postgres", bed.pg.superuser_password))
    arn, user, _ = bed.user_secret(masterarn=master_arn)
    monkeypatch.setenv("MASTER_MANAGED_ROLES", f"other_app, {user[:5]}*")
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, "lost-password-1234")
    run = bed.driver(bed.rotator()).rotate(arn)
    assert run.succeeded
    assert bed.logs_in(bed.value(arn))


def test_a_pending_version_planted_with_another_host_is_refused(bed: Bed) -> None:
    arn, user, password = bed.user_secret()
    rotator = bed.rotator()
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    planted = {**bed.value(arn), "host": "attacker.example.com", "password": "planted-pw-123"}
    bed.sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps(planted),
        VersionStages=[AWSPENDING],
    )
    bed.connections.reset()
    with pytest.raises(RotationError, match="host") as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    assert "attacker.example.com" in str(caught.value)
    assert bed.connections.total == 0
    assert bed.logs_in({"username": user, "password": password})


def test_the_probe_query_is_configurable(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    arn, _, _ = bed.user_secret()
    monkeypatch.setenv("ROTATION_TEST_QUERY", "SELECT no_such_column FROM pg_class")
    rotator = bed.rotator(PostgresSingleUser(bed.connector()))
    with pytest.raises(RotationFailed, match="testSecret") as caught:
        bed.driver(rotator).rotate(arn)
    assert isinstance(caught.value.__cause__, DatabaseError)
    assert "no_such_column" in str(caught.value.__cause__)
    # The database already has the pending password; AWSCURRENT has not moved.
    assert bed.labelled_logins(arn) == [AWSPENDING]


def test_the_rotation_token_is_passed_to_putsecretvalue(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    rotator = bed.rotator()
    token = bed.driver(rotator).begin(arn)
    sent: list[dict[str, object]] = []
    bed.handler_client.meta.events.register(
        "before-parameter-build.secrets-manager.PutSecretValue",
        lambda params, **_: sent.append(dict(params)),
    )
    event = {
        **bed.event(arn, "createSecret", token),
        "RotationToken": "5f0c1a9e-7d1b-4c4e-9a55-1b2c3d4e5f60",
    }
    rotator.handle(event)
    assert len(sent) == 1
    assert sent[0]["RotationToken"] == "5f0c1a9e-7d1b-4c4e-9a55-1b2c3d4e5f60"
    assert sent[0]["ClientRequestToken"] == token
    assert sent[0]["VersionStages"] == [AWSPENDING]


def test_a_role_whose_sessions_default_to_read_only_still_rotates(bed: Bed) -> None:
    """default_transaction_read_only is a default, not a lock (PostgreSQL: "not a security
    measure"): on the primary the user's own transaction asks for READ WRITE, and the
    rotation succeeds. Only a standby refuses (ReadOnlyHostError, test_replicas.py)."""
    arn, user, old_password = bed.user_secret()
    with admin_connect(bed.pg) as admin:
        admin.execute(f'ALTER ROLE "{user}" SET default_transaction_read_only = on')
    run = bed.driver(bed.rotator()).rotate(arn)
    assert run.succeeded
    current = bed.value(arn)
    assert current["password"] != old_password
    assert bed.logs_in(current)
    assert not bed.logs_in({"username": user, "password": old_password})
