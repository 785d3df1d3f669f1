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


class SecretFormatError(RotationError):
    """A secret value is not a JSON object, or lacks or mistypes a required field."""


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
