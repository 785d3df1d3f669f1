"""What a newcomer reads when something is wrong (issue 26): one parser and one message for a
secret that is not the contract's JSON, in every command; a failed direct rotation described
as what it is, and listed by ``status --all``; fixes that follow the cause and carry the
flags given (``--endpoint-url``, the ``--strategy`` given or inferred)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from rotation import AWSPENDING
from rotation_tools.remedies import REQUIRED_KEYS
from testbed.pgcluster import running_cluster
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

# What every command says to do about a value that is not the contract's JSON.
FORMAT_FIX = "a JSON object with the keys engine, host, username, password"


def rotation(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rotation_tools", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env=env if env is not None else dict(os.environ),
    )  # fmt: skip


def _raw_secret(bed: Bed, secret_string: str) -> str:
    name = f"test/raw-{os.urandom(4).hex()}"
    return str(bed.sm.create_secret(Name=name, SecretString=secret_string)["ARN"])


@pytest.mark.parametrize(
    ("secret_string", "problem"),
    [
        ("not json at all", "the AWSCURRENT version is not valid JSON (error at position 0)"),
        ('["a", "list"]', "the AWSCURRENT version must be a JSON object, got list"),
    ],
    ids=["not-json", "not-an-object"],
)
def test_plan_doctor_and_verify_say_the_same_of_a_value_that_is_not_an_object(
    bed: Bed, secret_string: str, problem: str
) -> None:
    arn = _raw_secret(bed, secret_string)
    plan = rotation("plan", arn, "--strategy", "single-user")
    assert plan.returncode == 1
    assert plan.stderr.startswith(f"rotation: error: {problem}: fix the secret's value")
    assert FORMAT_FIX in plan.stderr
    assert "has no 'engine' field" not in plan.stderr
    doctor = rotation("doctor", arn, "--strategy", "single-user")
    assert doctor.returncode == 1
    assert f"FAIL secret format: {problem}" in doctor.stdout
    assert FORMAT_FIX in doctor.stdout
    verify = rotation("verify", arn, "--strategy", "single-user", "--json")
    assert verify.returncode == 1
    [document] = json.loads(verify.stdout)
    assert document["state"] == "misconfigured"
    assert problem in document["problem"]
    assert FORMAT_FIX in document["fix"]


def test_doctor_lists_the_required_keys_for_a_missing_field(bed: Bed) -> None:
    user, password = bed.make_user()
    value = bed.pg.secret_value(user, password)
    del value["host"]
    result = rotation("doctor", bed.secret(value), "--strategy", "single-user")
    assert result.returncode == 1
    assert "FAIL secret format: the secret has no 'host' field" in result.stdout
    assert f"fix: fix the secret's value as the message says: {FORMAT_FIX}" in result.stdout
    assert all(key in result.stdout for key in REQUIRED_KEYS)
    assert "README" not in result.stdout


def _failed_direct_rotation(bed: Bed) -> tuple[str, str]:
    """A direct `rotation rotate` that failed in setSecret (the stored password no longer
    logs in); returns the ARN and the pending version."""
    arn, user, _ = bed.user_secret()
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, "changed-by-hand-" + os.urandom(8).hex())
    failed = rotation("rotate", arn, "--strategy", "single-user")
    assert failed.returncode == 1
    assert "setSecret" in failed.stderr
    [pending] = [v for v, stages in bed.labels(arn).items() if stages == [AWSPENDING]]
    return arn, pending


def test_status_of_a_failed_direct_rotation_says_what_holds(bed: Bed) -> None:
    """No function, rotation not enabled: nothing re-attempts it, and no function's log
    exists; running it again resumes it, with the strategy the pending version shows and
    the endpoint given."""
    arn, pending = _failed_direct_rotation(bed)
    url = bed.sm.meta.endpoint_url
    result = rotation("status", arn, "--endpoint-url", url)
    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert f"version {pending} is AWSPENDING with a value" in out
    assert "No rotation function is attached, so nothing re-attempts it" in out
    assert "Running the rotation again resumes it with the same token" in out
    assert "Secrets Manager re-attempts" not in out
    assert "function's logs" not in out
    assert f"$ rotation rotate {arn} --endpoint-url {url} --strategy single-user   #" in (
        result.stdout
    )
    assert "<single-user|multi-user>" not in result.stdout
    assert f"--secret-id {arn} --endpoint-url {url} --version-stage AWSPENDING" in result.stdout


def test_status_all_lists_a_direct_rotation_in_progress(bed: Bed) -> None:
    arn, pending = _failed_direct_rotation(bed)
    name = bed.sm.describe_secret(SecretId=arn)["Name"]
    result = rotation("status", "--all", "--filter", name, "--json")
    [row] = json.loads(result.stdout)
    assert row["state"] == "rotating"
    assert row["function"] is None
    assert row["pending_version"] == pending
    assert "no rotation function" in row["detail"]
    text = rotation("status", "--all", "--filter", name)
    [line] = [line for line in text.stdout.splitlines() if line.strip().startswith(name)]
    assert line.split()[1:4] == ["rotating", "unknown", "-"]
    assert "1 secrets with rotation configured or in progress: 1 rotating" in text.stdout


def test_status_all_with_no_rows_prints_no_table(bed: Bed) -> None:
    result = rotation("status", "--all", "--filter", f"nobody-{os.urandom(4).hex()}/")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No secret has rotation configured or a rotation in progress here.\n"


def _drifted(bed: Bed) -> str:
    arn, user, _ = bed.user_secret()
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, "changed-by-hand-" + os.urandom(8).hex())
    return arn


def test_verify_drift_fix_carries_the_strategy_and_the_endpoint(bed: Bed) -> None:
    arn = _drifted(bed)
    url = bed.sm.meta.endpoint_url
    result = rotation("verify", arn, "--strategy", "single-user", "--endpoint-url", url)
    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert f"`rotation verify {arn} --endpoint-url {url} --strategy single-user --reconcile`" in out
    assert f"`rotation rotate {arn} --endpoint-url {url} --strategy single-user`" in out
    assert "STRATEGY" not in out
    assert "SECRET" not in out


@pytest.fixture(scope="module")
def plain_port() -> Iterator[int]:
    """The port of a PostgreSQL server without TLS."""
    with running_cluster(tls=False) as cluster:
        yield cluster.port


@pytest.mark.parametrize(
    ("change", "fix"),
    [
        ({"dbname": "no_such_database"}, "create or fix what the message names (the role"),
        ({"ssl": "require"}, "make TLS work as the message says"),
    ],
    ids=["missing-database", "tls"],
)
def test_verify_misconfigured_fix_follows_the_cause(
    bed: Bed, request: pytest.FixtureRequest, change: dict[str, Any], fix: str
) -> None:
    user, password = bed.make_user()
    value = {**bed.pg.secret_value(user, password), **change}
    if "ssl" in change:  # asked of a server without TLS
        value["port"] = request.getfixturevalue("plain_port")
    result = rotation("verify", bed.secret(value), "--strategy", "single-user", "--json")
    [document] = json.loads(result.stdout)
    assert document["state"] == "misconfigured", document
    assert fix in document["fix"]
    assert document["fix"] != "not a password problem: fix what the message names"


def test_verify_of_a_missing_secret_is_the_one_liner_every_command_prints(bed: Bed) -> None:
    url = bed.sm.meta.endpoint_url
    result = rotation("verify", "no/such/secret", "--strategy", "multi-user", "--endpoint-url", url)
    assert result.returncode == 1
    status = rotation("status", "no/such/secret", "--endpoint-url", url)
    one_liner = status.stderr.removeprefix("rotation: error: ").strip()
    problem, _, fix = one_liner.partition(": check")
    assert problem == f"Secrets Manager at {url} has no secret no/such/secret " + (
        "(ResourceNotFoundException, region us-east-1)"
    )
    assert f"FAIL no/such/secret: misconfigured: {problem}" in result.stdout
    assert f"fix: check{fix}" in result.stdout
    assert "An error occurred" not in result.stdout


def test_a_missing_region_names_both_variables(bed: Bed) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")
    }
    env["AWS_CONFIG_FILE"] = os.devnull
    result = rotation("status", "app/db", env=env)
    assert result.returncode == 1
    assert "no AWS region is configured" in result.stderr
    assert "AWS_REGION or AWS_DEFAULT_REGION" in result.stderr
