"""rotation_client keeps passwords out of its errors' chains and out of its objects' reprs.

A psycopg error of a failed login keeps its connection in ``pgconn``, and
``pgconn.password`` is the password that was tried: none of the client's own errors may
reach one through ``__cause__`` or ``__context__``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rotation_client import ConnectRetry, RotatingCredentials, SecretsManagerSource
from rotation_client._async import open_async
from rotation_client.credentials import _Candidate
from rotation_client.sources import AWSCURRENT
from rotation_contract.pg.errors import (
    AuthenticationError,
    AuthMethodError,
    LoginConfigurationError,
    TlsError,
)
from rotation_contract.pg.settings import PostgresSettings
from tests.fix_aws import new_client
from tests.fix_fake_server import FakeServer
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

FAST = ConnectRetry(rounds=2, initial_wait_s=0.0, max_wait_s=0.0, jitter=0.0, sleep=lambda _: None)
FAKE_SERVER_PASSWORD = "must-never-reach-the-fake-server"  # the fake's own


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def _assert_holds_no_password(error: BaseException, password: str) -> None:
    assert error.__cause__ is None
    assert error.__context__ is None
    for item in _chain(error):
        assert password not in repr(item)
        assert password not in str(item)
        pgconn = getattr(item, "pgconn", None)
        if pgconn is not None:
            assert password.encode() not in (pgconn.password or b"")


def _creds(arn: str, **kwargs: Any) -> RotatingCredentials:
    return RotatingCredentials(arn, source=SecretsManagerSource(new_client()), retry=FAST, **kwargs)


def _sync(creds: RotatingCredentials) -> None:
    creds.connect()


def _async(creds: RotatingCredentials) -> None:
    asyncio.run(open_async(creds))


@pytest.mark.parametrize("run", [_sync, _async])
def test_a_configuration_error_chains_no_driver_error(bed: Bed, run: Any) -> None:
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, dbname="no_such_database"))
    with pytest.raises(LoginConfigurationError) as caught:
        run(_creds(arn))
    _assert_holds_no_password(caught.value, password)


@pytest.mark.parametrize("run", [_sync, _async])
def test_a_tls_error_chains_no_driver_error(bed: Bed, run: Any) -> None:
    arn, _, password = bed.user_secret()
    # Without PGSSLROOTCERT only the shipped RDS roots are trusted: the test CA is not.
    with pytest.raises(TlsError) as caught:
        run(_creds(arn, settings=PostgresSettings.from_env({})))
    _assert_holds_no_password(caught.value, password)


@pytest.mark.parametrize("run", [_sync, _async])
def test_an_auth_method_error_chains_no_driver_error(
    bed: Bed, fake_server: type[FakeServer], run: Any
) -> None:
    server = fake_server("cleartext")
    arn = bed.secret(server.secret_value())
    with pytest.raises(AuthMethodError) as caught:
        run(_creds(arn))
    _assert_holds_no_password(caught.value, FAKE_SERVER_PASSWORD)


@pytest.mark.parametrize("run", [_sync, _async])
def test_an_authentication_error_chains_no_driver_error(bed: Bed, run: Any) -> None:
    user, _ = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, "never-was-right-7"))
    with pytest.raises(AuthenticationError) as caught:
        run(_creds(arn))
    _assert_holds_no_password(caught.value, "never-was-right-7")


def test_the_client_objects_reprs_hold_no_password(bed: Bed) -> None:
    arn, _, password = bed.user_secret()
    creds = _creds(arn)
    creds.connect().close()
    working = creds._working
    assert working is not None
    labels = list(creds.versions._labels.values())
    assert labels
    assert labels[0].value is not None
    assert password in labels[0].value  # the label does hold it: its repr must not show it
    candidate = _Candidate.parse(AWSCURRENT, labels[0].value)
    for item in (working, candidate, *labels, creds):
        assert password not in repr(item)
