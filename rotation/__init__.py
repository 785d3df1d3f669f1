"""An engine-agnostic framework for Secrets Manager rotation functions.

The dispatcher (:class:`Rotator`) checks the event and the token's staging labels and calls
a :class:`RotationStrategy` for createSecret, setSecret and testSecret; finishSecret is label
work it does itself. See :mod:`rotation.strategy` for writing a strategy.

Importing the package itself loads nothing: each name below loads its module on first use
(PEP 562), so ``import rotation.client`` in an application loads none of the Lambda side.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rotation.config import PasswordPolicy, password_policy_from_env
    from rotation.dispatcher import Outcome, Rotator
    from rotation.driver import LocalContext, LocalRotation, RotationFailed, RotationRun, StepRecord
    from rotation.errors import (
        AuthenticationError,
        AuthMethodError,
        ConfigurationError,
        DatabaseError,
        DeadlineError,
        EventError,
        ImpostorServerError,
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

# Each public name and the module that defines it.
_MODULE_OF: dict[str, str] = {
    "AWSCURRENT": "rotation.secret",
    "AWSPENDING": "rotation.secret",
    "AWSPREVIOUS": "rotation.secret",
    "AuthMethodError": "rotation.errors",
    "AuthenticationError": "rotation.errors",
    "ConfigurationError": "rotation.errors",
    "CreateRequest": "rotation.strategy",
    "CreateResult": "rotation.strategy",
    "DatabaseError": "rotation.errors",
    "Deadline": "rotation.retry",
    "DeadlineError": "rotation.errors",
    "EventError": "rotation.errors",
    "ImpostorServerError": "rotation.errors",
    "LocalContext": "rotation.driver",
    "LocalRotation": "rotation.driver",
    "LoginConfigurationError": "rotation.errors",
    "Outcome": "rotation.dispatcher",
    "PasswordPolicy": "rotation.config",
    "RdsError": "rotation.errors",
    "ReadOnlyHostError": "rotation.errors",
    "ReplicaLagError": "rotation.errors",
    "RetryPolicy": "rotation.retry",
    "RotationError": "rotation.errors",
    "RotationEvent": "rotation.event",
    "RotationFailed": "rotation.driver",
    "RotationRun": "rotation.driver",
    "RotationStrategy": "rotation.strategy",
    "Rotator": "rotation.dispatcher",
    "SecretContext": "rotation.strategy",
    "SecretDescription": "rotation.secret",
    "SecretFormatError": "rotation.errors",
    "SecretReader": "rotation.strategy",
    "SecretStore": "rotation.store",
    "SecretVersion": "rotation.secret",
    "SecretsManagerError": "rotation.errors",
    "ServerUnavailableError": "rotation.errors",
    "SetRequest": "rotation.strategy",
    "SetResult": "rotation.strategy",
    "StagingError": "rotation.errors",
    "Step": "rotation.event",
    "StepRecord": "rotation.driver",
    "TestRequest": "rotation.strategy",
    "TestResult": "rotation.strategy",
    "TlsError": "rotation.errors",
    "UnreachableError": "rotation.errors",
    "VersionCache": "rotation.store",
    "generate_password": "rotation.password",
    "parse_event": "rotation.event",
    "password_policy_from_env": "rotation.config",
}

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
    "DeadlineError",
    "EventError",
    "ImpostorServerError",
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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'rotation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
