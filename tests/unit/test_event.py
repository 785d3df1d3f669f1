from __future__ import annotations

import pytest

from rotation import EventError, RotationEvent, Step, parse_event


def test_a_full_event_parses() -> None:
    event = parse_event(
        {"Step": "setSecret", "SecretId": "arn:x", "ClientRequestToken": "t", "RotationToken": "r"}
    )
    assert event == RotationEvent(Step.SET, "arn:x", "t", "r")


def test_rotation_token_is_optional() -> None:
    event = parse_event({"Step": "finishSecret", "SecretId": "n", "ClientRequestToken": "t"})
    assert event.rotation_token is None


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (None, "JSON object"),
        ([], "JSON object"),
        ({"Step": "createSecret", "ClientRequestToken": "t"}, "no 'SecretId'"),
        ({"Step": "createSecret", "SecretId": "  ", "ClientRequestToken": "t"}, "'SecretId'"),
        ({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": 5}, "got int"),
        ({"Step": "CreateSecret", "SecretId": "s", "ClientRequestToken": "t"}, "unknown step"),
    ],
    ids=["none", "list", "no-secret", "blank-secret", "token-int", "step-case"],
)
def test_bad_events_name_the_problem(event: object, fragment: str) -> None:
    with pytest.raises(EventError, match=fragment):
        parse_event(event)


def test_an_error_carries_the_secret_when_it_is_known() -> None:
    with pytest.raises(EventError) as caught:
        parse_event({"SecretId": "my/secret", "Step": "setSecret"})
    assert caught.value.secret_id == "my/secret"
    assert str(caught.value).startswith("secret my/secret: ")
