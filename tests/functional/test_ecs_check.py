"""ECS task definitions: misplaced colons and missing JSON keys are reported, not injected
as empty strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rotation_tools.ecs_task_def import SecretReference, check_task_definition, parse_value_from
from tests.fix_rotation import Bed
from tests.functional.test_cli import rotation

pytestmark = pytest.mark.functional

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf"


@pytest.mark.parametrize(
    ("value_from", "expected"),
    [
        (ARN, SecretReference(ARN)),
        (f"{ARN}:password::", SecretReference(ARN, "password")),
        (f"{ARN}::AWSPREVIOUS:", SecretReference(ARN, None, "AWSPREVIOUS")),
        (f"{ARN}:username::abc-123", SecretReference(ARN, "username", None, "abc-123")),
        ("arn:aws:ssm:us-east-1:123456789012:parameter/x", None),
        ("my-parameter", None),
    ],
)
def test_value_from_forms(value_from: str, expected: SecretReference | None) -> None:
    assert parse_value_from(value_from) == expected


@pytest.mark.parametrize(
    "value_from",
    [f"{ARN}:password", f"{ARN}:password:", f"{ARN}:password:::", f"{ARN}::AWSCURRENT:v1"],
    ids=["one-colon", "two-colons", "four-colons", "stage-and-version"],
)
def test_misplaced_colons_are_errors(value_from: str) -> None:
    with pytest.raises(ValueError, match=r"colons|one of them"):
        parse_value_from(value_from)


def _task(arn: str) -> dict[str, object]:
    return {
        "family": "app",
        "containerDefinitions": [
            {
                "name": "web",
                "secrets": [
                    {"name": "DB_PASSWORD", "valueFrom": f"{arn}:password::"},
                    {"name": "DB_USER", "valueFrom": f"{arn}:user::"},
                    {"name": "DB_HOST", "valueFrom": f"{arn}:host"},
                    {"name": "WHOLE", "valueFrom": arn},
                    {"name": "FLAG", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/flag"},
                ],
            }
        ],
    }


def test_a_task_definition_is_checked_against_the_secret(bed: Bed) -> None:
    arn, _, password = bed.user_secret()
    findings = {f.name: f for f in check_task_definition(_task(arn), bed.sm)}
    assert findings["DB_PASSWORD"].ok is True
    assert findings["WHOLE"].ok is True
    assert findings["DB_USER"].ok is False
    assert "no key 'user'" in findings["DB_USER"].message
    assert "username" in findings["DB_USER"].message  # says which keys exist
    assert findings["DB_HOST"].ok is False
    assert "colons" in findings["DB_HOST"].message
    assert findings["FLAG"].ok is None
    assert all(password not in f.message for f in findings.values())


def test_check_task_def_command(bed: Bed, tmp_path: Path) -> None:
    arn, _, password = bed.user_secret()
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"taskDefinition": _task(arn)}))
    result = rotation("check-task-def", str(path))
    assert result.returncode == 1
    assert "FAIL web/DB_USER" in result.stdout
    assert "ok   web/DB_PASSWORD" in result.stdout
    assert password not in result.stdout
    good = tmp_path / "good.json"
    secrets = [{"name": "P", "valueFrom": f"{arn}:password::"}]
    good.write_text(json.dumps({"containerDefinitions": [{"name": "web", "secrets": secrets}]}))
    assert rotation("check-task-def", str(good)).returncode == 0
