"""What the command prints: --json is one JSON document on stdout whatever other flags say
(logs go to stderr); help, defaults, version and exit codes; no doubled or blank output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testbed.pgcluster import free_port
from tests.fix_rotation import Bed
from tests.functional.test_cli import rotation

pytestmark = pytest.mark.functional


def test_json_with_verbose_is_one_document_and_the_log_goes_to_stderr(bed: Bed) -> None:
    arn, _, password = bed.user_secret()
    result = rotation("rotate", arn, "--strategy", "single-user", "--json", "--verbose")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # nothing else on stdout
    assert document["ok"] is True
    log = [json.loads(line) for line in result.stderr.splitlines()]
    assert any(entry.get("message") == "rotation step finished" for entry in log)
    assert password not in result.stdout + result.stderr


def test_json_on_an_error_is_still_one_document(bed: Bed) -> None:
    result = rotation("status", "no/such/secret", "--json", "--region", "us-east-1")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert "has no secret no/such/secret" in document["error"]
    assert document["kind"] == "not-found"


def test_version() -> None:
    result = rotation("--version")
    assert result.returncode == 0
    version = (Path(__file__).resolve().parents[2] / "VERSION").read_text().strip()
    assert result.stdout.strip() == f"rotation {version}"


def test_step_lines_say_ok_or_failed_once(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    result = rotation("rotate", arn, "--strategy", "single-user")
    assert result.returncode == 0, result.stderr
    steps = [line.split() for line in result.stdout.splitlines() if " ms " in line]
    assert [s[0] for s in steps] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert all(s[-1] == "ok" for s in steps), steps  # not "ok (done)"
    user, _ = bed.make_user()
    broken = bed.secret(bed.pg.secret_value(user, "not-its-password-1"))
    failed = rotation("rotate", broken, "--strategy", "single-user")
    assert failed.returncode == 1
    assert "FAILED (failed)" not in failed.stdout
    assert any(
        line.split()[-1] == "FAILED" for line in failed.stdout.splitlines() if " ms " in line
    )


def test_status_has_no_mostly_blank_column(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)  # a pending version without a value
    result = rotation("status", arn)
    assert result.returncode == 1
    header = next(line for line in result.stdout.splitlines() if line.split()[:1] == ["version"])
    assert header.split() == ["version", "labels", "created"]
    row = next(line for line in result.stdout.splitlines() if line.lstrip().startswith(token))
    assert "AWSPENDING (no value yet)" in row
    current = next(line for line in result.stdout.splitlines() if "AWSCURRENT" in line)
    assert "value" not in current


def test_messages_name_choices_in_words_not_python_lists(bed: Bed) -> None:
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, engine="mysql"))
    result = rotation("doctor", arn, "--strategy", "single-user", "--json")
    assert result.returncode == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    detail = checks["secret format"]["detail"]
    assert "expected aurora-postgresql or postgres" in detail
    assert "[" not in detail


def test_libpq_sentences_are_not_run_together(bed: Bed) -> None:
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, port=free_port()))  # nothing listens
    result = rotation("rotate", arn, "--strategy", "single-user")
    assert result.returncode == 1
    assert "Connection refused. Is the server running" in result.stderr
    assert "Connection refused Is" not in result.stderr
