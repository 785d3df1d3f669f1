"""The Lambda side's configuration, resolved in one place: explicit argument, then
environment, then default.

Of the Lambda side (``rotation``'s framework modules and ``handlers``), only this module
reads ``os.environ`` (a test guards it). Every environment variable of the outside contract
is named once: the framework's here, the PostgreSQL ones (libpq's and
``ROTATION_TEST_QUERY``) in :mod:`rotation_contract.pg.settings`, which parses a mapping it is given
and reads no environment itself: the application client shares it and resolves its own
environment (:mod:`rotation_client`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rotation.errors import ConfigurationError
from rotation_contract.secrets_manager import ENV_ENDPOINT, endpoint_from

__all__ = [
    "ENV_ENDPOINT",
    "ENV_EVENT_BUS_NAME",
    "ENV_EXCLUDE_CHARACTERS",
    "ENV_EXCLUDE_LOWERCASE",
    "ENV_EXCLUDE_NUMBERS",
    "ENV_EXCLUDE_PUNCTUATION",
    "ENV_EXCLUDE_UPPERCASE",
    "ENV_PASSWORD_LENGTH",
    "ENV_REQUIRE_EACH_INCLUDED_TYPE",
    "PasswordPolicy",
    "event_bus_name",
    "parse_bool",
    "password_policy_from_env",
    "secrets_manager_endpoint",
]

ENV_EXCLUDE_CHARACTERS = "EXCLUDE_CHARACTERS"
ENV_PASSWORD_LENGTH = "PASSWORD_LENGTH"  # noqa: S105  # a variable name, not a password
ENV_EXCLUDE_NUMBERS = "EXCLUDE_NUMBERS"
ENV_EXCLUDE_PUNCTUATION = "EXCLUDE_PUNCTUATION"
ENV_EXCLUDE_UPPERCASE = "EXCLUDE_UPPERCASE"
ENV_EXCLUDE_LOWERCASE = "EXCLUDE_LOWERCASE"
ENV_REQUIRE_EACH_INCLUDED_TYPE = "REQUIRE_EACH_INCLUDED_TYPE"
# Ours: where rotation events go (none when unset).
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"

# The AWS reference functions' defaults, kept so that a function configuration moves over
# unchanged.
DEFAULT_EXCLUDE_CHARACTERS = ":/@\"'\\"
DEFAULT_PASSWORD_LENGTH = 32
# GetRandomPassword's own upper bound; a longer password is almost certainly a typo.
MAX_PASSWORD_LENGTH = 4096

_TRUE = frozenset({"true", "1", "y", "yes"})
_FALSE = frozenset({"false", "0", "n", "no", ""})


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    """Read a boolean the way the contract spells it: ``true``, ``1``, ``y``, ``yes`` (any case).

    The AWS reference treats every other value as false. We accept the usual false
    spellings and refuse anything else, because a typo that silently flips a password
    policy is worse than a clear configuration error.
    """
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(
        f"environment variable {name} must be true/false (true, 1, y, yes / false, 0, n, no), "
        f"got {raw!r}"
    )


@dataclass(frozen=True)
class PasswordPolicy:
    """What a generated password looks like; mirrors GetRandomPassword's parameters."""

    length: int = DEFAULT_PASSWORD_LENGTH
    exclude_characters: str = DEFAULT_EXCLUDE_CHARACTERS
    exclude_numbers: bool = False
    exclude_punctuation: bool = False
    exclude_uppercase: bool = False
    exclude_lowercase: bool = False
    require_each_included_type: bool = True


def _parse_length(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return DEFAULT_PASSWORD_LENGTH
    try:
        length = int(raw.strip())
    except ValueError as exc:
        raise ConfigurationError(
            f"environment variable {ENV_PASSWORD_LENGTH} must be a whole number, got {raw!r}"
        ) from exc
    if not 1 <= length <= MAX_PASSWORD_LENGTH:
        raise ConfigurationError(
            f"environment variable {ENV_PASSWORD_LENGTH} must be between 1 and "
            f"{MAX_PASSWORD_LENGTH}, got {length}"
        )
    return length


def password_policy_from_env(env: Mapping[str, str] | None = None) -> PasswordPolicy:
    """Build the password policy from the contract's environment variables.

    Raises
    ------
    ConfigurationError
        A length that is not a number in 1..4096 or a boolean that is not one.
        (Whether the policy leaves any character to draw from is checked by
        :func:`rotation.password.generate_password`, which knows the character classes.)
    """
    env = os.environ if env is None else env
    return PasswordPolicy(
        length=_parse_length(env.get(ENV_PASSWORD_LENGTH)),
        exclude_characters=env.get(ENV_EXCLUDE_CHARACTERS, DEFAULT_EXCLUDE_CHARACTERS),
        exclude_numbers=parse_bool(ENV_EXCLUDE_NUMBERS, env.get(ENV_EXCLUDE_NUMBERS), False),
        exclude_punctuation=parse_bool(
            ENV_EXCLUDE_PUNCTUATION, env.get(ENV_EXCLUDE_PUNCTUATION), False
        ),
        exclude_uppercase=parse_bool(ENV_EXCLUDE_UPPERCASE, env.get(ENV_EXCLUDE_UPPERCASE), False),
        exclude_lowercase=parse_bool(ENV_EXCLUDE_LOWERCASE, env.get(ENV_EXCLUDE_LOWERCASE), False),
        require_each_included_type=parse_bool(
            ENV_REQUIRE_EACH_INCLUDED_TYPE, env.get(ENV_REQUIRE_EACH_INCLUDED_TYPE), True
        ),
    )


def secrets_manager_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The Secrets Manager endpoint URL, or None to let boto3 resolve it.

    boto3's own resolution includes ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and
    ``AWS_ENDPOINT_URL``, which is why an unset variable must not become a default here.
    """
    return endpoint_from(os.environ if env is None else env)


def event_bus_name(env: Mapping[str, str] | None = None) -> str | None:
    """``EVENT_BUS_NAME``: the EventBridge bus rotation events go to (a name or an ARN), or
    None when unset or empty: no events."""
    env = os.environ if env is None else env
    value = env.get(ENV_EVENT_BUS_NAME, "").strip()
    return value or None
