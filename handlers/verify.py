"""Verification between rotations: do the stored credentials still log in?

A successful rotation proves the credential worked when it was made; someone may change the
password afterwards (an ``ALTER ROLE`` by hand, a restored snapshot), and every client then
fails at its next login while Secrets Manager shows nothing wrong. This module logs in as
AWSCURRENT (and, for multi-user, as AWSPREVIOUS, which clients may still hold: its user is
the other one of the pair, whose password is unchanged until the next rotation) with the same
connector as the rotation steps (TLS floor at AWSCURRENT's mode, ``require_auth``), runs the
probe query (``ROTATION_TEST_QUERY``), and names what it found:

=================  =======================================================================
``valid``          every credential checked logs in and runs the probe
``drift``          the server refused a stored password: changed outside rotation (or the
                   role was dropped or expired: the server answers alike on purpose)
``unreachable``    no server answered, or it takes no login now (starting, full)
``misconfigured``  no password could help: the secret's format, TLS, pg_hba.conf, the
                   database, the authentication method, the probe query; the message
                   names the fix (classified in :mod:`rotation_contract.pg.login`)
``rotating``       AWSCURRENT was refused while a rotation is in progress (AWSPENDING on a
                   non-current version): past setSecret the database already has the
                   pending password until finishSecret. Not drift, not valid either
``not-checked``    the secret was not checked at all (the Lambda invocation ran out of time
                   before its turn)
=================  =======================================================================

``rotating`` and ``not-checked`` say nothing about the stored password, so the Lambda
verification publishes no ``CredentialValid`` for them (``CredentialNotChecked`` instead,
:mod:`handlers.verify_lambda`) and the drift alarm does not fire; they are still not valid
(``rotation verify`` exits 1).

Calls: one DescribeSecret and one GetSecretValue per credential checked; one connection per
credential. Nothing here changes anything; repairing drift is ``rotation verify --reconcile``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handlers import STRATEGIES
from handlers.pg_connect import PostgresConnector
from handlers.pg_errors import statement_error
from rotation.errors import RotationError, SecretFormatError
from rotation.retry import Deadline
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretDescription
from rotation.store import SecretStore, StoreSession
from rotation_contract.pg.errors import AuthenticationError, UnreachableError
from rotation_contract.pg.secret import PostgresSecret, check_same_target, parse_postgres_secret

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "STRATEGIES",
    "UNDECIDED",
    "CredentialState",
    "LoginResult",
    "Verification",
    "Verifier",
    "state_of",
]


class CredentialState(enum.StrEnum):
    VALID = "valid"
    DRIFT = "drift"
    UNREACHABLE = "unreachable"
    MISCONFIGURED = "misconfigured"
    ROTATING = "rotating"
    NOT_CHECKED = "not-checked"
    # AWSPREVIOUS refused because PREVIOUS_PASSWORD_TTL's expiry passed: expected, not drift.
    EXPIRED = "expired"


# Verdicts that say nothing about the stored password: no CredentialValid for them.
UNDECIDED = frozenset({CredentialState.ROTATING, CredentialState.NOT_CHECKED})

_FIX = {
    CredentialState.DRIFT: (
        "the stored password no longer logs in: it was changed outside rotation (or the role "
        "was dropped or its VALID UNTIL passed; the server's log says which). Set it back: "
        "`rotation verify SECRET --strategy STRATEGY --reconcile` with a masterarn in the "
        "secret, or ALTER ROLE as an administrator; or rotate the secret now"
    ),
    CredentialState.UNREACHABLE: (
        "check the host, the port, the network path and that the server runs and has room "
        "for a connection"
    ),
    CredentialState.MISCONFIGURED: "not a password problem: fix what the message names",
    CredentialState.ROTATING: (
        "let the rotation finish (Secrets Manager re-attempts it; `rotation rotate SECRET` "
        "resumes it), then verify again; `rotation status SECRET` shows how far it got"
    ),
    CredentialState.NOT_CHECKED: (
        "raise the function's timeout or split the list over several schedules"
    ),
}


def state_of(error: RotationError) -> CredentialState:
    """What a failed check means, by the error's class (login failures are classified in
    :mod:`rotation_contract.pg.login`): a refused credential is drift, an unreachable or busy server
    is unreachable, anything else no password can help with."""
    if isinstance(error, AuthenticationError):
        return CredentialState.DRIFT
    if isinstance(error, UnreachableError):
        return CredentialState.UNREACHABLE
    return CredentialState.MISCONFIGURED


@dataclass(frozen=True)
class LoginResult:
    """One credential's check. ``username`` is a role name, never a password."""

    label: str
    username: str
    state: CredentialState
    problem: str = ""
    # The class name of the error behind a failed check: what a fix is chosen by.
    cause: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "username": self.username,
            "state": self.state.value,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class Verification:
    """One secret's verdict: the first credential that is not valid decides it."""

    secret: str  # the ARN, or the id asked for when the secret could not be read
    name: str | None
    strategy: str
    state: CredentialState
    logins: tuple[LoginResult, ...] = ()
    problem: str = ""
    actions: tuple[str, ...] = field(default=())
    # The AWSPENDING version of a rotation in progress, if any (it can explain drift).
    rotating: str | None = None
    # The class name of the error that decided the state (see LoginResult.cause).
    cause: str = ""

    @property
    def valid(self) -> bool:
        return self.state is CredentialState.VALID

    @property
    def fix(self) -> str:
        return _FIX.get(self.state, "")

    def as_json(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "name": self.name,
            "strategy": self.strategy,
            "state": self.state.value,
            "problem": self.problem,
            "fix": self.fix,
            "logins": [login.as_json() for login in self.logins],
            "actions": list(self.actions),
            "rotation_in_progress": self.rotating,
        }


@dataclass(frozen=True)
class _Credentials:
    """What a verification reads: the description and the parsed versions to log in with."""

    description: SecretDescription
    current: PostgresSecret
    previous: PostgresSecret | None


class Verifier:
    """Checks secrets' credentials with the rotation steps' own store and connector.

    Parameters
    ----------
    store:
        Secrets Manager access (the entrypoint's, in Lambda).
    connector:
        Opens connections exactly as the rotation steps do (the strategy's, in Lambda).
    strategy:
        ``single-user`` (AWSCURRENT only: AWSPREVIOUS's password was replaced by design) or
        ``multi-user`` (also AWSPREVIOUS, the other user of the pair).
    """

    def __init__(self, store: SecretStore, connector: PostgresConnector, strategy: str) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self.store = store
        self.connector = connector
        self.strategy = strategy

    def read(self, session: StoreSession, secret_id: str) -> _Credentials:
        """The secret's description and the versions to check, parsed.

        Raises
        ------
        RotationError
            The secret cannot be read, has no AWSCURRENT, or a version is malformed or points
            at another target.
        """
        description = session.describe(secret_id)
        current_id = description.version_with(AWSCURRENT)
        if current_id is None:
            raise SecretFormatError("no version of this secret is labelled AWSCURRENT")
        current_version = session.get_version(description.arn, current_id, AWSCURRENT)
        current = parse_postgres_secret(current_version.json(), "the AWSCURRENT version")
        previous = None
        previous_id = description.version_with(AWSPREVIOUS)
        if self.strategy == "multi-user" and previous_id is not None:
            version = session.get_version(description.arn, previous_id, AWSPREVIOUS)
            parsed = parse_postgres_secret(version.json(), "the AWSPREVIOUS version")
            # The same user's older password was replaced by design (a secret rotated
            # single-user before): only the other user of the pair is a live credential.
            if parsed.username != current.username:
                check_same_target(current, parsed, AWSPREVIOUS, same_user=False)
                previous = parsed
        return _Credentials(description, current, previous)

    def check_login(
        self, secret: PostgresSecret, label: str, deadline: Deadline, *, floor: str
    ) -> LoginResult:
        """Log in as ``secret`` and run the probe query."""
        try:
            with self.connector.connect(secret, deadline, who=label, floor=floor) as conn:
                try:
                    conn.execute(_probe(self.connector.settings.test_query)).fetchall()
                except _psycopg_error() as exc:
                    raise statement_error(exc, f"the probe query as {label}") from exc
        except RotationError as exc:
            self.store.scrubber.scrub_exception_chain(exc)
            return LoginResult(
                label, secret.username, state_of(exc), exc.problem, type(exc).__name__
            )
        return LoginResult(label, secret.username, CredentialState.VALID)

    def verify(self, secret_id: str, deadline: Deadline) -> Verification:
        """Check one secret's credentials (see the module docstring). Never raises for what
        it finds: an unreadable or malformed secret is ``misconfigured``."""
        session = self.store.session(deadline)
        try:
            credentials = self.read(session, secret_id)
        except RotationError as exc:
            self.store.scrubber.scrub_exception_chain(exc)
            return Verification(
                secret_id,
                None,
                self.strategy,
                CredentialState.MISCONFIGURED,
                problem=self.store.scrubber.scrub(exc.problem),
                cause=type(exc).__name__,
            )
        floor = credentials.current.sslmode
        logins = [self.check_login(credentials.current, AWSCURRENT, deadline, floor=floor)]
        if credentials.previous is not None:
            previous = self.check_login(credentials.previous, AWSPREVIOUS, deadline, floor=floor)
            if previous.state is CredentialState.DRIFT and logins[0].state is CredentialState.VALID:
                previous = self._expired_by_rotation(credentials, previous, deadline, floor=floor)
            logins.append(previous)
        return verdict(credentials.description, self.strategy, logins)

    def _expired_by_rotation(
        self, credentials: _Credentials, refused: LoginResult, deadline: Deadline, *, floor: str
    ) -> LoginResult:
        """AWSPREVIOUS refused: expected when its user carries a rotation's expiry
        (``PREVIOUS_PASSWORD_TTL``, :mod:`handlers.pg_expiry`) that has passed. Asked as
        AWSCURRENT (``pg_roles`` is readable by every role): one more login, only here."""
        from handlers.pg_expiry import is_rotation_expiry  # psycopg
        from handlers.pg_sql import role_validity_passed

        try:
            with self.connector.connect(
                credentials.current, deadline, who=AWSCURRENT, floor=floor
            ) as conn:
                row = conn.execute(role_validity_passed(), (refused.username,)).fetchone()
        except RotationError:
            return refused
        if row is None or not row[1] or not is_rotation_expiry(str(row[0])):
            return refused
        return LoginResult(
            AWSPREVIOUS,
            refused.username,
            CredentialState.EXPIRED,
            f"its password expired at {row[0]}, as PREVIOUS_PASSWORD_TTL intends (expected, "
            "not drift)",
        )


def rotation_in_progress(description: SecretDescription) -> str | None:
    """The version holding AWSPENDING for a rotation in progress (not left on AWSCURRENT by
    a finished one), or None."""
    for version_id, stages in description.versions.items():
        if AWSPENDING in stages and AWSCURRENT not in stages:
            return version_id
    return None


def verdict(
    description: SecretDescription, strategy: str, logins: list[LoginResult]
) -> Verification:
    fine = (CredentialState.VALID, CredentialState.EXPIRED)
    failed = next((login for login in logins if login.state not in fine), None)
    problem = f"{failed.label} ({failed.username}): {failed.problem}" if failed else ""
    pending = rotation_in_progress(description)
    state = failed.state if failed else CredentialState.VALID
    if failed is not None and failed.state is CredentialState.DRIFT and pending is not None:
        state = CredentialState.ROTATING
        # Single-user: between setSecret and finishSecret the database already has the
        # pending password. Not drift to repair: the rotation will finish (or must be).
        problem += (
            f". A rotation is in progress (version {pending} is AWSPENDING): past setSecret, "
            "the database already has the pending password until finishSecret makes it "
            "AWSCURRENT; check again once it finished (`rotation status SECRET`)"
        )
    return Verification(
        description.arn,
        description.name,
        strategy,
        state,
        tuple(logins),
        problem=problem,
        rotating=pending,
        cause=failed.cause if failed else "",
    )


def _probe(query: str) -> Any:
    from handlers.pg_sql import probe  # psycopg: loaded on first login

    return probe(query)


def _psycopg_error() -> type[psycopg.Error]:
    import psycopg  # already loaded: a connection is open

    return psycopg.Error


def summary(results: list[Verification]) -> Mapping[str, int]:
    # EXPIRED is a login's state only (AWSPREVIOUS), never a secret's verdict.
    counts = {state.value: 0 for state in CredentialState if state is not CredentialState.EXPIRED}
    for result in results:
        counts[result.state.value] += 1
    return counts
