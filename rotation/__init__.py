"""An engine-agnostic framework for Secrets Manager rotation functions.

The dispatcher (:class:`Rotator`) checks the event and the token's staging labels and calls
a :class:`RotationStrategy` for createSecret, setSecret and testSecret; finishSecret is label
work it does itself. See :mod:`rotation.strategy` for writing a strategy, and
:mod:`handlers` for the PostgreSQL strategies and the Lambda entrypoints built on it.

Nothing here knows an engine: an engine's settings and errors live with its strategies
(``handlers``), and what the rotation function shares with the application client (the
secret's format, the login contract) in ``rotation_contract``.
"""

from __future__ import annotations

from rotation.config import PasswordPolicy, password_policy_from_env
from rotation.dispatcher import Outcome, Rotator
from rotation.driver import LocalContext, LocalRotation, RotationFailed, RotationRun, StepRecord
from rotation.errors import (
    ConfigurationError,
    DeadlineError,
    EventError,
    RotationError,
    SecretFormatError,
    SecretsManagerError,
    StagingError,
)
from rotation.event import RotationEvent, Step, parse_event
from rotation.password import generate_password
from rotation.retry import Deadline, RetryPolicy
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretDescription, SecretVersion
from rotation.store import SecretStore, VersionCache
from rotation.strategy import (
    CreateRequest,
    CreateResult,
    RotationStrategy,
    SecretContext,
    SecretReader,
    SetRequest,
    SetResult,
    TestRequest,
    TestResult,
)

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "ConfigurationError",
    "CreateRequest",
    "CreateResult",
    "Deadline",
    "DeadlineError",
    "EventError",
    "LocalContext",
    "LocalRotation",
    "Outcome",
    "PasswordPolicy",
    "RetryPolicy",
    "RotationError",
    "RotationEvent",
    "RotationFailed",
    "RotationRun",
    "RotationStrategy",
    "Rotator",
    "SecretContext",
    "SecretDescription",
    "SecretFormatError",
    "SecretReader",
    "SecretStore",
    "SecretVersion",
    "SecretsManagerError",
    "SetRequest",
    "SetResult",
    "StagingError",
    "Step",
    "StepRecord",
    "TestRequest",
    "TestResult",
    "VersionCache",
    "generate_password",
    "parse_event",
    "password_policy_from_env",
]
