"""The PostgreSQL handlers' configuration, resolved in one place: explicit argument, then
environment, then default.

Of the Lambda side, only this module and :mod:`rotation.config` (the engine-agnostic
settings: the password policy, the endpoint, the event bus) read ``os.environ`` (a test
guards it). libpq's variables and ``ROTATION_TEST_QUERY`` are parsed by
:class:`rotation_contract.pg.settings.PostgresSettings`, which reads no environment itself:
the application client shares it and resolves its own environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from rotation.errors import ConfigurationError
from rotation_contract.pg.settings import PostgresSettings

__all__ = [
    "ENV_MASTER_MANAGED_ROLES",
    "ENV_PREVIOUS_PASSWORD_TTL",
    "ENV_STRAGGLER_POLICY",
    "STRAGGLER_POLICIES",
    "ManagedRoles",
    "master_managed_roles",
    "postgres_settings",
    "previous_password_ttl",
    "straggler_policy",
]

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
# warn: log and count them, and go on (the default); refuse: fail setSecret, change nothing.
STRAGGLER_POLICIES = ("warn", "refuse")


def postgres_settings(env: Mapping[str, str] | None = None) -> PostgresSettings:
    """The PostgreSQL settings of the handlers
    (:class:`rotation_contract.pg.settings.PostgresSettings`), from ``env`` or the process
    environment.

    Raises
    ------
    ConfigurationError
        A setting that is not valid (see :meth:`PostgresSettings.from_env`).
    """
    return PostgresSettings.from_env(os.environ if env is None else env)


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
