"""`rotation invoke`'s event loading: --secret-id and --token fit the event's shape."""

import json
from pathlib import Path

import pytest

from rotation_tools.local_invoke import load_event
from rotation_tools.sam_template import TemplateError

ROOT = Path(__file__).resolve().parents[2]


def test_secret_id_replaces_a_step_events_secret() -> None:
    event = load_event(ROOT / "events" / "createSecret.json", secret_id="app", token="t-1")
    assert event["SecretId"] == "app"
    assert event["ClientRequestToken"] == "t-1"


def test_secret_id_names_the_secret_a_verification_event_checks() -> None:
    event = load_event(ROOT / "events" / "verify.json", secret_id="app", token=None)
    assert event["SecretIds"] == ["app"]
    assert "SecretId" not in event  # would make it an event of neither shape


def test_a_token_on_a_verification_event_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "verify.json"
    path.write_text(json.dumps({"Action": "VerifyCredentials", "SecretIds": ["a"]}))
    with pytest.raises(TemplateError, match="has no token"):
        load_event(path, secret_id=None, token="t-1")
