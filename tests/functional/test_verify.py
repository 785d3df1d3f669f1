"""``rotation verify``: the stored credentials against a real PostgreSQL server, with the
password changed behind rotation's back, a stopped server and broken configurations."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers.pg_config import ManagedRoles
from handlers.pg_connect import PostgresConnector
from rotation import LocalRotation, Step
from rotation.retry import RetryPolicy
from rotation_tools.verify import verify_secrets
from testbed.pgcluster import running_cluster
from tests.fix_multi import MultiBed
from tests.fix_postgres import ServerLog, admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

FAST = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.02, jitter_s=0.0)


def _verify(
    bed: Any, *ids: str, strategy: str, reconcile: bool = False, managed: str | None = None
) -> list[Any]:
    connector = PostgresConnector(connect=bed.connections, retry_policy=FAST)
    return verify_secrets(
        bed.handler_client,
        list(ids),
        strategy=strategy,
        reconcile=reconcile,
        connector=connector,
        managed_roles=ManagedRoles.parse(managed) if managed is not None else None,
    )


def _change_behind_rotation(bed: Any, role: str) -> None:
    with admin_connect(bed.pg) as conn:  # the superuser, as an operator would
        set_role_password(conn, role, secrets.token_urlsafe(18))


def test_single_user_drift_is_found_and_reconciled(multi: MultiBed) -> None:
    arn, user, password = multi.app()  # has a masterarn
    (result,) = _verify(multi, arn, strategy="single-user")
    assert result.state.value == "valid"
    assert [(r.label, r.username) for r in result.logins] == [("AWSCURRENT", user)]

    _change_behind_rotation(multi, user)
    (result,) = _verify(multi, arn, strategy="single-user")
    assert result.state.value == "drift"
    assert result.problem.startswith(f"AWSCURRENT ({user}):")
    assert "--reconcile" in result.fix
    assert password not in json.dumps(result.as_json())

    log = ServerLog(multi.pg)
    (result,) = _verify(multi, arn, strategy="single-user", reconcile=True, managed=user)
    assert result.state.value == "valid"
    assert result.actions == (f"set the password of {user!r} back to AWSCURRENT's, as the master",)
    # The password reached the server only as a SCRAM verifier.
    assert password not in log.since()
    assert "PASSWORD 'SCRAM-SHA-256$" in log.since()
    assert multi.logs_in(multi.value(arn))
    (again,) = _verify(multi, arn, strategy="single-user")
    assert again.state.value == "valid"
    assert again.actions == ()


def test_multi_user_checks_previous_and_resets_the_pair(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    assert LocalRotation(multi.sm, multi.rotator().handle).rotate(arn).succeeded
    clone = f"{user}_clone"
    (result,) = _verify(multi, arn, strategy="multi-user")
    assert result.state.value == "valid"
    assert [(r.label, r.username) for r in result.logins] == [
        ("AWSCURRENT", clone),
        ("AWSPREVIOUS", user),
    ]
    # AWSPREVIOUS, which clients may still hold, changed behind rotation's back.
    _change_behind_rotation(multi, user)
    (result,) = _verify(multi, arn, strategy="multi-user")
    assert result.state.value == "drift"
    assert result.problem.startswith(f"AWSPREVIOUS ({user}):")

    (result,) = _verify(multi, arn, strategy="multi-user", reconcile=True, managed=f"{user}*")
    assert result.state.value == "valid", result
    assert result.actions == (
        f"reset the password of {user!r} with AWSPREVIOUS's password, as the master",
    )
    assert multi.labelled_logins(arn) == ["AWSCURRENT", "AWSPREVIOUS"]
    # The clone still acts as the owner.
    with psycopg.connect(**multi.pg.conninfo(clone, multi.value(arn)["password"])) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)


def test_multi_user_reconcile_reports_a_dropped_user_and_creates_nothing(
    multi: MultiBed,
) -> None:
    """Before #20, reconcile re-created a missing clone as a member of the owner: with a
    secret naming any role, whoever wrote it got a login acting as that role."""
    arn, user, _ = multi.app()
    assert LocalRotation(multi.sm, multi.rotator().handle).rotate(arn).succeeded
    clone = f"{user}_clone"
    with admin_connect(multi.pg) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(clone)))
    (result,) = _verify(multi, arn, strategy="multi-user")
    assert result.state.value == "drift"
    assert result.problem.startswith(f"AWSCURRENT ({clone}):")

    (result,) = _verify(multi, arn, strategy="multi-user", reconcile=True, managed=f"{user}*")
    assert result.state.value == "drift"
    (action,) = result.actions
    assert action.startswith(f"reconcile failed: role {clone!r} does not exist")
    assert "reported, not created" in action
    with admin_connect(multi.pg) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (clone,)).fetchone() is None
        )


def test_reconcile_without_a_master_says_so(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    _change_behind_rotation(bed, user)
    (result,) = _verify(bed, arn, strategy="single-user", reconcile=True)
    assert result.state.value == "drift"
    assert result.actions == (
        "not reconciled: the secret has no masterarn (add one, or reset the password to "
        "AWSCURRENT's by hand)",
    )


def test_stopped_server_is_unreachable(bed: Bed) -> None:
    with running_cluster(tls=False) as cluster:
        password = secrets.token_urlsafe(18)
        with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE ROLE app LOGIN")
            set_role_password(conn, "app", password)
        arn = bed.secret(cluster.secret_value("app", password))
        (result,) = _verify(bed, arn, strategy="single-user")
        assert result.state.value == "valid"
        cluster.stop_server()
        (result,) = _verify(bed, arn, strategy="single-user")
        assert result.state.value == "unreachable"
        assert "AWSCURRENT" in result.problem


@pytest.mark.parametrize(
    ("change", "role_option", "expected"),
    [
        ({"dbname": "no_such_db"}, None, "no_such_db"),
        ({}, "NOLOGIN", "LOGIN"),
    ],
    ids=["missing-database", "nologin-role"],
)
def test_misconfigured_names_the_fix(
    bed: Bed, change: dict[str, Any], role_option: str | None, expected: str
) -> None:
    user, password = bed.make_user()
    if role_option:
        with admin_connect(bed.pg) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} " + role_option).format(sql.Identifier(user)))
    arn = bed.secret({**bed.pg.secret_value(user, password), **change})
    (result,) = _verify(bed, arn, strategy="single-user")
    assert result.state.value == "misconfigured", result
    assert expected in result.problem


def test_unreadable_secrets_are_misconfigured(bed: Bed) -> None:
    not_json = bed.secret({"x": 1})
    bed.sm.put_secret_value(SecretId=not_json, SecretString="not json")
    results = _verify(bed, not_json, "no/such/secret", strategy="single-user")
    assert [r.state.value for r in results] == ["misconfigured", "misconfigured"]
    assert "not valid JSON" in results[0].problem
    assert results[1].secret == "no/such/secret"


def test_probe_failure_is_misconfigured(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROTATION_TEST_QUERY", "SELECT * FROM no_such_table")
    arn, _, _ = bed.user_secret()
    (result,) = _verify(bed, arn, strategy="single-user")
    assert result.state.value == "misconfigured"
    assert "the probe query as AWSCURRENT" in result.problem


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rotation_tools", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


def test_cli_json_and_exit_codes(bed: Bed) -> None:
    good, _, good_password = bed.user_secret()
    bad, bad_user, bad_password = bed.user_secret()
    _change_behind_rotation(bed, bad_user)
    result = _cli(good, bad, "--strategy", "single-user", "--json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert [(d["secret"], d["state"]) for d in document] == [(good, "valid"), (bad, "drift")]
    for password in (good_password, bad_password):
        assert password not in result.stdout + result.stderr
    result = _cli(good, "--strategy", "single-user")
    assert result.returncode == 0, result.stderr
    assert "1 of 1 secrets valid." in result.stdout


def test_single_user_rotation_in_progress_is_named_and_not_reconciled(bed: Bed) -> None:
    """Between setSecret and finishSecret the database has the pending password: AWSCURRENT
    is refused, but that is the rotation's window, not a change behind its back."""
    arn, _, _ = bed.user_secret(masterarn="arn:aws:secretsmanager:us-east-1:1:secret:m-AbCdEf")
    rotator, token = bed.begin_and_create(arn)
    bed.driver(rotator).run(arn, token, [Step.SET])
    (result,) = _verify(bed, arn, strategy="single-user", reconcile=True)
    # Its own state, not drift: no drift alarm for a rotation's window; still not valid.
    assert result.state.value == "rotating"
    assert not result.valid
    assert "let the rotation finish" in result.fix
    assert f"A rotation is in progress (version {token} is AWSPENDING)" in result.problem
    assert result.rotating == token
    assert result.actions[0].startswith("not reconciled: a rotation is in progress")
    # Nothing was changed: the rotation finishes and the secret verifies.
    bed.driver(rotator).run(arn, token, [Step.TEST, Step.FINISH])
    bed.driver(rotator).complete(arn, token)
    (result,) = _verify(bed, arn, strategy="single-user")
    assert result.state.value == "valid"
    assert result.rotating is None


def test_calls_and_connections_per_secret(bed: Bed, multi: MultiBed) -> None:
    arn, _, _ = bed.user_secret()
    bed.calls.reset()
    bed.connections.reset()
    _verify(bed, arn, strategy="single-user")
    assert sorted(bed.calls.names) == ["DescribeSecret", "GetSecretValue"]
    assert bed.connections.total == 1

    pair, _, _ = multi.app()
    assert LocalRotation(multi.sm, multi.rotator().handle).rotate(pair).succeeded
    multi.calls.reset()
    multi.connections.reset()
    _verify(multi, pair, strategy="multi-user")
    assert sorted(multi.calls.names) == ["DescribeSecret", "GetSecretValue", "GetSecretValue"]
    assert multi.connections.total == 2


def test_cli_reconcile_takes_the_managed_roles_option(multi: MultiBed) -> None:
    """The option reaches the guard; without it (and without the variable) nothing changes."""
    arn, user, _ = multi.app()
    _change_behind_rotation(multi, user)
    env_free = {k: v for k, v in os.environ.items() if k != "MASTER_MANAGED_ROLES"}
    refused = subprocess.run(
        [sys.executable, "-m", "rotation_tools", "verify", arn, "--strategy", "single-user",
         "--reconcile", "--json"],
        capture_output=True, text=True, timeout=120, env=env_free, check=False,
    )  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    (document,) = json.loads(refused.stdout)
    assert document["state"] == "drift"
    (action,) = document["actions"]
    assert "MASTER_MANAGED_ROLES is not set" in action
    result = _cli(arn, "--strategy", "single-user", "--reconcile", "--master-managed-roles", user)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"set the password of {user!r} back to AWSCURRENT's" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--master-managed-roles", "app"], "applies to --reconcile only"),
        (["--reconcile", "--master-managed-roles", "*"], "may not be '*' alone"),
    ],
    ids=["without-reconcile", "star-alone"],
)
def test_cli_managed_roles_misuse_is_a_usage_error(args: list[str], message: str) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:never-read-AbCdEf"
    result = _cli(arn, "--strategy", "single-user", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr


def _verifier(bed: Any, role: str) -> Any:
    with admin_connect(bed.pg) as conn:
        return conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()


def test_multi_user_reconcile_refuses_a_previous_outside_the_pair(multi: MultiBed) -> None:
    """A secret's writer moves AWSPREVIOUS to a version naming another application's role
    (listed in MASTER_MANAGED_ROLES by an operator for its own recovery): reconcile acts only
    on AWSCURRENT's pair, so the victim's password is not touched."""
    arn, user, _ = multi.app()
    _, victim, victim_password = multi.app()
    assert LocalRotation(multi.sm, multi.rotator().handle).rotate(arn).succeeded
    planted = {**multi.value(arn), "username": victim, "password": "chosen-by-the-writer"}
    multi.sm.put_secret_value(
        SecretId=arn, SecretString=json.dumps(planted), VersionStages=["AWSPREVIOUS"]
    )
    before = _verifier(multi, victim)

    (result,) = _verify(
        multi, arn, strategy="multi-user", reconcile=True, managed=f"{user}*,{victim}"
    )
    assert result.state.value == "drift"
    assert any("not in AWSCURRENT's pair" in action for action in result.actions), result
    assert "chosen-by-the-writer" not in json.dumps(result.as_json())
    assert _verifier(multi, victim) == before
    with psycopg.connect(**multi.pg.conninfo(victim, victim_password)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (victim,)
