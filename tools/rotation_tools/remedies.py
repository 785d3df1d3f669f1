"""The fixes the commands print: every command line one of them suggests is built here.

A printed command must act where the command that printed it looked, so it carries the
``--endpoint-url``, ``--region`` and ``--profile`` given (or the endpoint from
SECRETS_MANAGER_ENDPOINT, which the aws CLI does not read), the secret as the user named it,
and the ``--strategy`` given or inferred; a placeholder is printed only for what nothing
tells (``--strategy single-user|multi-user`` for a secret nobody said how to rotate).

The fixes that follow a classified cause (why a secret is malformed, why a login failed) are
here too, so that ``doctor``, ``verify`` and ``plan`` give the same advice for the same
cause.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass

from rotation_contract.errors import RotationError, SecretFormatError
from rotation_contract.pg.errors import (
    AuthenticationError,
    AuthMethodError,
    LoginConfigurationError,
    ServerUnavailableError,
    TlsError,
    UnreachableError,
)

__all__ = [
    "REQUIRED_KEYS",
    "UNKNOWN_STRATEGY",
    "Remedies",
    "connection_options",
    "fix_for",
    "fix_for_cause",
    "secret_format_fix",
    "verify_fix",
]

UNKNOWN_STRATEGY = "single-user|multi-user"
# The contract's required keys of a secret's JSON; a master secret made by RDS holds only
# the last two (host and port then come from the RDS API).
REQUIRED_KEYS = ("engine", "host", "username", "password")


def connection_options(args: argparse.Namespace) -> str:
    """The connection options a command ran with, for the commands it prints: copied, they
    act where this one did. ``--endpoint-url``, ``--region`` and ``--profile`` mean the same
    to the aws CLI; an endpoint from SECRETS_MANAGER_ENDPOINT (which the aws CLI does not
    read) is spelled out too."""
    from rotation.config import secrets_manager_endpoint

    endpoint = getattr(args, "endpoint_url", None) or secrets_manager_endpoint()
    options = ""
    for flag, value in (
        ("--endpoint-url", endpoint),
        ("--region", getattr(args, "region", None)),
        ("--profile", getattr(args, "profile", None)),
    ):
        if value:
            options += f" {flag} {shlex.quote(value)}"
    return options


@dataclass(frozen=True)
class Remedies:
    """Builds the command lines a command prints, carrying the flags it was given.

    ``options``: `` --endpoint-url URL --region R --profile P`` as given; ``strategy``: the
    ``--strategy`` given, if any.
    """

    options: str = ""
    strategy: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Remedies:
        return cls(connection_options(args), getattr(args, "strategy", None))

    def _strategy(self, strategy: str | None) -> str:
        return f" --strategy {strategy or self.strategy or UNKNOWN_STRATEGY}"

    # The options go right after the secret: a copied command reads "SECRET --endpoint-url
    # URL" as the user gave them, and they stay before any trailing ``# comment``.
    def rotate(self, secret: str, *, strategy: str | None = None, force: bool = False) -> str:
        forced = " --force" if force else ""
        return (
            f"rotation rotate {shlex.quote(secret)}{self.options}{self._strategy(strategy)}{forced}"
        )

    def status(self, secret: str) -> str:
        return f"rotation status {shlex.quote(secret)}{self.options}"

    def verify(self, secret: str, *, strategy: str | None = None, reconcile: bool = False) -> str:
        again = " --reconcile" if reconcile else ""
        quoted = shlex.quote(secret)
        return f"rotation verify {quoted}{self.options}{self._strategy(strategy)}{again}"

    def aws(self, operation: str, secret: str, *arguments: str) -> str:
        """An ``aws secretsmanager`` command."""
        rest = "".join(f" {argument}" for argument in arguments)
        quoted = shlex.quote(secret)
        return f"aws secretsmanager {operation} --secret-id {quoted}{self.options}{rest}"


def secret_format_fix(what: str = "the secret") -> str:
    """The fix for a secret value that is not the contract's JSON."""
    return (
        f"fix {what}'s value as the message says: a JSON object with the keys "
        f"{', '.join(REQUIRED_KEYS)} "
        "(optional: port, dbname, ssl, masterarn; a master secret made by RDS needs only "
        "username and password), e.g. "
        '{"engine": "postgres", "host": "db.example.com", "port": 5432, '
        '"username": "app", "password": "...", "dbname": "app"}'
    )


# The fix for a cause no password can help with, by the error's class (the error's own
# message names the detail: the role, the database, the certificate).
_CAUSE_FIX: dict[str, str] = {
    "SecretFormatError": secret_format_fix(),
    "TlsError": (
        "not a password problem: make TLS work as the message says (PGSSLROOTCERT for the "
        "server's CA, 'host' for the certificate's name, or 'ssl' in AWSCURRENT)"
    ),
    "AuthMethodError": (
        "not a password problem: make pg_hba.conf ask this user for scram-sha-256 (or md5); "
        "nothing was sent to a server that asked for less"
    ),
    "LoginConfigurationError": (
        "not a password problem: create or fix what the message names (the role, its LOGIN, "
        "the database, CONNECT on it, or a pg_hba.conf line), or fix the secret's "
        "'username' or 'dbname'"
    ),
    # Once logged in, a failed statement (the probe query) is a DatabaseError itself.
    "DatabaseError": (
        "the credential logs in but the probe query failed: fix ROTATION_TEST_QUERY or grant "
        "what it needs"
    ),
}


def fix_for_cause(cause: str) -> str:
    """The fix for an error by its class name (as :class:`handlers.verify.LoginResult`
    records it), or "" when the class has none of its own."""
    return _CAUSE_FIX.get(cause, "")


def fix_for(exc: RotationError, remedies: Remedies, secret: str) -> str:
    """The fix for a failed login or a malformed secret, by the error's class."""
    if isinstance(exc, AuthenticationError):
        return (
            "the stored password does not match the database (or the role does not exist: "
            "the server does not say which, its log does): reset the password to the "
            f"secret's value, or see a half-finished rotation with `{remedies.status(secret)}`"
        )
    if isinstance(exc, SecretFormatError | TlsError | AuthMethodError | LoginConfigurationError):
        return fix_for_cause(type(exc).__name__)
    if isinstance(exc, ServerUnavailableError):
        return "the server answered but took no login: try again once it is up or has room"
    if isinstance(exc, UnreachableError):
        return "check the host, the port, the network path and that the server runs"
    return fix_for_cause(type(exc).__name__) or "see the message"


def verify_fix(state: str, cause: str, remedies: Remedies, secret: str) -> str:
    """The fix ``rotation verify`` prints for a secret in ``state`` (a
    :class:`handlers.verify.CredentialState` value), ``cause`` the class name of the error
    that decided it."""
    if state == "drift":
        return (
            "the stored password no longer logs in: it was changed outside rotation (or the "
            "role was dropped or its VALID UNTIL passed; the server's log says which). Set it "
            "back with the master (a masterarn in the secret): "
            f"`{remedies.verify(secret, reconcile=True)}`; or ALTER ROLE as an administrator; "
            f"or rotate now: `{remedies.rotate(secret)}`"
        )
    if state == "unreachable":
        return (
            "check the host, the port, the network path and that the server runs and has room "
            "for a connection"
        )
    if state == "misconfigured":
        return fix_for_cause(cause) or "not a password problem: see the message"
    if state == "rotating":
        return (
            "let the rotation finish, then verify again: Secrets Manager re-attempts a "
            f"rotation its function started; `{remedies.rotate(secret)}` resumes one started "
            f"directly; `{remedies.status(secret)}` shows how far it got"
        )
    if state == "not-checked":
        return "raise the function's timeout or split the list over several schedules"
    return ""
