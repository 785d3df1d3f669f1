"""No middleware layer, a custom one included, ever sees a secret value or a driver error.

The sanitiser is part of the state machine, not a layer to choose: ``Rotator`` always
composes it innermost, whatever ``middleware=`` says, so that a tracing layer (an
OpenTelemetry span records the message and traceback of the exception its block exits
with) records only the scrubbed, contextualised error. Each test plays a strategy with a
bug that quotes a password in an error, chained to psycopg's error (whose connection holds
the password it tried), against the real server: the refusal is what is proven.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import psycopg
import pytest

from handlers.single_user import PostgresSingleUser
from rotation import (
    AWSPENDING,
    CreateRequest,
    CreateResult,
    LocalContext,
    RotationError,
    Rotator,
    SecretStore,
    SetRequest,
    SetResult,
    Step,
)
from rotation.middleware import CallNext, Invocation, LogKeys, LogOutcome, lambda_stack
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def _failed_login(bed: Bed, request: SetRequest, password: str) -> psycopg.OperationalError:
    """psycopg's error for a real login with ``password`` to a database that does not exist
    (its ``pgconn`` holds the password, as every login failure's does)."""
    info = bed.pg.conninfo(request.pending.json()["username"], password)
    try:
        psycopg.connect(**{**info, "dbname": "no_such_database"}).close()
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("the login to a missing database succeeded")


class LeakySet(PostgresSingleUser):
    """setSecret lets psycopg's error through unmapped, after quoting the pending password
    (a bug in a strategy: what the sanitiser exists for)."""

    def __init__(self, bed: Bed, raise_: Callable[[str, BaseException], BaseException]) -> None:
        super().__init__(bed.connector())
        self.bed, self.raise_ = bed, raise_

    def set(self, request: SetRequest) -> SetResult:
        password = request.pending.json()["password"]
        driver_error = _failed_login(self.bed, request, password)
        try:
            raise driver_error
        except psycopg.OperationalError as exc:
            raise self.raise_(password, exc) from exc


def _runtime_error(password: str, cause: BaseException) -> BaseException:
    return RuntimeError(f"login with {password} failed")


class Span:
    """A trace layer as docs/extend/middleware.md shows one: what it records at the moment
    the step fails."""

    def __init__(self) -> None:
        self.recorded: list[str] = []
        self.saw_a_driver_error = False

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        try:
            return call_next(invocation)
        except Exception as exc:
            self.recorded.append("".join(traceback.format_exception(exc)))
            link: BaseException | None = exc
            while link is not None:
                self.saw_a_driver_error |= getattr(link, "pgconn", None) is not None
                link = link.__cause__ or link.__context__
            raise


def _to_set(bed: Bed, rotator: Rotator) -> tuple[str, str, str]:
    arn, _, _ = bed.user_secret()
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    return arn, token, bed.value(arn, AWSPENDING)["password"]


def test_a_custom_layer_sees_only_the_scrubbed_error(bed: Bed) -> None:
    """The documented way to add a layer, middleware=(*lambda_stack(), layer)."""
    span = Span()
    rotator = Rotator(
        LeakySet(bed, _runtime_error),
        SecretStore(bed.handler_client),
        middleware=(*lambda_stack(), span),
    )
    arn, token, pending = _to_set(bed, rotator)
    with pytest.raises(RotationError) as raised:
        rotator.handle(bed.event(arn, "setSecret", token), LocalContext())
    assert pending not in "".join(traceback.format_exception(raised.value))
    assert span.recorded, "the layer saw no failure"
    assert not any(pending in text for text in span.recorded)
    assert not span.saw_a_driver_error


def test_a_stack_without_the_sanitiser_gets_it_anyway(bed: Bed) -> None:
    """Lambda's runtime writes an escaping error's message and traceback to CloudWatch
    itself, past the scrubbing logger: a stack that leaves the sanitiser out still has it."""
    rotator = Rotator(
        LeakySet(bed, _runtime_error),
        SecretStore(bed.handler_client),
        middleware=(LogKeys(), LogOutcome()),
    )
    arn, token, pending = _to_set(bed, rotator)
    with pytest.raises(RotationError) as raised:
        rotator.handle(bed.event(arn, "setSecret", token), LocalContext())
    assert pending not in "".join(traceback.format_exception(raised.value))
    assert not [e for e in _walk(raised.value) if getattr(e, "pgconn", None) is not None]


def _system_exit(password: str, cause: BaseException) -> BaseException:
    return SystemExit(f"giving up on {password}")


def test_a_base_exception_leaves_scrubbed_and_without_the_driver_error(bed: Bed) -> None:
    """SystemExit from a library, asyncio's CancelledError: not made a RotationError (it
    must still stop what it stops), but scrubbed and cut loose from the driver's error."""
    rotator = Rotator(LeakySet(bed, _system_exit), SecretStore(bed.handler_client))
    arn, token, pending = _to_set(bed, rotator)
    with pytest.raises(SystemExit) as raised:
        rotator.handle(bed.event(arn, "setSecret", token), LocalContext())
    assert pending not in "".join(traceback.format_exception(raised.value))
    assert not [e for e in _walk(raised.value) if getattr(e, "pgconn", None) is not None]


class RejectingCreate(PostgresSingleUser):
    """createSecret generates the new password, then fails quoting it (a strategy's own
    policy check, say) before anything stored it."""

    def __init__(self, bed: Bed) -> None:
        super().__init__(bed.connector())
        self.generated: list[str] = []

    def create(self, request: CreateRequest) -> CreateResult:
        password = request.new_password()
        self.generated.append(password)
        raise ValueError(f"generated password {password} rejected")


def test_a_generated_password_is_blanked_before_it_is_stored(bed: Bed) -> None:
    strategy = RejectingCreate(bed)
    rotator = Rotator(strategy, SecretStore(bed.handler_client))
    arn, _, _ = bed.user_secret()
    token = bed.driver(rotator).begin(arn)
    with pytest.raises(RotationError) as raised:
        rotator.handle(bed.event(arn, "createSecret", token), LocalContext())
    (generated,) = strategy.generated
    assert generated not in "".join(traceback.format_exception(raised.value))


# -- what an error may carry besides its message ---------------------------------------------


def _walk(exc: BaseException) -> list[BaseException]:
    """Every exception ``exc`` renders with: causes, contexts and group members."""
    found: list[BaseException] = []
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            pending += list(current.exceptions)
    return found


def _run_with_span(
    bed: Bed,
    raise_: Callable[[str, BaseException], BaseException],
    expected: type[BaseException] = RotationError,
) -> tuple[str, BaseException, Span]:
    span = Span()
    rotator = Rotator(
        LeakySet(bed, raise_), SecretStore(bed.handler_client), middleware=(*lambda_stack(), span)
    )
    arn, token, pending = _to_set(bed, rotator)
    with pytest.raises(expected) as raised:
        rotator.handle(bed.event(arn, "setSecret", token), LocalContext())
    return pending, raised.value, span


def _group(password: str, cause: BaseException) -> BaseException:
    # A strategy that tries hosts concurrently (asyncio.TaskGroup) and fails on all of them.
    assert isinstance(cause, Exception)
    return ExceptionGroup(f"all hosts failed for {password}", [cause, RuntimeError(password)])


def _noted(password: str, cause: BaseException) -> BaseException:
    error = RotationError("login failed")
    error.add_note(f"tried password {password}")
    return error


def _non_string_arg(password: str, cause: BaseException) -> BaseException:
    return RuntimeError("login failed", {"user": "app", "password": password})


@pytest.mark.parametrize("raise_", [_group, _noted, _non_string_arg], ids=["group", "note", "arg"])
def test_members_notes_and_arguments_are_scrubbed_and_cut_from_driver_errors(
    bed: Bed, raise_: Callable[[str, BaseException], BaseException]
) -> None:
    pending, error, span = _run_with_span(bed, raise_)
    assert pending not in "".join(traceback.format_exception(error))
    assert not any(pending in text for text in span.recorded)
    assert not [e for e in _walk(error) if getattr(e, "pgconn", None) is not None]


def _interrupt_group(password: str, cause: BaseException) -> BaseException:
    return BaseExceptionGroup(f"stopped after {password}", [KeyboardInterrupt(), cause])


def test_a_base_exception_group_loses_its_driver_members(bed: Bed) -> None:
    pending, error, _ = _run_with_span(bed, _interrupt_group, BaseExceptionGroup)
    assert isinstance(error, BaseExceptionGroup)
    assert [type(member) for member in error.exceptions] == [KeyboardInterrupt]
    assert pending not in "".join(traceback.format_exception(error))
    assert not [e for e in _walk(error) if getattr(e, "pgconn", None) is not None]
