"""The verification event through the real Lambda entrypoints, configured only through the
environment: moto's Secrets Manager and a real PostgreSQL server."""

from __future__ import annotations

import importlib
import io
import json
import secrets
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from rotation import EventError, LocalContext, LocalRotation, Step
from rotation.observability import METRICS_NAMESPACE
from tests.fix_multi import MultiBed
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _entry(name: str, monkeypatch: pytest.MonkeyPatch, endpoint: str) -> ModuleType:
    module = importlib.import_module(f"handlers.postgres_{name}")
    module.entrypoint.reset()
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", endpoint)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    return module


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_single_user_function_verifies_and_publishes_credential_valid(
    bed: Bed,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    json_log: io.StringIO,
) -> None:
    module = _entry("single_user", monkeypatch, bed.sm.meta.endpoint_url)
    good, _, good_password = bed.user_secret()
    bad, bad_user, bad_password = bed.user_secret()
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, bad_user, secrets.token_urlsafe(18))
    event = {"Action": "VerifyCredentials", "SecretIds": [good, bad]}
    summary = module.lambda_handler(event, LocalContext())
    assert summary["valid"] is False
    assert summary["counts"] == {
        "valid": 1,
        "drift": 1,
        "unreachable": 0,
        "misconfigured": 0,
        "rotating": 0,
        "not-checked": 0,
    }
    assert [(r["secret"], r["state"]) for r in summary["results"]] == [
        (good, "valid"),
        (bad, "drift"),
    ]
    emf = _emf(capsys.readouterr().out)
    names = {arn: bed.sm.describe_secret(SecretId=arn)["Name"] for arn in (good, bad)}
    per_secret = {d["Secret"]: d["CredentialValid"] for d in emf if "Secret" in d}
    assert per_secret == {names[good]: [1.0], names[bad]: [0.0]}
    overall = [d["CredentialValid"] for d in emf if "Secret" not in d]
    assert overall == [[1.0], [0.0]]
    for document in emf:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == METRICS_NAMESPACE
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    checks = [line for line in lines if line["message"].startswith("credential check")]
    assert [(c["secret_arn"], c["credential_state"]) for c in checks] == [
        (good, "valid"),
        (bad, "drift"),
    ]
    everything = json_log.getvalue() + json.dumps(summary) + json.dumps(emf)
    for password in (good_password, bad_password):
        assert password not in everything
    module.entrypoint.reset()


def test_multi_user_function_checks_the_pair(
    multi: MultiBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _entry("multi_user", monkeypatch, multi.sm.meta.endpoint_url)
    arn, user, _ = multi.app()
    assert LocalRotation(multi.sm, module.lambda_handler).rotate(arn).succeeded
    event = json.loads((EVENTS / "verify.json").read_text())
    event["SecretIds"] = [arn]
    summary = module.lambda_handler(event, LocalContext())
    assert summary["results"][0]["state"] == "valid"
    with admin_connect(multi.pg) as conn:  # AWSPREVIOUS, which clients may still hold
        set_role_password(conn, user, secrets.token_urlsafe(18))
    summary = module.lambda_handler(event, LocalContext())
    assert summary["results"][0]["state"] == "drift"
    assert summary["results"][0]["problem"].startswith(f"AWSPREVIOUS ({user})")
    module.entrypoint.reset()


@pytest.mark.parametrize(
    "event",
    [
        {"Action": "VerifyCredentials"},
        {"Action": "VerifyCredentials", "SecretIds": []},
        {"Action": "VerifyCredentials", "SecretIds": [""]},
        {"Action": "Rotate", "SecretIds": ["x"]},
        {"Action": "VerifyCredentials", "SecretIds": ["x"], "Step": "createSecret"},
        {"SecretIds": ["x"]},  # neither shape: still a rotation event's EventError
        {},
    ],
    ids=["no-ids", "empty-ids", "blank-id", "other-action", "mixed", "neither", "empty"],
)
def test_malformed_events_are_refused(
    bed: Bed, monkeypatch: pytest.MonkeyPatch, event: dict[str, Any]
) -> None:
    module = _entry("single_user", monkeypatch, bed.sm.meta.endpoint_url)
    with pytest.raises(EventError):
        module.lambda_handler(event, LocalContext())
    module.entrypoint.reset()


def _published(emf: list[dict[str, Any]]) -> list[str]:
    return sorted(
        name
        for document in emf
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
        for name in [metric["Name"]]
    )


def test_time_running_out_reports_the_rest_unchecked(
    bed: Bed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _entry("single_user", monkeypatch, bed.sm.meta.endpoint_url)
    arn, _, _ = bed.user_secret()
    # 2 s of margin leaves nothing of a 2.5 s invocation.
    summary = module.lambda_handler(
        {"Action": "VerifyCredentials", "SecretIds": [arn]}, LocalContext(timeout_s=2.5)
    )
    assert summary["results"][0]["state"] == "not-checked"
    assert summary["results"][0]["problem"].startswith("not checked")
    assert summary["valid"] is False
    # Not a drift: no CredentialValid (whose 0 fires the drift alarm), a count instead.
    emf = _emf(capsys.readouterr().out)
    assert _published(emf) == ["CredentialNotChecked", "CredentialNotChecked"]
    module.entrypoint.reset()


def test_a_rotation_in_progress_is_not_reported_as_drift(
    bed: Bed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past setSecret the database has the pending password and refuses AWSCURRENT's: the
    rotation's window, not a change behind its back."""
    module = _entry("single_user", monkeypatch, bed.sm.meta.endpoint_url)
    arn, _, _ = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    bed.driver(rotator).run(arn, token, [Step.SET])
    capsys.readouterr()
    summary = module.lambda_handler(
        {"Action": "VerifyCredentials", "SecretIds": [arn]}, LocalContext()
    )
    assert summary["results"][0]["state"] == "rotating"
    assert summary["valid"] is False
    assert summary["counts"]["drift"] == 0
    emf = _emf(capsys.readouterr().out)
    assert _published(emf) == ["CredentialNotChecked", "CredentialNotChecked"]
    module.entrypoint.reset()
