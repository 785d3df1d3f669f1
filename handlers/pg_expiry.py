"""Bounded overlap: the previous user's password expires (``PREVIOUS_PASSWORD_TTL``).

Multi-user rotation leaves AWSPREVIOUS's password working until the next rotation. With the
variable set, finishSecret gives that user a ``VALID UNTIL`` at most N seconds ahead, after
AWSCURRENT has moved. PostgreSQL checks ``VALID UNTIL`` at password login, so nothing has to
run later; sessions already open are not ended.

Telling the rotation's expiry from the operator's. An operator may set ``VALID UNTIL`` on the
user, and AWSCURRENT must carry that after every rotation, never the rotation's. A rotation's
expiry is marked in the value itself: its fraction of a second is always
:data:`MARK_MICROSECONDS` (``.271828``), which no hand-typed timestamp has. The mark lives in
the same catalog field as the expiry, so it is written and read atomically with it, needs no
privilege beyond ``ALTER ROLE``, no object of ours in the database, and survives restarts,
replicas and ``pg_dumpall``. (A role comment would collide with the operator's comments; a
custom setting needs ``GRANT SET ON PARAMETER``; the master cannot read ``pg_authid``.)

Where the operator's value is while the rotation's expiry sits on a user: on the *clone*,
the operator's value is the owner's (parity copies it each time the clone rotates in); on
the *owner*, it was copied to the clone in the very rotation that expired the owner. So the
operator's intent for the pair is the owner's value unless marked, else the clone's unless
marked, else no expiry (:func:`operator_validity`). Whenever a user is rotated in (setSecret),
it gets that value; AWSCURRENT never keeps a marked value (healed wherever the master
meets one).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import psycopg

from handlers.pg_authorised import AuthorisedRole
from handlers.pg_sql import role_limits, rotation_expiry, set_valid_until

__all__ = [
    "MARK_MICROSECONDS",
    "NO_EXPIRY",
    "Validity",
    "expiry_time",
    "is_rotation_expiry",
    "new_expiry",
    "operator_validity",
    "read_validity",
    "set_validity",
]

# The fraction of a second that marks a rotation's expiry (see the module docstring).
MARK_MICROSECONDS = 271828
_MARK_SUFFIX = f".{MARK_MICROSECONDS:06d}Z"
# How pg_sql.role_limits spells "no expiry" (NULL, or 'infinity').
NO_EXPIRY = "infinity"


def is_rotation_expiry(valid_until: str) -> bool:
    """Whether a validity (as :func:`handlers.pg_sql.role_limits` spells it) is a rotation's."""
    return valid_until.endswith(_MARK_SUFFIX)


def expiry_time(valid_until: str) -> datetime.datetime | None:
    """A finite validity as an aware datetime (UTC); None for ``infinity``/``-infinity``."""
    if not valid_until.endswith("Z"):
        return None
    return datetime.datetime.strptime(valid_until, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.UTC
    )


def operator_validity(owner: str, clone: str | None) -> str:
    """The operator's validity for a pair: the owner's unless it is a rotation's expiry,
    else the clone's (parity copied the owner's there) unless that is one too, else none."""
    if not is_rotation_expiry(owner):
        return owner
    if clone is not None and not is_rotation_expiry(clone):
        return clone
    return NO_EXPIRY


@dataclass(frozen=True)
class Validity:
    """``VALID UNTIL`` of each role of a pair that exists (spelt as ``role_limits`` does)."""

    by_role: dict[str, str]

    def of(self, role: str) -> str | None:
        return self.by_role.get(role)


def read_validity(conn: psycopg.Connection[Any], roles: list[str]) -> Validity:
    """One catalog query (``pg_roles``: readable by every role)."""
    return Validity({str(row[0]): str(row[2]) for row in conn.execute(role_limits(), (roles,))})


def new_expiry(conn: psycopg.Connection[Any], seconds: int) -> str:
    """The marked expiry at most ``seconds`` ahead on the server's clock."""
    row = conn.execute(rotation_expiry(), (seconds, MARK_MICROSECONDS)).fetchone()
    assert row is not None  # noqa: S101  # a SELECT of an expression returns one row
    value = str(row[0])
    assert is_rotation_expiry(value), value  # noqa: S101  # the SQL builds the mark
    return value


def set_validity(conn: psycopg.Connection[Any], target: AuthorisedRole, valid_until: str) -> None:
    """``ALTER ROLE ... VALID UNTIL`` (the guard's token, as every role change)."""
    conn.execute(set_valid_until(target, valid_until))
