"""finishSecret checks what it promotes: a manual or out-of-order invoke never makes a
value-less version, or a value for another target, AWSCURRENT."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotation import AWSCURRENT, AWSPENDING, SecretFormatError, StagingError
from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def _finish_refused(bed: Any, arn: str, token: str, error: type[Exception]) -> str:
    before = bed.labels(arn)
    with pytest.raises(error) as caught:
        bed.rotator().handle(bed.event(arn, "finishSecret", token))
    assert bed.labels(arn) == before
    assert bed.logs_in(bed.value(arn, AWSCURRENT))
    return str(caught.value)


def _plant_pending(bed: Any, arn: str, token: str, secret_string: str) -> None:
    bed.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=secret_string,
        VersionStages=[AWSPENDING],
    )  # fmt: skip


def test_a_pending_version_without_a_value_is_not_promoted(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)  # registered, no value: as Secrets Manager
    message = _finish_refused(bed, arn, token, StagingError)
    assert "has no value" in message
    assert "finishSecret" in message


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"host": "db.elsewhere.example"}, "host"),
        ({"port": 6543}, "port"),
        ({"dbname": "other"}, "dbname"),
        ({"username": "someone_else"}, "username"),
        ({"engine": "mysql"}, "engine"),
    ],
    ids=["host", "port", "dbname", "username", "engine"],
)
def test_a_pending_value_for_another_target_is_not_promoted(
    bed: Bed, change: dict[str, Any], fragment: str
) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)
    _plant_pending(bed, arn, token, json.dumps({**bed.value(arn), **change}))
    assert fragment in _finish_refused(bed, arn, token, SecretFormatError)


def test_a_pending_value_that_is_not_a_json_object_is_not_promoted(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)
    _plant_pending(bed, arn, token, '["not", "an", "object"]')
    assert "JSON object" in _finish_refused(bed, arn, token, SecretFormatError)


def test_multi_user_refuses_a_pending_value_for_the_wrong_user(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    token = multi.driver(multi.rotator()).begin(arn)
    # The current user itself (not its alternate): finishing would point applications at
    # a password the database never got.
    _plant_pending(multi, arn, token, json.dumps({**multi.value(arn), "password": "x-1234"}))
    assert "alternate" in _finish_refused(multi, arn, token, SecretFormatError)


def test_a_pending_value_with_weaker_tls_is_not_promoted(bed: Bed) -> None:
    """Promoted, ``"ssl": false`` would become the floor for every later login."""
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)
    _plant_pending(bed, arn, token, json.dumps({**bed.value(arn), "ssl": False}))
    assert "weaker than AWSCURRENT's verify-full" in _finish_refused(
        bed, arn, token, SecretFormatError
    )
