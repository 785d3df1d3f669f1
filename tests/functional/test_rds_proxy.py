"""RDS Proxy recognised by `rotation doctor` and `rotation plan`: multi-user's alternating
users cannot log in through a proxy (one user per secret), single-user can."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.test_cli import rotation

pytestmark = pytest.mark.functional

PROXY = "orders.proxy-c9akciq32abc.us-east-1.rds.amazonaws.com"


MASTER = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf"


def _secret(sm: Any, host: str, **extra: str) -> str:
    value = {"engine": "postgres", "host": host, "username": "app", "password": "pw-1-x", **extra}
    name = f"proxy/{host.split('.', maxsplit=1)[0]}-{len(host)}-{id(value)}"
    return str(sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])


def _checks(arn: str, strategy: str) -> tuple[int, dict[str, Any]]:
    result = rotation("doctor", arn, "--strategy", strategy, "--json", timeout=60)
    document = json.loads(result.stdout)
    checks = {check["name"]: check for check in document["checks"]}
    return result.returncode, checks


def test_multi_user_behind_a_proxy_is_refused_with_the_fix(sm: Any) -> None:
    # With a masterarn: without one, --strategy multi-user is refused before any check.
    code, checks = _checks(_secret(sm, PROXY, masterarn=MASTER), "multi-user")
    assert code == 1
    proxy = checks["RDS Proxy"]
    assert proxy["ok"] is False
    assert "'orders'" in proxy["detail"]
    assert "no credentials for the role" in proxy["detail"]
    assert "--strategy single-user" in proxy["hint"]
    assert "IAM authentication" in proxy["hint"]


def test_single_user_behind_a_proxy_is_told_what_works(sm: Any) -> None:
    _, checks = _checks(_secret(sm, PROXY), "single-user")
    proxy = checks["RDS Proxy"]
    assert proxy["ok"] is True
    assert "single-user works through it" in proxy["detail"]
    assert "AWS Certificate Manager" in proxy["detail"]


def test_no_proxy_no_check(sm: Any) -> None:
    _, checks = _checks(_secret(sm, "db.c9akciq32abc.us-east-1.rds.amazonaws.com"), "single-user")
    assert "RDS Proxy" not in checks
