"""Role parity: the clone's per-role settings, limits and memberships follow its owner's.

Multi-user rotation alternates ``owner`` and ``owner_clone``. Both act as the owner once
logged in (``ALTER ROLE clone SET role = owner``), but what PostgreSQL applies *at login*
belongs to the role that logs in: ``ALTER ROLE ... [IN DATABASE ...] SET`` entries
(``search_path``, ``statement_timeout``, ...), ``CONNECTION LIMIT`` and ``VALID UNTIL``.
An application whose ``search_path`` lives on its role would break the first time the
clone is current. So, whenever the clone is about to become current (the rotation that
sets its password), :func:`match_owner` makes those match the owner's, in the same
transaction, as the master; and the clone's direct memberships in other roles match the
owner's, so that revoking a role from the owner also takes it from the clone.

The owner is the one source of truth; the clone is never read as one. Nothing is changed
when the owner is the pending user: the clone is then AWSCURRENT, and rewriting the role
live clients log in as (an expired ``VALID UNTIL``, a ``CONNECTION LIMIT 0``) in the
middle of a rotation could lock them out. What someone set on the clone directly is
undone the next time the clone is rotated in.

Settings are stored as ``name=value`` text, values already flattened by the server. They
are re-applied as literals, never spliced: a setting PostgreSQL marks ``GUC_LIST_QUOTE``
(``search_path``, ``temp_tablespaces``, ...) is stored as a list of double-quoted
identifiers, so it is split like ``pg_dump`` does and each element passed as its own
literal. After the changes the catalog is read again, and anything that still differs
fails the step: the comparison is exact, byte for byte, so a value this module does not
know how to reproduce (an extension's list setting, which the catalog cannot tell from a
plain one) is reported rather than copied wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from handlers.pg_authorised import AuthorisedRole
from handlers.pg_expiry import operator_validity
from handlers.pg_sql import (
    grant_role,
    reset_role_setting,
    revoke_role,
    role_limits,
    role_memberships,
    role_settings,
    set_connection_limit,
    set_role_setting,
    set_valid_until,
)
from rotation.observability import logger
from rotation_contract.pg.errors import DatabaseError

__all__ = [
    "LIST_QUOTE_SETTINGS",
    "ParityError",
    "RoleState",
    "match_owner",
    "quoted_name",
    "read_states",
    "setting_values",
    "split_guc_list",
]

# The settings PostgreSQL marks GUC_LIST_QUOTE (guc_tables.c), as pg_dump lists them
# (dumputils.c, variable_is_guc_list_quote): the server cannot be asked, and an extension's
# own list settings cannot be known at all (the exact check after copying catches those).
LIST_QUOTE_SETTINGS = frozenset(
    {
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)
# The clone's own `role` setting is what makes it act as the owner: never copied, never
# reset (an owner's `role` setting would point the clone elsewhere; see the README).
_ROLE_SETTING = "role"
# C's isspace() in the "C" locale, which the server's list splitting uses.
_SPACE = " \t\n\r\f\v"


class ParityError(DatabaseError):
    """The clone could not be made to match its owner (its settings, limits, validity and
    memberships); the transaction rolled back and AWSCURRENT keeps working. The message lists
    every item with its fix.

    Fix: as listed: ``GRANT SET ON PARAMETER name TO master`` for a superuser-only or custom
    setting (PostgreSQL 15+), ``GRANT grp TO master WITH ADMIN OPTION`` for a membership
    (16+), or set the item on the clone by hand (an extension's list setting).
    """


def split_guc_list(stored: str) -> list[str]:
    """Split a stored ``GUC_LIST_QUOTE`` value into its elements (pg_dump's SplitGUCList).

    ``a, "B c", "x""y"`` -> ``["a", "B c", 'x"y']``. Quoted elements keep their case and
    content (doubled quotes collapse); unquoted ones end at a comma or whitespace.

    Raises
    ------
    ValueError
        Mismatched quotes, an empty unquoted element, or text after an element.
    """
    items: list[str] = []
    i = _skip_space(stored, 0)
    if i == len(stored):
        return items
    while True:
        if stored.startswith('"', i):
            item, i = _quoted_element(stored, i + 1)
        else:
            item, i = _bare_element(stored, i)
        items.append(item)
        i = _skip_space(stored, i)
        if i == len(stored):
            return items
        if stored[i] != ",":
            raise ValueError("text after an element")
        i = _skip_space(stored, i + 1)


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def _quoted_element(text: str, i: int) -> tuple[str, int]:
    """The element whose opening quote is just before ``i``, and the index after it."""
    parts: list[str] = []
    while True:
        close = text.find('"', i)
        if close < 0:
            raise ValueError("mismatched double quotes")
        parts.append(text[i:close])
        if not text.startswith('"', close + 1):
            return "".join(parts), close + 1
        parts.append('"')  # a doubled quote is one quote
        i = close + 2


def _bare_element(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] != "," and text[i] not in _SPACE:
        i += 1
    if i == start:
        raise ValueError("an empty unquoted element")
    return text[start:i], i


def setting_values(name: str, stored: str) -> list[str]:
    """The literals that make ``ALTER ROLE ... SET <name> TO ...`` store ``stored`` again."""
    if name.lower() in LIST_QUOTE_SETTINGS:
        items = split_guc_list(stored)
        # An empty list has no SQL spelling; '' stores '""', which the exact check reports.
        return items or [""]
    return [stored]


@dataclass(frozen=True)
class RoleState:
    """What a role carries to every login, as the catalog stores it.

    ``settings`` maps (database name or None for all databases, setting name) to the stored
    value; ``memberships`` maps each role this one is a direct member of to the grant's
    (INHERIT, SET) options.
    """

    settings: Mapping[tuple[str | None, str], str]
    connection_limit: int
    valid_until: str
    memberships: Mapping[str, tuple[bool, bool]]


def read_states(conn: psycopg.Connection[Any], roles: Iterable[str]) -> dict[str, RoleState]:
    """Read each existing role's :class:`RoleState` (three catalog queries)."""
    names = list(roles)
    settings: dict[str, dict[tuple[str | None, str], str]] = {name: {} for name in names}
    for role, database, config in conn.execute(role_settings(), (names,)):
        for entry in config or ():
            name, _, value = str(entry).partition("=")
            settings[role][(database, name)] = value
    memberships: dict[str, dict[str, tuple[bool, bool]]] = {name: {} for name in names}
    version = conn.info.server_version
    for member, role, inherit, set_ in conn.execute(role_memberships(version), (names,)):
        memberships[member][role] = (bool(inherit), bool(set_))
    return {
        role: RoleState(settings[role], int(limit), str(valid_until), memberships[role])
        for role, limit, valid_until in conn.execute(role_limits(), (names,))
    }


@dataclass(frozen=True)
class _Change:
    item: str  # what differs, for messages and the log; names only, never values
    statement: sql.Composed
    advice: str  # the fix when the master may not make this change


def _setting_item(database: str | None, name: str) -> str:
    return f"setting {name}" + (f" in database {database!r}" if database else "")


def _plan(
    owner_state: RoleState,
    clone_state: RoleState,
    *,
    owner: str,
    clone: AuthorisedRole,
    master: str,
    with_options: bool,
) -> list[_Change]:
    """The statements that make the clone's state equal the owner's (``clone`` as the
    master's guard authorised it: :mod:`handlers.pg_authority`)."""
    target, clone_name = clone, clone.role
    changes: list[_Change] = []
    # A superuser's change by hand is a fix too: what already matches is left alone.
    by_hand = f"or have a superuser make it match on {quoted_name(clone_name)} by hand"
    wanted = {
        key: value for key, value in owner_state.settings.items() if key[1].lower() != _ROLE_SETTING
    }
    have = {key: value for key, value in clone_state.settings.items() if key != (None, "role")}
    for (database, name), value in sorted(wanted.items(), key=_setting_order):
        if have.get((database, name)) == value:
            continue
        try:
            values = setting_values(name, value)
        except ValueError as exc:
            raise ParityError(
                f"the owner {owner!r}'s {_setting_item(database, name)} cannot be read as "
                f"a list ({exc}); set it on {clone_name!r} by hand"
            ) from exc
        changes.append(
            _Change(
                _setting_item(database, name),
                set_role_setting(target, database, name, values),
                _grant_set(name, master) + f", {by_hand}, or remove it from {quoted_name(owner)}",
            )
        )
    for database, name in sorted(have.keys() - wanted.keys(), key=_key_order):
        changes.append(
            _Change(
                _setting_item(database, name) + " (not on the owner)",
                reset_role_setting(target, database, name),
                _grant_set(name, master) + f", {by_hand}",
            )
        )
    if clone_state.connection_limit != owner_state.connection_limit:
        changes.append(
            _Change(
                "connection limit",
                set_connection_limit(target, owner_state.connection_limit),
                by_hand,
            )
        )
    # The operator's validity, never a rotation's expiry (handlers.pg_expiry): the owner's
    # unless marked, else what the clone already carries from the owner.
    valid_until = operator_validity(owner_state.valid_until, clone_state.valid_until)
    if clone_state.valid_until != valid_until:
        changes.append(_Change("VALID UNTIL", set_valid_until(target, valid_until), by_hand))
    changes.extend(
        _membership_changes(
            owner_state, clone_state, owner=owner, clone=target, master=master,
            with_options=with_options,
        )
    )  # fmt: skip
    return changes


def _grant_set(name: str, master: str) -> str:
    return (
        f"GRANT SET ON PARAMETER {name} TO {quoted_name(master)} (PostgreSQL 15+; before, "
        "only a superuser may set it on a role)"
    )


def _membership_changes(
    owner_state: RoleState,
    clone_state: RoleState,
    *,
    owner: str,
    clone: AuthorisedRole,
    master: str,
    with_options: bool,
) -> list[_Change]:
    target, clone_name = clone, clone.role
    changes: list[_Change] = []
    wanted = {r: o for r, o in owner_state.memberships.items() if r not in (owner, clone_name)}
    have = {r: o for r, o in clone_state.memberships.items() if r != owner}
    for role, (inherit, set_) in sorted(wanted.items()):
        if have.get(role) == (inherit, set_):
            continue
        changes.append(
            _Change(
                f"membership in {role!r}",
                grant_role(role, target, inherit=inherit, set_=set_, with_options=with_options),
                f"GRANT {quoted_name(role)} TO {quoted_name(master)} WITH ADMIN OPTION (needed "
                "on PostgreSQL 16+), or have a superuser "
                f"GRANT {quoted_name(role)} TO {quoted_name(clone_name)}",
            )
        )
    for role in sorted(have.keys() - wanted.keys()):
        changes.append(
            _Change(
                f"membership in {role!r} (not the owner's)",
                revoke_role(role, target),
                f"GRANT {quoted_name(role)} TO {quoted_name(master)} WITH ADMIN OPTION (needed on "
                f"PostgreSQL 16+), or have the role that granted it (or a superuser) "
                f"REVOKE {quoted_name(role)} FROM {quoted_name(clone_name)}",
            )
        )
    return changes


def _key_order(key: tuple[str | None, str]) -> tuple[str, str]:
    return (key[0] or "", key[1])


def _setting_order(entry: tuple[tuple[str | None, str], str]) -> tuple[str, str]:
    return _key_order(entry[0])


def quoted_name(name: str) -> str:
    """A name as an operator would type it into psql (for advice, never executed)."""
    return '"' + name.replace('"', '""') + '"'


# SQLSTATE classes that say "this item cannot be copied by this master": privileges and names
# (42), values (22), invalid grants (0L) and role specifications (0P), and a setting that
# cannot be set per role (55P02). Anything else (57014 a timeout, 55P03 a lock, 40 a
# conflict, 08 the connection) is the step's failure, not the item's.
_ITEM_CLASSES = ("42", "22", "0L", "0P")


def _about_the_item(sqlstate: str | None) -> bool:
    return sqlstate is not None and (sqlstate[:2] in _ITEM_CLASSES or sqlstate == "55P02")


def _one_line(exc: psycopg.Error) -> str:
    """The server's message and detail (not its CONTEXT lines), on one line."""
    text = exc.diag.message_primary or str(exc)
    if exc.diag.message_detail:
        text += f" ({exc.diag.message_detail})"
    return " ".join(text.split())


def match_owner(conn: psycopg.Connection[Any], *, owner: str, clone: AuthorisedRole) -> list[str]:
    """Make ``clone``'s (as the master's guard authorised it) settings, connection limit,
    validity and memberships match ``owner``'s, inside the caller's transaction. Returns
    what was changed (names only).

    Each change runs in its own savepoint, so that every change the master may not make is
    reported at once; then the catalog is read again and compared exactly.

    Raises
    ------
    ParityError
        Some change was refused (the message lists each, with its fix), or the clone still
        differs after the changes. The caller's transaction must then roll back.
    """
    target, clone_name = clone, clone.role
    states = read_states(conn, (owner, clone_name))
    if owner not in states or clone_name not in states:
        raise ParityError(f"role {owner!r} or {clone_name!r} vanished during the rotation")
    master = conn.info.user
    with_options = conn.info.server_version >= 160000

    def plan(current: Mapping[str, RoleState]) -> list[_Change]:
        return _plan(
            current[owner], current[clone_name], owner=owner, clone=target, master=master,
            with_options=with_options,
        )  # fmt: skip

    changes = plan(states)
    if not changes:
        return []
    refused: list[str] = []
    for change in changes:
        try:
            with conn.transaction():  # a savepoint: one refusal does not end the others
                conn.execute(change.statement)
        except psycopg.Error as exc:
            if conn.broken or not _about_the_item(exc.sqlstate):
                raise  # a timeout, a lock, a lost connection: the step's own error
            fix = f"; fix: {change.advice}" if exc.sqlstate == "42501" else ""
            refused.append(f"{change.item}: {_one_line(exc)} ({exc.sqlstate}){fix}")
    if refused:
        raise ParityError(
            f"the master could not make {clone_name!r} match its owner {owner!r}, so nothing was "
            "changed (the clone would not behave like the user): " + "; ".join(refused)
        )
    remaining = plan(read_states(conn, (owner, clone_name)))
    if remaining:
        raise ParityError(
            f"{', '.join(c.item for c in remaining)} of {clone_name!r} still differ from its owner "
            f"{owner!r} after copying, so nothing was changed. A list setting an extension "
            "marks GUC_LIST_QUOTE cannot be reproduced from the catalog, and on PostgreSQL "
            "16+ a membership another role granted only that role can revoke: make these "
            f"match on {clone_name!r} by hand (as a superuser), then re-run"
        )
    items = [change.item for change in changes]
    logger.info("made the clone match its owner", extra={"user": clone_name, "changed": items})
    return items
