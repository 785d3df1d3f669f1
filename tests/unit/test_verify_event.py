"""The verification event's shape, apart from Secrets Manager's rotation events."""

from __future__ import annotations

from typing import Any

import pytest

from rotation import EventError
from rotation.event import parse_event
from rotation.verify_event import MAX_SECRETS, is_verify_event, parse_verify_event


def test_the_documented_shape() -> None:
    event = {
        "Action": "VerifyCredentials",
        "SecretIds": ["a", "arn:aws:secretsmanager:r:1:secret:b"],
    }
    assert is_verify_event(event)
    assert parse_verify_event(event).secret_ids == ("a", "arn:aws:secretsmanager:r:1:secret:b")


def test_rotation_events_are_not_verification_events() -> None:
    rotation = {"Step": "createSecret", "SecretId": "s", "ClientRequestToken": "t"}
    assert not is_verify_event(rotation)
    assert parse_event(rotation).secret_id == "s"
    # Neither shape: not a verification event, and the rotation parser refuses it.
    assert not is_verify_event({"SecretIds": ["s"]})
    with pytest.raises(EventError, match="SecretId"):
        parse_event({"SecretIds": ["s"]})


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"Action": "VerifyCredentials", "SecretIds": ["s"], "Step": "setSecret"}, "both"),
        ({"Action": "VerifyCredentials", "SecretIds": ["s"], "ClientRequestToken": "t"}, "both"),
        ({"Action": "verifycredentials", "SecretIds": ["s"]}, "unknown Action"),
        ({"Action": "VerifyCredentials", "SecretIds": "s"}, "non-empty list"),
        ({"Action": "VerifyCredentials", "SecretIds": [1]}, "got int"),
        ({"Action": "VerifyCredentials", "SecretIds": [" "]}, "empty"),
        ({"Action": "VerifyCredentials", "SecretIds": ["s"] * (MAX_SECRETS + 1)}, "split"),
    ],
    ids=[
        "with-step",
        "with-token",
        "action-case",
        "ids-not-list",
        "id-not-str",
        "blank",
        "too-many",
    ],
)
def test_malformed(event: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_verify_event(event)
