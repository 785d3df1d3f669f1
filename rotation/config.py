"""The Lambda side's configuration, resolved in one place: explicit argument, then
environment, then default.

Of the Lambda side (``rotation``'s framework modules and ``handlers``), only this module
reads ``os.environ`` (a test guards it). Every environment variable of the outside contract
is named once: the framework's here, the PostgreSQL ones (libpq's and
``ROTATION_TEST_QUERY``) in :mod:`rotation.pg.settings`, which parses a mapping it is given
and reads no environment itself: the application client shares it and resolves its own
environment (:mod:`rotation.client`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rotation.errors import ConfigurationError
from rotation.pg.settings import PostgresSettings

__all__ = [
    "ENV_ENDPOINT",
    "ENV_EVENT_BUS_NAME",
    "ENV_EXCLUDE_CHARACTERS",
    "ENV_EXCLUDE_LOWERCASE",
    "ENV_EXCLUDE_NUMBERS",
    "ENV_EXCLUDE_PUNCTUATION",
    "ENV_EXCLUDE_UPPERCASE",
    "ENV_MASTER_MANAGED_ROLES",
    "ENV_PASSWORD_LENGTH",
    "ENV_PREVIOUS_PASSWORD_TTL",
    "ENV_REQUIRE_EACH_INCLUDED_TYPE",
    "ENV_STRAGGLER_POLICY",
    "STRAGGLER_POLICIES",
    "ManagedRoles",
    "PasswordPolicy",
    "event_bus_name",
    "master_managed_roles",
    "parse_bool",
    "password_policy_from_env",
    "postgres_settings",
    "previous_password_ttl",
    "secrets_manager_endpoint",
    "straggler_policy",
]

ENV_ENDPOINT = "SECRETS_MANAGER_ENDPOINT"
ENV_EXCLUDE_CHARACTERS = "EXCLUDE_CHARACTERS"
ENV_PASSWORD_LENGTH = "PASSWORD_LENGTH"  # noqa: S105  # a variable name, not a password
ENV_EXCLUDE_NUMBERS = "EXCLUDE_NUMBERS"
ENV_EXCLUDE_PUNCTUATION = "EXCLUDE_PUNCTUATION"
ENV_EXCLUDE_UPPERCASE = "EXCLUDE_UPPERCASE"
ENV_EXCLUDE_LOWERCASE = "EXCLUDE_LOWERCASE"
ENV_REQUIRE_EACH_INCLUDED_TYPE = "REQUIRE_EACH_INCLUDED_TYPE"
# The roles the master may give a password without a login as them in this rotation
# (single-user recovery, `rotation verify --reconcile`); see handlers.pg_authority.
ENV_MASTER_MANAGED_ROLES = "MASTER_MANAGED_ROLES"
# Multi-user: seconds after finishSecret after which AWSPREVIOUS's password stops logging
# in (PostgreSQL's VALID UNTIL); unset, it works until the next rotation. See the README.
ENV_PREVIOUS_PASSWORD_TTL = "PREVIOUS_PASSWORD_TTL"  # noqa: S105  # a variable name
# A year: a longer window is almost certainly a unit mistake (minutes, milliseconds).
MAX_PREVIOUS_PASSWORD_TTL = 366 * 24 * 3600
# Ours, not the contract's: what multi-user setSecret does when clients are still logged in
# as the user whose password it is about to change, and where rotation events go.
ENV_STRAGGLER_POLICY = "STRAGGLER_POLICY"
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"
# warn: log and count them, and go on (the default); refuse: fail setSecret, change nothing.
STRAGGLER_POLICIES = ("warn", "refuse")

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


def postgres_settings(env: Mapping[str, str] | None = None) -> PostgresSettings:
    """The PostgreSQL settings of the handlers (see :class:`rotation.pg.settings.PostgresSettings`),
    from ``env`` or the process environment.

    Raises
    ------
    ConfigurationError
        A setting that is not valid (see :meth:`PostgresSettings.from_env`).
    """
    return PostgresSettings.from_env(os.environ if env is None else env)


def secrets_manager_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """The Secrets Manager endpoint URL, or None to let boto3 resolve it.

    boto3's own resolution includes ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and
    ``AWS_ENDPOINT_URL``, which is why an unset variable must not become a default here.
    """
    env = os.environ if env is None else env
    value = env.get(ENV_ENDPOINT, "").strip()
    return value or None


def straggler_policy(env: Mapping[str, str] | None = None) -> str:
    """``STRAGGLER_POLICY``: ``warn`` (the default) or ``refuse``, any case.

    Raises
    ------
    ConfigurationError
        Any other value: a typo must not silently mean "warn" (or "refuse").
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_STRAGGLER_POLICY, "")
    value = raw.strip().lower() or STRAGGLER_POLICIES[0]
    if value not in STRAGGLER_POLICIES:
        raise ConfigurationError(
            f"environment variable {ENV_STRAGGLER_POLICY} must be one of "
            f"{', '.join(STRAGGLER_POLICIES)}, got {raw!r}"
        )
    return value


def previous_password_ttl(env: Mapping[str, str] | None = None) -> int | None:
    """``PREVIOUS_PASSWORD_TTL``: whole seconds (``0`` allowed), or None when unset or empty.

    Raises
    ------
    ConfigurationError
        Not a whole number of seconds between 0 and a year (``30s``, ``-1``, ``1.5``): a
        typo must neither turn the expiry off nor expire the previous password at once.
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_PREVIOUS_PASSWORD_TTL, "")
    value = raw.strip()
    if not value:
        return None
    if not value.isdigit() or int(value) > MAX_PREVIOUS_PASSWORD_TTL:
        raise ConfigurationError(
            f"environment variable {ENV_PREVIOUS_PASSWORD_TTL} must be a whole number of "
            f"seconds from 0 to {MAX_PREVIOUS_PASSWORD_TTL} (or unset: the previous password "
            f"works until the next rotation), got {raw!r}"
        )
    return int(value)


def event_bus_name(env: Mapping[str, str] | None = None) -> str | None:
    """``EVENT_BUS_NAME``: the EventBridge bus rotation events go to (a name or an ARN), or
    None when unset or empty: no events."""
    env = os.environ if env is None else env
    value = env.get(ENV_EVENT_BUS_NAME, "").strip()
    return value or None


@dataclass(frozen=True)
class ManagedRoles:
    """``MASTER_MANAGED_ROLES``: the roles the master may give a password without a login as
    them in this rotation. Names match exactly (PostgreSQL role names are case-sensitive);
    an entry ending in ``*`` matches every name that starts with what precedes it.

    It only ever *narrows* what the master may do: the master's own role and privileged
    roles are refused whatever it lists (:mod:`handlers.pg_authority`).
    """

    entries: tuple[str, ...] = ()
    # Where the list came from, for messages ("the function's environment", "--master-...").
    source: str = f"environment variable {ENV_MASTER_MANAGED_ROLES}"

    @property
    def is_set(self) -> bool:
        return bool(self.entries)

    def allows(self, role: str) -> bool:
        """Whether ``role`` is listed (exactly, or under a ``prefix*`` entry)."""
        for entry in self.entries:
            if entry.endswith("*"):
                if role.startswith(entry[:-1]):
                    return True
            elif role == entry:
                return True
        return False

    @classmethod
    def parse(cls, raw: str | None, *, source: str | None = None) -> ManagedRoles:
        """Read the comma-separated list (blank entries and surrounding spaces ignored).

        Raises
        ------
        ConfigurationError
            A ``*`` anywhere but at the end of an entry, or an entry that is only ``*``: a
            list that names every role is the unguarded recovery this variable replaces.
        """
        where = source or cls.source
        entries = tuple(item.strip() for item in (raw or "").split(",") if item.strip())
        for entry in entries:
            if "*" in entry[:-1]:
                raise ConfigurationError(
                    f"{where} may end an entry with '*' (a prefix), nowhere else; got {entry!r}"
                )
            if entry == "*":
                raise ConfigurationError(
                    f"{where} may not be '*' alone: that would let whoever writes a secret "
                    "point the master at any role. List the roles (or a prefix such as "
                    "'app_*') the master may repair"
                )
        return cls(entries, where)


def master_managed_roles(
    env: Mapping[str, str] | None = None, *, explicit: str | None = None
) -> ManagedRoles:
    """``MASTER_MANAGED_ROLES`` (or ``explicit``, the command's option, when given).

    Raises
    ------
    ConfigurationError
        A malformed list (see :meth:`ManagedRoles.parse`).
    """
    if explicit is not None:
        return ManagedRoles.parse(explicit, source="option --master-managed-roles")
    env = os.environ if env is None else env
    return ManagedRoles.parse(env.get(ENV_MASTER_MANAGED_ROLES))
