"""The errors both sides of a rotation raise: the rotation function and the application client.

Every error is rooted at :class:`RotationError` and carries the secret, the step and the
client request token it happened in, so that the single line Secrets Manager records for a
failed invocation says where it failed. No error ever carries a secret value: the raisers
use context-free messages, and the rotation function's dispatcher fills in the context and
scrubs every secret value it has seen out of the message before the error leaves the handler.

::

    RotationError
    ├── ConfigurationError      the caller's own settings (env vars, arguments) are wrong
    ├── DeadlineError           the time ran out before an operation could start
    │   └── ConnectTimeoutError the application client's connect() ran out of its budget
    ├── SecretFormatError       a secret value is not JSON or lacks / mistypes a field
    └── SecretsManagerError     a Secrets Manager call failed (permissions, KMS, throttling)
        ├── SecretsManagerUnavailableError  unreachable, throttled, timed out, 5xx: transient
        │   └── SecretReadTimeoutError  the caller's own time ran out during a read
        ├── SecretAccessError   the caller may not read it: IAM, the KMS key, credentials
        └── SecretDeletedError  the secret does not exist, or is scheduled for deletion

The errors of logging in to PostgreSQL are in :mod:`rotation_contract.pg.errors`; the
rotation function's own (a malformed event, the labels) in :mod:`rotation.errors`.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConnectTimeoutError",
    "DeadlineError",
    "RotationError",
    "SecretAccessError",
    "SecretDeletedError",
    "SecretFormatError",
    "SecretReadTimeoutError",
    "SecretsManagerError",
    "SecretsManagerUnavailableError",
]


class RotationError(Exception):
    """Root of every error this framework raises, on both sides: the rotation function and the
    application client. Its message names the secret, the step and the token it happened in,
    and never a secret value.

    Fix: the subclass raised says: each class's entry in the error catalogue, and the
    message, which states the fix for its cause.

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
    """The configuration is invalid: an environment variable with a value it cannot take (a
    ``PASSWORD_LENGTH`` of 0, a boolean spelled ``maybe``, every character class excluded, a
    ``PGSSLROOTCERT`` that is not a file, an unknown ``STRAGGLER_POLICY``), or an argument a
    function refuses. Nothing was changed.

    Fix: set the variable or argument the message names to a value it takes (the configuration
    reference lists each variable with its values and default).
    """


class DeadlineError(RotationError):
    """The step's time ran out before an operation could start: nothing was sent.

    Fix: usually none: Secrets Manager's re-attempt continues the rotation with the same token.
    If it recurs, raise the function's timeout (``FunctionTimeout``, 60 s by default) or fix
    what used the time (the message names the call that was not started).
    """


class ConnectTimeoutError(DeadlineError):
    """The application client's ``connect()`` ran out of its budget (``ConnectRetry.timeout_s``,
    or the caller's ``timeout_s``) before a login could finish: none was started in too little
    time, or the database's host name or the server did not answer within the time left. The
    message names the budget, what used it (the Secrets Manager reads, the DNS resolver, the
    server) and the fix.

    Fix: give ``connect()`` a larger budget (``ConnectRetry(timeout_s=...)`` or
    ``timeout_s=``), or make the slow part the message names answer sooner.
    """


class SecretFormatError(RotationError):
    """A secret value is not a JSON object, or lacks or mistypes a required field, or names
    another engine; or a version points at another host, port, database or user than
    AWSCURRENT (a confused deputy), or asks for weaker TLS than AWSCURRENT's. The message
    names the version and the field, never the password. Nothing was written.

    Fix: correct the secret's value as the message says (the configuration reference lists
    the keys); for a version planted with another target, remove its label
    (``update-secret-version-stage``) and rotate again.
    """


class SecretsManagerError(RotationError):
    """A Secrets Manager call failed for a reason other than the secret's labels; its subclasses
    tell a transient failure from one that waiting does not fix.

    Fix: as the message says: it names the call, AWS's error code and the fix for it (a
    permission of the function's role, the KMS key, the endpoint).
    """


class SecretsManagerUnavailableError(SecretsManagerError):
    """Secrets Manager did not answer in time, could not be reached, throttled the call or failed
    on its side (5xx): transient. The application client serves the value it read before, if
    any.

    Fix: usually none: the re-attempt (or the client's next read) goes through. If it
    persists, the network path to Secrets Manager (a VPC interface endpoint or NAT gateway,
    security groups, ``SECRETS_MANAGER_ENDPOINT``), or the account's API rate when throttled.
    """


class SecretReadTimeoutError(SecretsManagerUnavailableError):
    """The application client's read of a secret ended because its caller's time ran out
    (``ConnectRetry.timeout_s``, or the time a ``connect()`` had left), before Secrets Manager
    had a fair chance to answer: a fact about the caller's budget, not about Secrets Manager,
    so nothing is remembered of it and other callers are not failed with it.

    Fix: give the call more time (``ConnectRetry(timeout_s=...)`` or ``timeout_s=``).
    """


class SecretAccessError(SecretsManagerError):
    """The caller may not read the secret: an IAM or resource policy denies it, its KMS key is
    disabled, deleted or not usable by the caller, or its AWS credentials are refused. Waiting
    does not fix it.

    Fix: as the message says: allow ``secretsmanager:GetSecretValue`` on the secret (the
    role's policy, the secret's resource policy), let the caller use the KMS key
    (``kms:Decrypt``; the key enabled, not pending deletion), or renew the AWS credentials.
    """


class SecretDeletedError(SecretsManagerError):
    """The secret does not exist (deleted, or a wrong name, region or account), or it is
    scheduled for deletion. Waiting does not fix it.

    Fix: check the secret's name or ARN, the region and the account; restore a secret
    scheduled for deletion (``aws secretsmanager restore-secret``).
    """
