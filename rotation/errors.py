"""The errors a rotation raises.

Every error is rooted at :class:`RotationError` and carries the secret, the step and the
client request token it happened in, so that the single line Secrets Manager records for a
failed invocation says where it failed. No error ever carries a secret value: strategies
raise with context-free messages, and the dispatcher fills in the context and scrubs every
secret value it has seen out of the message before the error leaves the handler.

::

    RotationError
    ├── ConfigurationError      the function's own settings (env vars) are wrong
    ├── DeadlineError           the step's time ran out before an operation could start
    │   └── ConnectTimeoutError the application client's connect() ran out of its budget
    ├── EventError              the invocation event is malformed
    ├── SecretFormatError       a secret value is not JSON or lacks / mistypes a field
    ├── StagingError            the token or the secret's labels do not allow this step
    ├── SecretsManagerError     a Secrets Manager call failed (permissions, KMS, throttling)
    │   ├── SecretsManagerUnavailableError  unreachable, throttled, timed out, 5xx: transient
    │   │   └── SecretReadTimeoutError  the caller's own time ran out during a read
    │   ├── SecretAccessError   the caller may not read it: IAM, the KMS key, credentials
    │   └── SecretDeletedError  the secret does not exist, or is scheduled for deletion
    ├── RdsError                an RDS API call failed (permissions, throttling, network)
    └── DatabaseError           the database could not be reached or refused us
        ├── UnreachableError    no server answered (DNS, TCP, timeout): transient, retried
        │   └── ServerUnavailableError  the server answered but takes no login now
        │                       (starting up, shutting down, full): transient, retried
        ├── AuthenticationError the server answered and refused the credential
        ├── AuthMethodError     the server asked for an authentication method we refuse
        │                       (a cleartext password, or none at all): nothing was sent
        ├── ImpostorServerError the server broke the authentication protocol (a wrong SCRAM
        │                       server signature, a bad SCRAM message): it is not the
        │                       database, so no other credential is offered to it
        ├── LoginConfigurationError  no password could log in here: a missing database,
        │                       pg_hba.conf, NOLOGIN, no CONNECT privilege; not retried
        ├── TlsError            TLS cannot be set up as the secret asks: not retried
        ├── ReadOnlyHostError   the host is a read-only standby: it cannot change a password
        └── ReplicaLagError     the new password did not reach the standby in time

Which login failure becomes which error is decided in one place, :mod:`rotation.pg.login`.
"""

from __future__ import annotations

__all__ = [
    "AuthMethodError",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectTimeoutError",
    "DatabaseError",
    "DeadlineError",
    "EventError",
    "ImpostorServerError",
    "LoginConfigurationError",
    "RdsError",
    "ReadOnlyHostError",
    "ReplicaLagError",
    "RotationError",
    "SecretAccessError",
    "SecretDeletedError",
    "SecretFormatError",
    "SecretReadTimeoutError",
    "SecretsManagerError",
    "SecretsManagerUnavailableError",
    "ServerUnavailableError",
    "StagingError",
    "TlsError",
    "UnreachableError",
]


class RotationError(Exception):
    """Root of every error this framework raises.

    Parameters
    ----------
    problem:
        What went wrong, in plain words, without any secret value.
    secret_id, step, token:
        Where it went wrong; the dispatcher fills in whatever the raiser did not know.
    """

    def __init__(
        self,
        problem: str,
        *,
        secret_id: str | None = None,
        step: str | None = None,
        token: str | None = None,
    ) -> None:
        self.problem = problem
        self.secret_id = secret_id
        self.step = step
        self.token = token
        super().__init__(problem)

    def with_context(
        self, *, secret_id: str | None, step: str | None, token: str | None
    ) -> RotationError:
        """Fill in the context fields that are still empty; returns ``self``."""
        self.secret_id = self.secret_id or secret_id
        self.step = self.step or step
        self.token = self.token or token
        return self

    def __str__(self) -> str:
        where = []
        if self.secret_id:
            where.append(f"secret {self.secret_id}")
        if self.step:
            where.append(f"step {self.step}")
        if self.token:
            where.append(f"token {self.token}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.problem}" if prefix else self.problem


class ConfigurationError(RotationError):
    """The function's configuration (environment variables, arguments) is invalid."""


class DeadlineError(RotationError):
    """The step's time ran out before an operation could start: nothing was sent. Secrets
    Manager's re-attempt continues the rotation."""


class ConnectTimeoutError(DeadlineError):
    """The application client's ``connect()`` ran out of its budget
    (``ConnectRetry.timeout_s``, or the caller's ``timeout_s``) before a login could finish:
    none was started in too little time, or the database's host name or the server did not
    answer within the time left. The message names the budget, what used it and the fix."""


class EventError(RotationError):
    """The invocation event is malformed: a key is missing, mistyped or unknown."""


class SecretFormatError(RotationError):
    """A secret value is not a JSON object, or lacks or mistypes a required field."""


class StagingError(RotationError):
    """The token or the secret's staging labels do not allow the requested step."""


class SecretsManagerError(RotationError):
    """A Secrets Manager call failed for a reason other than the secret's labels."""


class SecretsManagerUnavailableError(SecretsManagerError):
    """Secrets Manager did not answer in time, could not be reached, throttled the call or
    failed on its side (5xx): transient. The application client serves the value it read
    before, if any."""


class SecretReadTimeoutError(SecretsManagerUnavailableError):
    """The application client's read of a secret ended because its caller's time ran out
    (``ConnectRetry.timeout_s``, or the time a ``connect()`` had left), before Secrets
    Manager had a fair chance to answer: a fact about the caller's budget, not about Secrets
    Manager, so nothing is remembered of it and other callers are not failed with it."""


class SecretAccessError(SecretsManagerError):
    """The caller may not read the secret: an IAM or resource policy denies it, its KMS key
    is disabled, deleted or not usable by the caller, or its AWS credentials are refused.
    Waiting does not fix it; the message says what does."""


class SecretDeletedError(SecretsManagerError):
    """The secret does not exist (deleted, or a wrong name, region or account), or it is
    scheduled for deletion. Waiting does not fix it; the message says what does."""


class RdsError(RotationError):
    """An RDS API call failed, or the RDS API does not know the database a tag names."""


class DatabaseError(RotationError):
    """The database could not be reached, or refused what the step needed to do."""


class UnreachableError(DatabaseError):
    """No database server answered: DNS, TCP or timeout. Worth retrying."""


class AuthenticationError(DatabaseError):
    """The server answered and refused the credential. A fact to act on, not to retry."""


class AuthMethodError(DatabaseError):
    """The server asked for an authentication method the connection does not allow (libpq's
    ``require_auth``): a cleartext password, or no password at all (``trust``). libpq refuses
    before sending anything. A server configuration problem: retrying cannot help."""


class ImpostorServerError(DatabaseError):
    """The server broke the authentication protocol: it could not prove that it knows the
    password's SCRAM verifier (a wrong server signature), or sent SCRAM or authentication
    messages no PostgreSQL server sends. Whatever answers at the host is not the database
    (a wrong DNS record, a hijacked address, a man in the middle), so no other credential is
    offered to it and nothing is retried."""


# -- why a login failed (decided in rotation.pg.login), and where the host stands ----------


class ServerUnavailableError(UnreachableError):
    """The server answered but takes no login now: it is starting up, shutting down or
    recovering (SQLSTATE 57P03), or a connection limit is reached (53300). Retried, like an
    unreachable server, until the attempts or the step's time run out."""


class LoginConfigurationError(DatabaseError):
    """No password could log in where the secret points: the database does not exist,
    pg_hba.conf rejects the login, the role is NOLOGIN or lacks CONNECT. The same for every
    credential of the secret, so neither retried nor answered by trying another one."""


class TlsError(DatabaseError):
    """TLS could not be set up as the secret asks: the server does not speak TLS, or its
    certificate is untrusted or for another host name. Retrying cannot help."""


class ReadOnlyHostError(DatabaseError):
    """The secret's host is a read-only standby, where no password can be changed."""


class ReplicaLagError(DatabaseError):
    """The new password did not reach the standby named by ``host`` within the step's
    time. Secrets Manager's re-attempt tests again."""
