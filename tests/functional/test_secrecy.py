"""No password in anything the handler logs, prints or raises, nor in the server's log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from rotation import RotationError, Rotator, SecretStore, Step
from rotation.secret import SecretVersion
from rotation.strategy import CreateRequest, CreateResult, SetRequest, SetResult, TestRequest
from rotation_contract.pg.secret import parse_postgres_secret
from tests.fix_postgres import ServerLog, admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def _all_passwords(bed: Bed, arn: str, *extra: str) -> list[str]:
    found = [value["password"] for value in bed.values_by_label(arn).values()]
    return [*found, *extra]


def test_a_rotation_and_its_failures_leak_no_password(
    bed: Bed, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    log = ServerLog(bed.pg)
    arn, user, first = bed.user_secret()
    rotator = bed.rotator()
    errors: list[str] = []

    bed.driver(rotator).rotate(arn)  # happy
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    with admin_connect(bed.pg) as conn:  # nobody's password works: the error path
        set_role_password(conn, user, "an-admin-reset-it-123")
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    errors.append(str(caught.value))
    errors.append(repr(caught.value))

    passwords = _all_passwords(bed, arn, first)
    assert len(set(passwords)) == 3
    out, err = capfd.readouterr()
    text = "\n".join([out, err, caplog.text, *errors])
    assert "rotation step finished" in text  # the capture did see the handler's lines
    for password in passwords:
        assert password not in text
    server = log.since()
    assert "ALTER ROLE" in server
    assert "SCRAM-SHA-256$4096:" in server
    for password in passwords:
        assert password not in server


class LeakyStrategy:
    """A user strategy with a bug: it puts the password in its error message."""

    name = "leaky"

    def create(self, request: CreateRequest) -> CreateResult:
        value = request.current.json()
        return CreateResult(value={**value, "password": request.new_password()})

    def set(self, request: SetRequest) -> SetResult:
        password = request.pending.json()["password"]
        raise ValueError(f"could not set password {password} for you")

    def test(self, request: TestRequest) -> Any:
        raise NotImplementedError


def test_the_dispatcher_scrubs_a_strategys_error_messages(
    bed: Bed, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    arn = bed.secret({"engine": "postgres", "host": "h", "username": "u", "password": "p0-initial"})
    rotator = Rotator(LeakyStrategy(), SecretStore(bed.handler_client))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    pending = bed.value(arn, "AWSPENDING")["password"]
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    assert "unexpected ValueError" in str(caught.value)
    assert pending not in str(caught.value)
    assert pending not in str(caught.value.__cause__)
    out, err = capfd.readouterr()
    assert "could not set password ********" in caplog.text
    assert pending not in out + err + caplog.text


def test_reprs_of_parsed_secrets_hide_the_password(bed: Bed) -> None:
    raw = json.dumps({"engine": "postgres", "host": "h", "username": "u", "password": "s3cr3t-pw"})
    version = SecretVersion("arn", "v1", raw, "AWSCURRENT")
    assert "s3cr3t-pw" not in repr(version)
    assert "s3cr3t-pw" not in repr(parse_postgres_secret(version.json()))
