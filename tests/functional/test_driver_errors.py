"""No driver error leaves the handler: psycopg's errors hold the connection they failed on,
and ``pgconn.password`` is the password that was tried.

Against the real server: a refused login (single-user setSecret with every credential
wrong), a statement the server refuses (mapped by a strategy with ``raise ... from exc``),
and a driver error a strategy lets through unmapped. The raised error's whole chain is
walked (causes, contexts), with each error's attributes, arguments and traceback frames.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from rotation import RotationError, Rotator, SecretStore, Step
from rotation.strategy import CreateRequest, CreateResult, SetRequest, SetResult, TestRequest
from rotation_contract.pg.errors import AuthenticationError, DatabaseError
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)


def _holds_a_connection(value: object) -> bool:
    return isinstance(value, (psycopg.Error, psycopg.Connection)) or hasattr(value, "pgconn")


def _frames(error: BaseException) -> Iterator[types.FrameType]:
    """The frames the error passed through, but the tests' own (which hold the passwords
    they check for)."""
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != __file__:
            yield tb.tb_frame
        tb = tb.tb_next


def assert_no_driver_object(error: BaseException, passwords: list[str]) -> None:
    """Nothing reachable from the error's chain (shallowly) holds the driver or a password."""
    for link in _chain(error):
        assert not _holds_a_connection(link), f"{type(link).__name__} in the chain"
        for name, value in vars(link).items():
            assert not _holds_a_connection(value), f"{type(link).__name__}.{name}"
        for arg in link.args:
            assert not _holds_a_connection(arg)
        for frame in _frames(link):
            for name, value in frame.f_locals.items():
                assert not _holds_a_connection(value), f"{frame.f_code.co_name}: {name}"
                assert not (isinstance(value, str) and value in passwords), name
        for password in passwords:
            assert password not in str(link)


def test_a_refused_login_raises_without_the_driver_error(bed: Bed) -> None:
    """setSecret: every credential refused (the handler gathers the refusals)."""
    arn, user, password = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    with admin_connect(bed.pg) as conn:  # changed outside the rotation: nothing logs in
        set_role_password(conn, user, "changed-behind-our-back")
    with pytest.raises(AuthenticationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    pending = bed.value(arn, "AWSPENDING")["password"]
    assert_no_driver_object(caught.value, [password, pending, "changed-behind-our-back"])


@pytest.mark.parametrize("step", ["testSecret", "finishSecret"])
def test_a_refused_pending_login_raises_without_the_driver_error(bed: Bed, step: str) -> None:
    """The pending password never set: the login error is mapped from psycopg's."""
    arn, _, password = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    with pytest.raises(AuthenticationError) as caught:
        rotator.handle(bed.event(arn, step, token))
    pending = bed.value(arn, "AWSPENDING")["password"]
    assert_no_driver_object(caught.value, [password, pending])
    assert "psycopg.OperationalError" in str(caught.value)  # what the driver said, by name


class _DriverStrategy:
    """setSecret logs in for real and lets the server refuse a statement."""

    name = "driver-errors"

    def __init__(self, bed: Bed, *, mapped: bool) -> None:
        self.bed = bed
        self.mapped = mapped

    def create(self, request: CreateRequest) -> CreateResult:
        return CreateResult(value={**request.current.json(), "password": request.new_password()})

    def set(self, request: SetRequest) -> SetResult:
        current = request.current.json()
        conninfo = self.bed.pg.conninfo(current["username"], current["password"])
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            try:
                conn.execute("CREATE ROLE not_allowed_here")  # an ordinary user may not
            except psycopg.Error as exc:
                if self.mapped:
                    raise DatabaseError("creating a role failed") from exc
                raise
        return SetResult(changed=True, via="AWSCURRENT")

    def test(self, request: TestRequest) -> Any:
        raise NotImplementedError


@pytest.mark.parametrize("mapped", [True, False], ids=["mapped", "unmapped"])
def test_a_refused_statement_raises_without_the_driver_error(bed: Bed, mapped: bool) -> None:
    arn, _, password = bed.user_secret()
    rotator = Rotator(_DriverStrategy(bed, mapped=mapped), SecretStore(bed.handler_client))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    assert_no_driver_object(caught.value, [password])
    message = str(caught.value)
    assert "InsufficientPrivilege" in message
    assert "42501" in message  # the SQLSTATE, kept in the message
    assert ("creating a role failed" in message) is mapped
