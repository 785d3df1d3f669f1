"""The rotation function's own errors, and the shared ones a strategy raises.

Every error is rooted at :class:`RotationError` (:mod:`rotation_contract.errors`, shared with
the application client), which carries the secret, the step and the client request token.
The dispatcher fills in whatever the raiser did not know and scrubs every secret value it
has seen out of the message before the error leaves the handler.

::

    RotationError
    ├── ConfigurationError, DeadlineError, SecretFormatError, SecretsManagerError (shared)
    ├── EventError              the invocation event is malformed
    └── StagingError            the token or the secret's labels do not allow this step

An engine's errors live with the engine: PostgreSQL's in :mod:`rotation_contract.pg.errors`
(logging in) and :mod:`handlers.pg_errors`.
"""

from __future__ import annotations

from rotation_contract.errors import (
    ConfigurationError,
    DeadlineError,
    RotationError,
    SecretFormatError,
    SecretsManagerError,
)

# Re-exported: a strategy's author imports every error the framework knows from here.
__all__ = [
    "ConfigurationError",
    "DeadlineError",
    "EventError",
    "RotationError",
    "SecretFormatError",
    "SecretsManagerError",
    "StagingError",
]


class EventError(RotationError):
    """The invocation event is malformed: a key is missing, mistyped or unknown, the step is not
    one of the four, or a verification event is not exactly ``{"Action":
    "VerifyCredentials", "SecretIds": [...]}`` (1 to 50 secrets).

    Fix: invoke the function with Secrets Manager's event (``Step``, ``SecretId``,
    ``ClientRequestToken``) or the verification event; ``events/`` holds one of each.
    """


class StagingError(RotationError):
    """The token or the secret's staging labels do not allow the requested step: rotation is not
    enabled, the token is not a version of the secret, its version is not AWSPENDING (the
    rotation was superseded or completed), the pending version has no value yet, or another
    rotation holds AWSPENDING (a direct rotation never takes it).

    Fix: start rotations through Secrets Manager (``rotate-secret``) or ``rotation rotate``,
    which register the token; ``rotation status SECRET`` explains a stuck rotation and prints
    the commands that finish or clear it.
    """
