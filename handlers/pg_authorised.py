"""The token the master's guard hands out: a role the master may change, and why.

Every statement builder in :mod:`handlers.pg_sql` that changes a role (``ALTER ROLE``,
``CREATE ROLE``, ``GRANT ... TO``, ``REVOKE ... FROM``) takes an :class:`AuthorisedRole`, not
a name: code that never asked the guard (:mod:`handlers.pg_authority`) has nothing to pass.
The token is sealed: only the guard holds the seal, so constructing one elsewhere raises
(and ``tests/unit/test_authority_boundary.py`` checks the source for such attempts too).

It lives apart from the guard because the guard reads the catalog through
:mod:`handlers.pg_sql`, which needs this type: one module each way, no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CLONE_SUFFIX", "AuthorisedRole"]

# Multi-user's pair is ``<owner>`` and ``<owner>_clone`` (re-exported by handlers.multi_user).
CLONE_SUFFIX = "_clone"

# Held by handlers.pg_authority only; see the module docstring.
_SEAL = object()


@dataclass(frozen=True)
class AuthorisedRole:
    """A role the guard allowed the current session to change.

    ``grounds`` says why, in words for logs and messages (``"its own login"``,
    ``"listed in MASTER_MANAGED_ROLES"``, ...); never a secret value. ``display_only`` marks
    a token made for ``rotation plan``'s rendering, which executes nothing.
    """

    role: str
    grounds: str
    display_only: bool = False
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise TypeError(
                "an AuthorisedRole comes from handlers.pg_authority's guard only; "
                "ask the guard for one"
            )
