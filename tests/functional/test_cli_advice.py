"""Advice follows the cause. A failed Secrets Manager call gets the fix for its own cause: a
secret that does not exist, a caller without permission, an endpoint that does not answer
(KMS: see tests/unit/test_aws_problems.py; moto cannot produce it). A database that accepts
and never answers is not called a TLS setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from testbed.pgcluster import free_port
from tests.fix_rotation import Bed
from tests.fix_silent import SilentServer
from tests.functional.test_cli import rotation

pytestmark = pytest.mark.functional

WRONG_ADVICE = ("GetSecretValue on it", "password does not match")


def _no_wrong_advice(text: str) -> None:
    for advice in WRONG_ADVICE:
        assert advice not in text


def test_a_missing_secret_says_so_in_every_command(bed: Bed) -> None:
    for args in (
        ("status", "no/such/secret"),
        ("rotate", "no/such/secret", "--strategy", "single-user"),
    ):
        result = rotation(*args)
        assert result.returncode == 1, args
        assert result.stderr.count("\n") == 1, result.stderr
        assert "has no secret no/such/secret" in result.stderr
        assert "ResourceNotFoundException" in result.stderr
        assert "check the secret's name or ARN" in result.stderr
        _no_wrong_advice(result.stderr)
    doctor = rotation("doctor", "no/such/secret", "--strategy", "single-user", "--json")
    assert doctor.returncode == 1
    (check,) = json.loads(doctor.stdout)["checks"]
    assert check["ok"] is False
    assert "has no secret no/such/secret" in check["detail"]
    assert "check the secret's name or ARN" in check["hint"]
    _no_wrong_advice(check["hint"])


def test_an_unreachable_endpoint_says_so_in_every_command(bed: Bed) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (
        ("status", "app/db"),
        ("rotate", "app/db", "--strategy", "single-user"),
        ("doctor", "app/db", "--strategy", "single-user"),
    ):
        result = rotation(*args, "--endpoint-url", endpoint)
        assert result.returncode == 1, args
        output = result.stdout + result.stderr
        assert f"Secrets Manager could not be reached at {endpoint}" in output
        assert "EndpointConnectionError" in output
        assert "check --endpoint-url" in output
        _no_wrong_advice(output)
        assert "Traceback" not in result.stderr


@dataclass(frozen=True)
class AuthMoto:
    """A moto server of its own that enforces IAM, and a user allowed only DescribeSecret."""

    url: str
    secret_arn: str
    user_env: dict[str, str]


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    give_up = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=5):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            assert process.poll() is None, "moto's server exited"
            assert time.monotonic() < give_up, "moto's server did not start"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def auth_moto() -> Iterator[AuthMoto]:
    # Its own process: enforcing IAM is a process-wide moto setting, and the session's
    # server runs inside the test process.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(url, process)
        admin: dict[str, Any] = {"endpoint_url": url, "region_name": "us-east-1"}
        admin |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        iam = boto3.client("iam", **admin)
        arn = boto3.client("secretsmanager", **admin).create_secret(
            Name="app/db", SecretString=json.dumps({"engine": "postgres"})
        )["ARN"]
        iam.create_user(UserName="reader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}
            ],
        }
        iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        request = urllib.request.Request(  # noqa: S310  # our own loopback server
            f"{url}/moto-api/reset-auth",
            data=b"0",  # enforce IAM from the next request on
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_ENDPOINT_URL": url,
        }
        yield AuthMoto(url, arn, env)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_access_denied_names_the_permission_the_caller_lacks(auth_moto: AuthMoto) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rotation_tools", "doctor", auth_moto.secret_arn,
         "--strategy", "single-user", "--json"],
        capture_output=True, text=True, env=auth_moto.user_env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (check,) = json.loads(result.stdout)["checks"]
    assert check["ok"] is False
    assert "not allowed to call GetSecretValue" in check["detail"]
    assert "need secretsmanager:GetSecretValue" in check["hint"]
    assert "name or ARN" not in check["hint"]
    assert "kms" not in check["hint"].lower()


def test_doctor_on_a_host_that_accepts_and_never_answers(bed: Bed, silent: SilentServer) -> None:
    host, port = silent.url.removeprefix("http://").split(":")
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, host=host, port=int(port)))
    result = rotation("doctor", arn, "--strategy", "single-user", "--json")
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["TCP"]["ok"] is True
    assert checks["TLS"]["ok"] is False
    assert "accepted the connection and did not answer" in checks["TLS"]["detail"]
    assert "PostgreSQL server's" in checks["TLS"]["hint"]
    assert "TLS settings" not in checks["TLS"]["hint"]
