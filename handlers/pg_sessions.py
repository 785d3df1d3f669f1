"""Stragglers: clients still logged in as the user whose password a rotation is about to change.

Multi-user rotation changes the password of the user that is AWSPREVIOUS (``name`` ⇄
``name_clone``). A client still using that user (an ECS task started two rotations ago, a
service that caches its secret forever) keeps its open sessions, but fails at its next
login. Before setSecret changes the password, the master counts that user's sessions in
``pg_stat_activity`` (cluster-wide: every database), logs them (address, application,
since when; never a value), publishes ``StragglerSessions``, and with
``STRAGGLER_POLICY=refuse`` fails the step so that nothing changes and Secrets Manager
retries later.

What the master sees. ``pg_stat_activity`` shows every session's user and application to
everyone, but its address, start time and backend type only to a member of the session's
role or of ``pg_read_all_stats`` (checked on PostgreSQL 15 and 18: the columns are NULL).
So the count is always right; without that grant the details are not known, which is
reported once per container with the grant that fixes it, never as an error.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from handlers.pg_errors import statement_error
from rotation.metric_names import STRAGGLER_SESSIONS, STRATEGY_DIMENSION
from rotation.observability import logger, publish_count
from rotation_contract.pg.errors import DatabaseError

if TYPE_CHECKING:
    from handlers.master import MasterSession

__all__ = [
    "READ_ALL_STATS",
    "STRAGGLER_METRIC",
    "Session",
    "StragglerError",
    "Stragglers",
    "check_stragglers",
    "describe_sessions",
    "find_sessions",
    "report_open_sessions",
    "sees_all_sessions",
    "sessions_of",
]

STRAGGLER_METRIC = STRAGGLER_SESSIONS
# The grant that lets a role read other roles' sessions' details (PostgreSQL 10+).
READ_ALL_STATS = "pg_read_all_stats"
# Warned about once per container and master (host, port, user): not on every rotation.
_warned: set[tuple[str, int, str]] = set()
_warned_lock = threading.Lock()


class StragglerError(DatabaseError):
    """``STRAGGLER_POLICY=refuse`` and the user about to be changed still has sessions: multi-user
    setSecret found clients still logged in as the user whose password this rotation is about
    to change (AWSPREVIOUS's: they would fail at their next login). The message names each
    session (address, application, since when). Nothing changed.

    Fix: move those clients to AWSCURRENT (restart them, or make them re-read the secret);
    Secrets Manager's re-attempt with the same token then completes. Or set
    ``STRAGGLER_POLICY=warn`` (the default) to log them and go on.
    """


@dataclass(frozen=True)
class Session:
    """One live session; ``address`` and ``since`` are None when the master may not see
    them (see the module docstring); ``address`` is ``"local"`` for a Unix socket."""

    pid: int
    user: str
    address: str | None
    application: str
    since: datetime.datetime | None

    def describe(self) -> str:
        where = self.address or "an address hidden from the master"
        application = (
            f"application {self.application!r}" if self.application else "no application name"
        )
        since = f"since {self.since:%Y-%m-%d %H:%M:%S %Z}".strip() if self.since else "since ?"
        return f"{where}, {application}, {since}"

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "user": self.user,
            "address": self.address,
            "application": self.application,
            "since": self.since.isoformat() if self.since else None,
        }


@dataclass(frozen=True)
class Stragglers:
    """The sessions of one or more users, and whether the master could see their details."""

    sessions: tuple[Session, ...]
    visible: bool

    def of(self, user: str) -> tuple[Session, ...]:
        return tuple(s for s in self.sessions if s.user == user)


def sessions_of() -> sql.SQL:
    """Parameterised: ``(users,)``. Live client sessions of the named users, in every
    database, except our own. A session whose details are hidden has a NULL backend type:
    counted too (its user is always visible)."""
    return sql.SQL(
        "SELECT a.pid, a.usename, CASE WHEN a.client_port = -1 THEN 'local'"
        " ELSE host(a.client_addr) END, coalesce(a.application_name, ''), a.backend_start"
        " FROM pg_catalog.pg_stat_activity a"
        " WHERE a.usename = ANY(%s) AND a.pid <> pg_catalog.pg_backend_pid()"
        " AND (a.backend_type = 'client backend' OR a.backend_type IS NULL)"
        " ORDER BY a.backend_start NULLS LAST, a.pid"
    )


def sees_all_sessions() -> sql.Composed:
    """One row: whether this session may read every role's session details (a superuser,
    or a member of ``pg_read_all_stats``)."""
    return sql.SQL("SELECT pg_catalog.pg_has_role({}, 'USAGE')").format(sql.Literal(READ_ALL_STATS))


def find_sessions(master: MasterSession, users: list[str]) -> Stragglers:
    """Read the sessions of ``users``, as the master (in its own pinned transaction:
    read-only, nothing held)."""
    try:
        with master.transaction(writes=False) as conn:
            row = conn.execute(sees_all_sessions()).fetchone()
            rows = conn.execute(sessions_of(), (users,)).fetchall()
    except psycopg.Error as exc:
        raise statement_error(exc, "reading pg_stat_activity") from exc
    sessions = tuple(
        Session(int(pid), str(user), address, str(application), since)
        for pid, user, address, application, since in rows
    )
    # A member of the user's own role sees its sessions even without pg_read_all_stats:
    # what counts is whether any session's details were hidden from us.
    hidden = any(s.since is None for s in sessions)
    return Stragglers(sessions, visible=bool(row and row[0]) and not hidden)


def describe_sessions(sessions: tuple[Session, ...]) -> str:
    return "; ".join(session.describe() for session in sessions)


def _warn_hidden_once(master: MasterSession) -> None:
    key = (master.info.host, master.info.port, master.info.user)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(
        "the master cannot see other roles' session details (address, start time) in "
        "pg_stat_activity; sessions are counted, not described. To see them: "
        f"GRANT {READ_ALL_STATS} TO {master.info.user}",
        extra={"master": master.info.user},
    )


def check_stragglers(master: MasterSession, *, user: str, policy: str, strategy: str) -> Stragglers:
    """Count, log and publish ``user``'s live sessions, as the master, before its password
    changes; with ``policy`` ``refuse`` and any session found, raise.

    Raises
    ------
    StragglerError
        ``policy`` is ``refuse`` and ``user`` has sessions: nothing was changed.
    """
    found = find_sessions(master, [user])
    if not found.visible:
        _warn_hidden_once(master)
    count = len(found.sessions)
    publish_count(STRAGGLER_METRIC, count, {STRATEGY_DIMENSION: strategy})
    if not count:
        return found
    logger.warning(
        "clients are still logged in as the user whose password this rotation changes",
        extra={
            "user": user,
            "sessions": count,
            "policy": policy,
            "stragglers": [session.as_json() for session in found.sessions],
        },
    )
    if policy == "refuse":
        raise StragglerError(
            f"{count} session{'s' if count != 1 else ''} still logged in as {user!r} (the "
            "AWSPREVIOUS user, whose password this rotation would change): "
            f"{describe_sessions(found.sessions)}. STRAGGLER_POLICY=refuse, so nothing was "
            "changed; Secrets Manager retries the rotation later with the same token, and it "
            "completes once these clients have moved to AWSCURRENT (restart them, or make "
            "them re-read the secret). To rotate anyway, set STRAGGLER_POLICY=warn; those "
            "clients then fail at their next login"
        )
    return found


def report_open_sessions(
    master: MasterSession, *, user: str, valid_until: str, strategy: str
) -> Stragglers:
    """finishSecret with ``PREVIOUS_PASSWORD_TTL``: count the sessions still open as the
    user whose password now expires, warn with the expiry time, and publish
    ``StragglerSessions`` (dimension ``Step=finishSecret``, the time as metadata). Their
    open sessions go on; their next login after ``valid_until`` fails."""
    found = find_sessions(master, [user])
    count = len(found.sessions)
    publish_count(
        STRAGGLER_METRIC,
        count,
        {"Strategy": strategy, "Step": "finishSecret"},
        metadata={"PreviousPasswordValidUntil": valid_until, "User": user},
    )
    if count:
        logger.warning(
            f"clients are still logged in as the previous user, whose password stops "
            f"logging in at {valid_until} (PREVIOUS_PASSWORD_TTL): their open sessions go "
            "on, their next login after that fails; move them to AWSCURRENT",
            extra={
                "user": user,
                "sessions": count,
                "valid_until": valid_until,
                "stragglers": [session.as_json() for session in found.sessions],
            },
        )
    return found
