"""The master's authority: the one guard every change the master makes passes through.

The master credential (``masterarn``) can change almost any role; whoever can write a secret
chooses which role the secret *names*. So the master is a deputy, and this module decides,
on the master's own session and inside the transaction that makes the change, whether it may
act on the role a secret names. The rule (the outside contract, *The master's authority*):

1. **Never the master itself**: not its own role (``session_user``, which ``SET ROLE`` does
   not change), and not a pair whose owner it is.
2. **Never a privileged role**: one that has ``SUPERUSER``, ``CREATEROLE``, ``BYPASSRLS`` or
   ``REPLICATION``, or is a member, directly or not (any grant, whatever its options), of a
   role that has them or of one of :data:`PRIVILEGED_ROLE_NAMES` (roles whose power the
   catalog's attributes do not show: ``rds_superuser`` and other providers' administrator
   roles), or of any predefined ``pg_*`` role but the read-only monitoring ones
   (:data:`MONITORING_ROLE_NAMES`). For a pair,
   the owner is checked as well: the clone acts as the owner.
3. **Only with grounds**, one of:

   - *proven*: multi-user rotation. The user whose AWSCURRENT password logged in during
     this rotation names its pair; the master changes the other user of that pair only.
   - *managed*: the role is listed in ``MASTER_MANAGED_ROLES`` (single-user recovery and
     ``rotation verify --reconcile``). Unset, nothing is allowed on these grounds.

4. **Only a real pair**: the clone ``<owner>_clone`` is that owner's clone when it exists
   and is a direct member of the owner (``GRANT owner TO clone``: the grant both this
   function and AWS's reference function make; a name alone proves nothing, and only someone
   with authority over the owner can make that grant). A clone that does not exist is
   created only by multi-user setSecret, whose grounds are a login as the owner in this
   rotation; everywhere else a missing role is reported, never created.

The guard returns a sealed :class:`~handlers.pg_authorised.AuthorisedRole`; every builder in
:mod:`handlers.pg_sql` that changes a role takes one, so a change that did not ask the guard
cannot be written (``tests/unit/test_authority_boundary.py`` holds the source to it).

Cost: two catalog queries on the master's session (``session_user`` and one recursive
membership query), three with a pair; no extra connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from handlers.pg_authorised import _SEAL, AuthorisedRole
from handlers.pg_config import ENV_MASTER_MANAGED_ROLES, ManagedRoles
from handlers.pg_sql import PINNED_SEARCH_PATH, is_member_of, privileged_closure, session_role
from rotation_contract.pg.errors import DatabaseError

__all__ = [
    "MONITORING_ROLE_NAMES",
    "PREDEFINED_PREFIX",
    "PRIVILEGED_ATTRIBUTES",
    "PRIVILEGED_ROLE_NAMES",
    "AuthorityError",
    "MasterAction",
    "PairError",
    "authorise",
    "is_privileged_name",
    "own_login",
    "planned",
    "precheck",
]

# The attributes the contract names, as pg_roles spells the columns.
PRIVILEGED_ATTRIBUTES = ("SUPERUSER", "CREATEROLE", "BYPASSRLS", "REPLICATION")
# Roles whose power the catalog's attributes do not show. RDS grants its master
# rds_superuser, whose powers its patched server checks by name (and rds_password may set
# any role's password when rds.restrict_password_commands is on); Azure, Cloud SQL and
# AlloyDB have their own. The predefined roles are covered by PREDEFINED_PREFIX below; the
# three named here reach the server's files and programs (equivalent to superuser, says
# PostgreSQL's documentation) and are listed for the record.
PRIVILEGED_ROLE_NAMES = (
    "alloydbsuperuser",
    "azure_pg_admin",
    "cloudsqlsuperuser",
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_write_server_files",
    "rds_password",
    "rds_replication",
    "rds_superuser",
)
# Every predefined role (PostgreSQL reserves the prefix: no one can CREATE ROLE pg_x) is
# privileged, except the read-only monitoring ones below. The others read or write every
# table (pg_read_all_data, pg_write_all_data), end other roles' sessions
# (pg_signal_backend, pg_signal_autovacuum_worker), lock or maintain every table
# (pg_maintain), open connections from the server (pg_create_subscription), take reserved
# connection slots or force checkpoints (pg_use_reserved_connections, pg_checkpoint), or
# reach files and programs. Failing closed: a predefined role a later PostgreSQL adds is
# privileged until this list says otherwise.
PREDEFINED_PREFIX = "pg_"
# Read-only views of statistics and settings, which change nothing and read no table's
# rows; monitoring agents' roles hold them, and their passwords are what an operator may
# well list for the master to repair. (pg_read_all_stats shows other sessions' query text:
# the price of monitoring, not the master's to judge.)
MONITORING_ROLE_NAMES = (
    "pg_monitor",
    "pg_read_all_settings",
    "pg_read_all_stats",
    "pg_stat_scan_tables",
)
_MANAGED_HELP = (
    f"{ENV_MASTER_MANAGED_ROLES} (comma-separated role names; a trailing '*' matches a "
    "prefix) lists the roles the master may give a password without a login as them in "
    "this rotation"
)


class AuthorityError(DatabaseError):
    """The master was asked to change a role it has no authority over: its own role, a
    privileged role (``SUPERUSER``, ``CREATEROLE``, ``BYPASSRLS``, ``REPLICATION``, a member of
    one or of ``rds_superuser``), or, in single-user recovery or reconcile, a role
    ``MASTER_MANAGED_ROLES`` does not list. Nothing changed.

    Fix: point the secret at the application's own user; a privileged role rotates with its
    own credential (single-user) or by hand. For recovery, list the role (or its prefix) in
    ``MASTER_MANAGED_ROLES`` if the master may repair it, else reset its password by hand.
    """


class PairError(AuthorityError):
    """A role with the alternate user's name (``<user>_clone``) is not the user's rotation
    partner: it is not a direct member of ``<user>``. It is not taken over; nothing changed.

    Fix: if that role really is the clone, adopt it deliberately with the ``GRANT`` the message
    gives (``GRANT user TO user_clone``); otherwise rename or drop the stranger.
    """


@dataclass(frozen=True)
class MasterAction:
    """What the master is about to do, for :func:`authorise`.

    Parameters
    ----------
    role:
        The role whose password (and, for a clone, settings and memberships) changes.
    what:
        The path, for messages: ``"single-user recovery"``, ``"multi-user setSecret"``,
        ``"rotation verify --reconcile"``.
    pair:
        Multi-user: ``(owner, clone)``; ``role`` is one of them.
    proven:
        Multi-user rotation: the pair's other user, whose AWSCURRENT logged in during this
        rotation (the *proven* grounds).
    managed:
        ``MASTER_MANAGED_ROLES`` (the *managed* grounds); ignored when ``proven`` is given.
    may_create:
        Whether a missing clone may be created (multi-user setSecret only).
    """

    role: str
    what: str
    pair: tuple[str, str] | None = None
    proven: str | None = None
    managed: ManagedRoles | None = None
    may_create: bool = False

    def __post_init__(self) -> None:
        if self.pair is not None and self.role not in self.pair:
            raise ValueError(f"{self.role!r} is not in the pair {self.pair!r}")
        if self.proven is not None and (self.pair is None or self.proven not in self.pair):
            raise ValueError("proven grounds name the other user of a pair")


def own_login(conn: psycopg.Connection[Any], role: str) -> AuthorisedRole:
    """A session logged in as ``role`` itself changes its own password: no master involved.

    Raises
    ------
    AuthorityError
        The session is not ``role``'s (a bug: the strategies check the user beforehand).
    """
    if conn.info.user != role:
        raise AuthorityError(
            f"a session of {conn.info.user!r} may not change {role!r}'s password on its own "
            "login's grounds"
        )
    return AuthorisedRole(role, "its own login", _seal=_SEAL)


def planned(role: str) -> AuthorisedRole:
    """A token for ``rotation plan`` to *render* the statements a rotation would send (it
    executes none of them). Only :mod:`rotation_tools.plan` may call this (a test checks)."""
    return AuthorisedRole(role, "a plan, never executed", display_only=True, _seal=_SEAL)


def precheck(action: MasterAction, *, master_user: str) -> None:
    """The part of :func:`authorise` that needs no database, run before the master logs in
    at all: a refusal here sends the master's credential nowhere.

    Raises
    ------
    AuthorityError
        The role is the master secret's own user, or the *managed* grounds are missing.
    """
    if action.role == master_user or (action.pair is not None and action.pair[0] == master_user):
        raise _own_role(action, master_user)
    if action.proven is None:
        _check_managed(action)


def authorise(conn: psycopg.Connection[Any], action: MasterAction) -> AuthorisedRole:
    """The guard: may the master, on ``conn``, change ``action.role``? Call it inside the
    transaction that makes the change, after the pair's advisory lock, so what it read is
    what the change meets.

    Returns
    -------
    AuthorisedRole
        The token the statement builders take.

    Raises
    ------
    AuthorityError
        The rule refuses (see the module docstring); the message names the rule and the fix.
    PairError
        The role is not in a real pair (a stranger with the clone's name, no owner).
    """
    master = _session_user(conn)
    if action.role == master or (action.pair is not None and action.pair[0] == master):
        raise _own_role(action, master)
    names = [action.role] if action.pair is None else list(dict.fromkeys(action.pair))
    existing, privileged = _read_closure(conn, names)
    for name in names:
        if privileged.get(name):
            raise _privileged(action, name, privileged[name])
    if action.proven is not None:
        grounds = (
            f"the partner of {action.proven!r}, whose AWSCURRENT logged in during this rotation"
        )
    else:
        _check_managed(action)
        grounds = f"listed in {ENV_MASTER_MANAGED_ROLES}"
    if action.pair is not None:
        _check_pair(conn, action, existing)
    elif action.role not in existing:
        raise AuthorityError(
            f"role {action.role!r} does not exist; {action.what} creates no role, so nothing "
            "was changed. Create it (or fix 'username' in the secret), then re-run"
        )
    return AuthorisedRole(action.role, grounds, _seal=_SEAL)


def _session_user(conn: psycopg.Connection[Any]) -> str:
    """Who the master is; and, before any query with an operator in it runs, that this
    transaction is the master session's, with ``search_path`` pinned
    (:meth:`handlers.master.MasterSession.transaction`): otherwise an operator the
    database's owner planted would run with the master's rights."""
    row = conn.execute(session_role()).fetchone()
    if row is None:  # pragma: no cover - SELECT session_user always answers
        raise AuthorityError("the server did not say who the master is")
    if row[1] != PINNED_SEARCH_PATH:
        raise AuthorityError(
            f"the master's guard ran with search_path {row[1]!r}, not the master session's "
            f"{PINNED_SEARCH_PATH!r}: a bug (every master statement runs inside "
            "handlers.master.MasterSession.transaction), refused so that no object the "
            "database's owner controls runs as the master. Nothing was changed"
        )
    return str(row[0])


def _read_closure(
    conn: psycopg.Connection[Any], names: list[str]
) -> tuple[set[str], dict[str, list[tuple[str, list[str]]]]]:
    """Which of ``names`` exist, and for each the privileged roles in its membership
    closure (itself included) with their privileged attributes."""
    existing: set[str] = set()
    privileged: dict[str, list[tuple[str, list[str]]]] = {}
    rows = conn.execute(privileged_closure(), (names, list(PRIVILEGED_ROLE_NAMES)))
    for start, rolname, *flags in rows:
        if rolname == start:
            existing.add(start)
        attributes = [name for name, flag in zip(PRIVILEGED_ATTRIBUTES, flags, strict=True) if flag]
        if attributes or is_privileged_name(rolname):
            privileged.setdefault(start, []).append((rolname, attributes))
    return existing, privileged


def is_privileged_name(role: str) -> bool:
    """Whether ``role``'s name alone makes it privileged: a provider's administrator role,
    or a predefined role other than the monitoring ones."""
    if role in PRIVILEGED_ROLE_NAMES:
        return True
    return role.startswith(PREDEFINED_PREFIX) and role not in MONITORING_ROLE_NAMES


def _check_managed(action: MasterAction) -> None:
    managed = action.managed
    if managed is None or not managed.is_set:
        where = managed.source if managed is not None else ENV_MASTER_MANAGED_ROLES
        raise AuthorityError(
            f"{action.what} needs the master to set the password of {action.role!r}, whose "
            f"credential did not log in during this rotation, and {where} is not set: "
            f"{_MANAGED_HELP}, so the master touches no such role. If {action.role!r} is an "
            f"application role the master may repair, add it to {ENV_MASTER_MANAGED_ROLES} "
            "(the function's environment; `rotation verify` also takes "
            "--master-managed-roles) and re-run; otherwise reset its password to "
            "AWSCURRENT's by hand. Nothing was changed"
        )
    if not managed.allows(action.role):
        raise AuthorityError(
            f"{action.what} needs the master to set the password of {action.role!r}, which "
            f"{managed.source} does not list ({', '.join(managed.entries)}): "
            f"{_MANAGED_HELP}. Add {action.role!r} if the master may repair it, or fix "
            "'username' in the secret. Nothing was changed"
        )


def _own_role(action: MasterAction, master: str) -> AuthorityError:
    subject = (
        f"the pair of {master!r}"
        if action.pair is not None and action.pair[0] == master
        else f"{action.role!r}"
    )
    return AuthorityError(
        f"{action.what} would have the master change {subject}, the master's own role "
        f"({master!r}): the master never changes itself (that would replace the master "
        "secret's password behind its back). The secret names the master's user: point it "
        "at the application's own user. Nothing was changed"
    )


def _privileged(
    action: MasterAction, name: str, found: Iterable[tuple[str, list[str]]]
) -> AuthorityError:
    reasons = []
    for rolname, attributes in found:
        what = "/".join(attributes) or "a privileged role by name"
        reasons.append(f"has {what}" if rolname == name else f"is a member of {rolname!r} ({what})")
    role = f"{name!r}" if name == action.role else f"the owner {name!r} of {action.role!r}"
    return AuthorityError(
        f"{action.what} would have the master change {role}, which {', '.join(reasons)}: the "
        "master never changes a privileged role (SUPERUSER, CREATEROLE, BYPASSRLS, "
        "REPLICATION, or a member of a role that has them, such as rds_superuser), whoever "
        "the secret's writer is. Rotate it with its own credential (single-user, with a "
        "working password), or by hand. Nothing was changed"
    )


def _check_pair(conn: psycopg.Connection[Any], action: MasterAction, existing: set[str]) -> None:
    assert action.pair is not None  # noqa: S101  # checked by the caller
    owner, clone = action.pair
    if owner not in existing:
        raise PairError(
            f"the secret's user {clone!r} has no owner role {owner!r}: multi-user rotation "
            f"alternates {owner!r} and {clone!r}. Create {owner!r} and "
            f"GRANT {_quoted(owner)} TO {_quoted(clone)}, or rotate this secret with the "
            "single-user strategy"
        )
    if clone not in existing:
        if action.role == clone and action.may_create:
            return  # created by the caller as a member: in the pair by birth
        if action.role == owner and action.proven is None:
            return  # the owner of a pair never rotated yet: a listed role on its own
        raise AuthorityError(
            f"role {clone!r} does not exist; {action.what} re-creates no role (a missing "
            "role is reported, not created: only a rotation whose AWSCURRENT logged in may "
            f"create the clone). Rotate the secret to make {clone!r} again. Nothing was "
            "changed"
        )
    if conn.execute(is_member_of(), (owner, clone)).fetchone() is None:
        raise PairError(
            f"role {clone!r} exists but is not a member of {owner!r}, so it is not "
            f"{owner!r}'s rotation partner and its password is not rotation's to change; "
            "nothing was changed. To adopt it deliberately: "
            f"GRANT {_quoted(owner)} TO {_quoted(clone)}; "
            "otherwise rename or drop it"
        )


def _quoted(name: str) -> str:
    """A name as an operator would type it into psql (for advice, never executed)."""
    return '"' + name.replace('"', '""') + '"'
