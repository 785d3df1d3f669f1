"""An engine-agnostic framework for Secrets Manager rotation functions.

The dispatcher (:class:`Rotator`) checks the event and the token's staging labels and calls
a :class:`RotationStrategy` for createSecret, setSecret and testSecret; finishSecret is label
work it does itself. See :mod:`rotation.strategy` for writing a strategy.
"""

from rotation.config import PasswordPolicy, password_policy_from_env
from rotation.dispatcher import Outcome, Rotator
from rotation.driver import LocalContext, LocalRotation, RotationFailed, RotationRun, StepRecord
from rotation.errors import (
    AuthenticationError,
    AuthMethodError,
    ConfigurationError,
    DatabaseError,
    EventError,
    LoginConfigurationError,
    RdsError,
    ReadOnlyHostError,
    ReplicaLagError,
    RotationError,
    SecretFormatError,
    SecretsManagerError,
    ServerUnavailableError,
    StagingError,
    TlsError,
    UnreachableError,
)
from rotation.event import RotationEvent, Step, parse_event
from rotation.password import generate_password
from rotation.retry import Deadline, RetryPolicy
from rotation.secret import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    SecretDescription,
    SecretVersion,
)
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
    "AuthMethodError",
    "AuthenticationError",
    "ConfigurationError",
    "CreateRequest",
    "CreateResult",
    "DatabaseError",
    "Deadline",
    "EventError",
    "LocalContext",
    "LocalRotation",
    "LoginConfigurationError",
    "Outcome",
    "PasswordPolicy",
    "RdsError",
    "ReadOnlyHostError",
    "ReplicaLagError",
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
    "ServerUnavailableError",
    "SetRequest",
    "SetResult",
    "StagingError",
    "Step",
    "StepRecord",
    "TestRequest",
    "TestResult",
    "TlsError",
    "UnreachableError",
    "VersionCache",
    "generate_password",
    "parse_event",
    "password_policy_from_env",
]
