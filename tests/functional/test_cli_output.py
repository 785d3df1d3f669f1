"""What the command prints: --json is one JSON document on stdout whatever other flags say
(logs go to stderr); help, defaults, version and exit codes; no doubled or blank output."""

from __future__ import annotations

import json

import pytest

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
