"""The seam between the dispatcher and an engine: what a rotation strategy implements.

A strategy knows one engine and one scheme (e.g. PostgreSQL, single user). It never talks
to Secrets Manager's labels: the dispatcher reads and writes versions, checks the token's
stage, logs, times and scrubs; the strategy only builds the pending value, makes it valid in
the engine, and proves it works. Each method takes one frozen request and returns one frozen
result, so fields can be added later without breaking anybody's strategy.

Writing one::

    class MyStrategy:
        name = "my-engine"

        def create(self, request: CreateRequest) -> CreateResult:
            value = request.current.json()
            value["password"] = request.new_password()
            return CreateResult(value=value)

        def set(self, request: SetRequest) -> SetResult: ...
        def test(self, request: TestRequest) -> TestResult: ...

    handler = Rotator(MyStrategy(), store).handle
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rotation.event import Step
from rotation.retry import Deadline
from rotation.secret import SecretDescription, SecretVersion

__all__ = [
    "CreateRequest",
    "CreateResult",
    "FinishCheck",
    "FinishRequest",
    "FinishResult",
    "PromotedRequest",
    "PromotionFollowUp",
    "RotationStrategy",
    "SecretContext",
    "SecretReader",
    "SetRequest",
    "SetResult",
    "TestRequest",
    "TestResult",
]


@dataclass(frozen=True)
class SecretContext:
    """Which secret, step and token an invocation is about."""

    secret_id: str
    arn: str
    name: str
    token: str
    step: Step
    description: SecretDescription


class SecretReader(Protocol):
    """Reads a strategy may need beyond the current and pending versions."""

    def version_with_label(self, label: str) -> SecretVersion | None:
        """This secret's version carrying ``label`` (e.g. AWSPREVIOUS), or None."""
        ...

    def current_of(self, secret_id: str) -> SecretVersion:
        """AWSCURRENT of another secret, e.g. the master secret named by ``masterarn``."""
        ...

    def describe(self, secret_id: str) -> SecretDescription:
        """Another secret's description (its tags, e.g. RDS's primary instance ARN)."""
        ...


@dataclass(frozen=True)
class CreateRequest:
    context: SecretContext
    current: SecretVersion
    new_password: Callable[[], str]


@dataclass(frozen=True)
class CreateResult:
    """The pending secret's JSON value. Keep every key of the current value you don't change."""

    value: Mapping[str, Any]


@dataclass(frozen=True)
class SetRequest:
    context: SecretContext
    current: SecretVersion
    pending: SecretVersion
    secrets: SecretReader
    deadline: Deadline


@dataclass(frozen=True)
class SetResult:
    """What set did, for the log: ``changed`` is False when the pending credential was
    already in place; ``via`` names the credential that logged in to make the change."""

    changed: bool
    via: str


@dataclass(frozen=True)
class TestRequest:
    """``current`` is there for the TLS floor: no login may use weaker TLS than AWSCURRENT's."""

    __test__ = False  # not a pytest test class, despite the name
    context: SecretContext
    pending: SecretVersion
    deadline: Deadline
    current: SecretVersion


@dataclass(frozen=True)
class TestResult:
    """Empty today; kept so fields can be added without breaking strategies."""

    __test__ = False  # not a pytest test class, despite the name


@dataclass(frozen=True)
class FinishRequest:
    """The versions finishSecret is about to swap: ``pending`` becomes AWSCURRENT."""

    context: SecretContext
    current: SecretVersion
    pending: SecretVersion


@dataclass(frozen=True)
class FinishResult:
    """Empty today; kept so fields can be added without breaking strategies."""


@dataclass(frozen=True)
class PromotedRequest:
    """finishSecret after AWSCURRENT moved to ``current`` (the token's version), whose
    password has logged in for this token (proof before promotion). ``previous`` is the
    version that was AWSCURRENT before (now AWSPREVIOUS), when known.

    ``still_promoted`` asks Secrets Manager again (one ``DescribeSecret``) whether the token
    is still AWSCURRENT, ``previous`` still AWSPREVIOUS, and no later rotation holds
    AWSPENDING: a strategy that changes the previous credential calls it at the last moment
    (under its own lock), so a late or duplicate invocation never touches a credential a
    later rotation has made current.

    ``prove`` raises unless ``current``'s password has logged in for this token: free when
    this container holds the proof (the usual finishSecret), one login otherwise (a
    re-attempt). A strategy that acts on the engine calls it first, so that what it does
    rests on a login of this rotation (the master's authority); one with nothing to do
    does not, and costs nothing.
    """

    context: SecretContext
    current: SecretVersion
    previous: SecretVersion | None
    secrets: SecretReader
    deadline: Deadline
    still_promoted: Callable[[], bool]
    prove: Callable[[], None]


@runtime_checkable
class PromotionFollowUp(Protocol):
    """Optional: work on the engine after finishSecret moved AWSCURRENT (multi-user: give
    the previous password its expiry, ``PREVIOUS_PASSWORD_TTL``).

    Called after the label move, and again by a finishSecret that finds the token already
    AWSCURRENT while it still holds AWSPENDING (Secrets Manager's re-attempt after a crash
    between the move and this call; a concurrent finishSecret). Must be idempotent and must
    never make AWSCURRENT unable to log in. Raising fails finishSecret after the move:
    AWSCURRENT has moved and works; the re-attempt calls this again.
    """

    def promoted(self, request: PromotedRequest) -> None: ...


@runtime_checkable
class RotationStrategy(Protocol):
    """What the dispatcher calls for createSecret, setSecret and testSecret.

    finishSecret is label work and belongs to the dispatcher (which calls ``test`` when it
    holds no proof that the pending credential logs in).
    """

    name: str

    def create(self, request: CreateRequest) -> CreateResult:
        """Build the pending value from the current one.

        Called only when no value exists yet for the token, and must have no side effect
        outside its return value (the dispatcher stores it). Raise ``SecretFormatError`` for
        a current value this strategy cannot rotate: nothing is stored then.
        """
        ...

    def set(self, request: SetRequest) -> SetResult:
        """Make the pending credential valid in the engine.

        Must succeed, changing nothing, when the pending credential is already in place (a
        re-attempt after a crash), and must refuse a pending value that points somewhere
        the current one does not (a confused deputy).
        """
        ...

    def test(self, request: TestRequest) -> TestResult:
        """Prove the pending credential works. Read-only; safe to run any number of times.

        finishSecret calls it too (``request.context.step`` is then finishSecret) when this
        container has no proof that the pending credential logged in for the token: the
        dispatcher never promotes a credential that has not.
        """
        ...


@runtime_checkable
class FinishCheck(Protocol):
    """Optional: a strategy that also has ``finish`` may veto promoting a pending value.

    The dispatcher always refuses a pending version with no value or with a value that is
    not a JSON object; a strategy with ``finish`` checks what only it can tell, e.g. that
    the pending value is a secret of its engine for the same target.
    """

    def finish(self, request: FinishRequest) -> FinishResult:
        """Raise (``SecretFormatError``) to refuse making ``request.pending`` AWSCURRENT.

        Read-only and cheap: no engine login; runs on every finishSecret, re-runs included.
        """
        ...
