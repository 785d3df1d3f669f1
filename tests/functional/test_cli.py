"""The ``rotation`` command, run as a user runs it: a subprocess against the test bed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rotation import AWSCURRENT, AWSPENDING, Step
from testbed.pgcluster import PostgresCluster, free_port, running_cluster
from tests.fix_multi import MultiBed
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def rotation(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rotation_tools", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
        check=False,
    )


def _no_secret_in(result: subprocess.CompletedProcess[str], *passwords: str) -> None:
    for password in passwords:
        assert password not in result.stdout
        assert password not in result.stderr


def test_demo_runs_and_proves_its_claims() -> None:
    result = rotation("demo")
    assert result.returncode == 0, result.stderr
    assert "every claim held" in result.stdout
    banner = result.stdout.splitlines()[0]
    assert "a Secrets Manager emulator and a throwaway PostgreSQL server" in banner
    assert "embedded default" not in banner
    assert "the client saw zero failures: yes" in result.stdout
    assert "Cleaned up" in result.stdout
    assert "Traceback" not in result.stderr


def test_demo_json_is_one_document() -> None:
    result = rotation("demo", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert [r["strategy"] for r in document["rotations"]] == ["single-user"] + ["multi-user"] * 2


def test_rotate_rotates_through_the_handler_code(bed: Bed) -> None:
    arn, user, password = bed.user_secret()
    result = rotation("rotate", arn, "--strategy", "single-user", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "finishSecret" in result.stdout
    current = bed.value(arn)
    assert bed.logs_in(current)
    assert not bed.logs_in({"username": user, "password": password})
    _no_secret_in(result, password, current["password"])


def test_rotate_works_without_rotation_configured(bed: Bed) -> None:
    """`rotation rotate` needs no rotation function: it registers the token itself."""
    arn, _, _ = bed.user_secret()
    assert "RotationEnabled" not in bed.sm.describe_secret(SecretId=arn)
    result = rotation("rotate", arn, "--strategy", "single-user", "--json")
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)["token"]
    assert AWSCURRENT in bed.labels(arn)[token]


def test_rotate_resumes_an_interrupted_rotation(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET])  # then the "Lambda" died
    # Its rotation function is still attached: finishing it from here needs --force.
    refused = rotation("rotate", arn, "--strategy", "single-user")
    assert refused.returncode == 1
    assert f"version {token} is AWSPENDING" in refused.stderr
    assert "Pass --force to finish it from here" in refused.stderr
    result = rotation("rotate", arn, "--strategy", "single-user", "--json", "--force")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["resumed"] is True
    assert document["token"] == token
    assert AWSCURRENT in bed.labels(arn)[token]
    assert bed.logs_in(bed.value(arn))


def test_rotate_refuses_a_secret_rotated_by_a_function_unless_forced(bed: Bed) -> None:
    arn, _, password = bed.user_secret()
    bed.driver(bed.rotator()).rotate(arn)  # Secrets Manager rotates it with a function
    labels = bed.labels(arn)
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    result = rotation("rotate", arn, "--strategy", "single-user", "--endpoint-url", endpoint)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "rotation enabled with function" in result.stderr
    assert f"aws secretsmanager rotate-secret --secret-id {arn} --endpoint-url {endpoint}" in (
        result.stderr
    )
    assert "--force" in result.stderr
    assert bed.labels(arn) == labels  # nothing touched
    document = json.loads(rotation("rotate", arn, "--strategy", "single-user", "--json").stdout)
    assert document["ok"] is False
    assert document["refused"] is True
    forced = rotation("rotate", arn, "--strategy", "single-user", "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    token = json.loads(forced.stdout)["token"]
    assert AWSCURRENT in bed.labels(arn)[token]
    assert bed.logs_in(bed.value(arn))
    _no_secret_in(forced, password, bed.value(arn)["password"])


def test_rotate_multi_user(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    result = rotation("rotate", arn, "--strategy", "multi-user")
    assert result.returncode == 0, result.stderr
    assert multi.value(arn)["username"] == f"{user}_clone"


def test_a_failed_rotate_is_one_line_and_exit_1(bed: Bed) -> None:
    user, _ = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, "wrong-password-123"))
    result = rotation("rotate", arn, "--strategy", "single-user")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert "setSecret" in result.stderr
    _no_secret_in(result, "wrong-password-123")


def test_status_of_a_healthy_secret(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    bed.driver(bed.rotator()).rotate(arn)
    result = rotation("status", arn)
    assert result.returncode == 0, result.stderr
    assert "No rotation is in progress" in result.stdout
    assert "AWSCURRENT" in result.stdout
    assert "AWSPREVIOUS" in result.stdout


def test_status_explains_a_stuck_rotation(bed: Bed) -> None:
    arn, user, password = bed.user_secret()
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, "changed-behind-our-back")
    with pytest.raises(Exception, match="setSecret"):
        driver.run(arn, token, [Step.SET])
    result = rotation("status", arn)
    assert result.returncode == 1
    assert "stuck" in result.stdout
    assert token in result.stdout
    assert "rotation rotate" in result.stdout
    assert "--force" in result.stdout  # the function is attached: `rotate` needs it
    assert "--remove-from-version-id" in result.stdout
    _no_secret_in(result, password, bed.value(arn, AWSPENDING)["password"])
    document = json.loads(rotation("status", arn, "--json").stdout)
    assert document["stuck"] is True
    assert any(v["version_id"] == token and v["has_value"] for v in document["versions"])


def test_status_of_a_rotation_that_never_wrote_a_value(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)
    result = rotation("status", arn)
    assert result.returncode == 1
    assert "before createSecret finished" in result.stdout
    assert token in result.stdout


def test_doctor_passes_a_good_secret(bed: Bed) -> None:
    arn, _, password = bed.user_secret()
    result = rotation("doctor", arn, "--strategy", "single-user")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All checks passed." in result.stdout
    assert "certificate verified (verify-full)" in result.stdout
    _no_secret_in(result, password)


def test_doctor_reports_a_wrong_password(bed: Bed) -> None:
    user, _ = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, "not-it-at-all-123"))
    result = rotation("doctor", arn, "--strategy", "single-user", "--json")
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["TLS"]["ok"] is True
    assert checks["login as AWSCURRENT"]["ok"] is False
    assert "password authentication failed" in checks["login as AWSCURRENT"]["detail"]
    assert checks["login as AWSCURRENT"]["hint"]


def test_doctor_advice_follows_the_cause_of_a_failed_login(bed: Bed) -> None:
    """A dbname typo is not a password problem: the advice must not say it is."""
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, dbname="no_such_db"))
    result = rotation("doctor", arn, "--strategy", "single-user", "--json")
    assert result.returncode == 1
    login = {c["name"]: c for c in json.loads(result.stdout)["checks"]}["login as AWSCURRENT"]
    assert login["ok"] is False
    assert "Fix 'dbname' in the secret" in login["detail"]
    assert "reset" not in login["hint"]
    assert "not a password problem" in login["hint"]
    _no_secret_in(result, password)


def test_doctor_reports_a_closed_port(bed: Bed) -> None:
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, port=free_port()))
    result = rotation("doctor", arn, "--strategy", "single-user")
    assert result.returncode == 1
    assert "FAIL TCP" in result.stdout
    assert "fix:" in result.stdout


@pytest.fixture(scope="module")
def plain_cluster() -> Iterator[PostgresCluster]:
    with running_cluster(tls=False) as cluster:
        yield cluster


def test_doctor_reports_a_server_without_tls(bed: Bed, plain_cluster: PostgresCluster) -> None:
    value = plain_cluster.secret_value("postgres", plain_cluster.superuser_password)
    value.pop("ssl")
    arn = bed.secret(value)
    result = rotation("doctor", arn, "--strategy", "single-user")
    assert result.returncode == 1
    assert "FAIL TLS: the server does not offer TLS" in result.stdout
    assert "login as AWSCURRENT" not in result.stdout  # skipped after TLS failed


def test_doctor_checks_the_master_for_multi_user(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    result = rotation("doctor", arn, "--strategy", "multi-user")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "master may create roles" in result.stdout
    assert "clone name fits" in result.stdout
    if multi.pg.server_version() >= 16:
        assert "master has ADMIN on" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert rotation("rotate").returncode == 2
    assert rotation("rotate", "x", "--strategy", "triple-user").returncode == 2
    assert rotation("frobnicate").returncode == 2


def test_an_unknown_secret_is_one_line(bed: Bed) -> None:
    result = rotation("status", "no/such/secret")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "ResourceNotFoundException" in result.stderr


def test_demo_cleans_up_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rotation_tools", "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert process.stdout is not None
    port = None
    for line in process.stdout:
        if "PostgreSQL cluster at 127.0.0.1:" in line:
            port = int(line.split("127.0.0.1:")[1].split()[0])
            break
    assert port is not None
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err
    with socket.socket() as sock:  # the cluster was stopped
        assert sock.connect_ex(("127.0.0.1", port)) != 0
