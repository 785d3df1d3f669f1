"""The clone behaves like the user: per-role settings, limits, validity and memberships
follow the owner; objects either creates stay usable and alterable by the other. On the
machine's PostgreSQL (15, TLS) and on PostgreSQL 18, with a CREATEROLE master as on RDS."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers import pg_parity
from handlers.master import MasterSession
from handlers.pg_authority import MasterAction, authorise
from handlers.pg_config import ManagedRoles
from handlers.pg_parity import ParityError, match_owner, split_guc_list
from rotation import AWSCURRENT, AWSPENDING, AWSPREVIOUS
from tests.fix_multi import MASTER, MultiBed
from tests.fix_postgres import admin_connect

pytestmark = pytest.mark.functional

Settings = dict[tuple[str | None, str], str]


def _connect(bed: MultiBed, value: dict[str, Any], **extra: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(
        **bed.pg.conninfo(value["username"], value["password"], **extra), autocommit=True
    )


def _run(conn: psycopg.Connection[Any], statement: str, *names: str, **literals: Any) -> None:
    """``statement`` with ``{0}``... as identifiers and ``{name}`` as literals."""
    conn.execute(
        sql.SQL(statement).format(
            *(sql.Identifier(n) for n in names),
            **{k: sql.Literal(v) for k, v in literals.items()},
        )
    )


def _show(conn: psycopg.Connection[Any], name: str) -> str:
    row = conn.execute("SELECT pg_catalog.current_setting(%s)", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def _settings(bed: MultiBed, role: str, conn: psycopg.Connection[Any] | None = None) -> Settings:
    """The role's stored ``ALTER ROLE ... SET`` entries (any role may read them)."""
    with contextlib.ExitStack() as stack:
        if conn is None:
            conn = stack.enter_context(admin_connect(bed.pg))
        rows = conn.execute(
            "SELECT d.datname, s.setconfig FROM pg_db_role_setting s"
            " JOIN pg_roles r ON r.oid = s.setrole"
            " LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE r.rolname = %s",
            (role,),
        ).fetchall()
    found: Settings = {}
    for database, config in rows:
        for entry in config:
            name, _, value = entry.partition("=")
            found[(database, name)] = value
    return found


def _without_role(settings: Settings) -> Settings:
    return {key: value for key, value in settings.items() if key[1] != "role"}


def _limits(bed: MultiBed, role: str) -> tuple[int, str | None]:
    with admin_connect(bed.pg) as conn:
        row = conn.execute(
            "SELECT rolconnlimit, rolvaliduntil::text FROM pg_roles WHERE rolname = %s", (role,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _memberships(bed: MultiBed, role: str) -> dict[str, tuple[bool, bool]]:
    """Direct memberships with their (INHERIT, SET) options; (True, True) before 16."""
    options = (
        "bool_or(m.inherit_option), bool_or(m.set_option)"
        if bed.pg.server_version() >= 16
        else "true, true"
    )
    with admin_connect(bed.pg) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT g.rolname, {} FROM pg_auth_members m"
                " JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
                " WHERE u.rolname = %s GROUP BY g.rolname"
            ).format(sql.SQL(options)),
            (role,),
        ).fetchall()
    return {name: (inherit, set_) for name, inherit, set_ in rows}


@pytest.fixture
def other_database(multi: MultiBed) -> Iterator[str]:
    name = f'db {random.randbytes(4).hex()} "q"; --'  # a name, not a secret
    with admin_connect(multi.pg) as conn:
        _run(conn, "CREATE DATABASE {0} STRATEGY FILE_COPY", name)  # 15+; the faster
    yield name
    with admin_connect(multi.pg) as conn:
        _run(conn, "DROP DATABASE IF EXISTS {0}", name)


def _group(bed: MultiBed, name: str) -> str:
    """A NOLOGIN role made by the master (so it holds ADMIN on it, as on RDS)."""
    with bed.master_connect() as conn:
        _run(conn, "CREATE ROLE {0} NOLOGIN", name)
    bed.created.append(name)
    return name


# -- three rotations: settings follow the owner, objects stay shared ------------------------

_OBJECTS = ("t", "s", "v", "f", "x")


def _create_objects(conn: psycopg.Connection[Any], tag: str) -> None:
    # A pooler's reset query first: the session must still act as the owner afterwards.
    conn.execute("DISCARD ALL")
    conn.execute("RESET ROLE")
    _run(conn, "CREATE TABLE {0} (id int)", f"t{tag}")
    _run(conn, "CREATE SEQUENCE {0}", f"s{tag}")
    _run(conn, "CREATE VIEW {0} AS SELECT id FROM {1}", f"v{tag}", f"t{tag}")
    _run(conn, "CREATE FUNCTION {0}() RETURNS int LANGUAGE sql AS 'SELECT 1'", f"f{tag}")
    _run(conn, "CREATE SCHEMA {0}", f"x{tag}")


def _alter_objects(conn: psycopg.Connection[Any], tag: str) -> None:
    _run(conn, "ALTER TABLE {0} ADD COLUMN note text", f"t{tag}")
    _run(conn, "INSERT INTO {0} VALUES (1, 'n')", f"t{tag}")
    _run(conn, "ALTER SEQUENCE {0} RESTART WITH 10", f"s{tag}")
    assert conn.execute(sql.SQL("SELECT nextval({})").format(sql.Literal(f"s{tag}"))).fetchone()
    _run(conn, "CREATE OR REPLACE VIEW {0} AS SELECT id, note FROM {1}", f"v{tag}", f"t{tag}")
    assert conn.execute(sql.SQL("SELECT note FROM {}").format(sql.Identifier(f"v{tag}"))).fetchone()
    _run(conn, "CREATE OR REPLACE FUNCTION {0}() RETURNS int LANGUAGE sql AS 'SELECT 2'", f"f{tag}")
    assert conn.execute(sql.SQL("SELECT {}()").format(sql.Identifier(f"f{tag}"))).fetchone() == (2,)
    _run(conn, "CREATE TABLE {0}.inner_t (id int)", f"x{tag}")
    _run(conn, "ALTER SCHEMA {0} RENAME TO {1}", f"x{tag}", f"y{tag}")


def _owners(bed: MultiBed, schema: str, tag: str) -> set[str]:
    with admin_connect(bed.pg) as conn:
        rows = conn.execute(
            "SELECT c.relowner::regrole::text FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE (n.nspname = %s AND c.relname = ANY(%s))"
            " OR (n.nspname = %s AND c.relname = 'inner_t')"
            " UNION ALL SELECT p.proowner::regrole::text FROM pg_proc p JOIN pg_namespace n"
            " ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = %s"
            " UNION ALL SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s",
            (schema, [f"t{tag}", f"s{tag}", f"v{tag}"], f"y{tag}", schema, f"f{tag}", f"y{tag}"),
        ).fetchall()
    assert len(rows) == 6, rows  # table, sequence, view, the schema's table, function, schema
    return {str(row[0]).strip('"') for row in rows}


def test_three_rotations_the_current_user_behaves_like_the_owner(
    multi: MultiBed, other_database: str
) -> None:
    arn, user, password = multi.app()
    schema, group = f"Sch {user}", _group(multi, f"grp_{user}")
    with admin_connect(multi.pg) as conn:  # the owner may create schemas
        _run(conn, "GRANT CREATE ON DATABASE postgres TO {0}", user)
    with psycopg.connect(**multi.pg.conninfo(user, password), autocommit=True) as conn:
        _run(conn, "CREATE SCHEMA {0}", schema)
    with multi.master_connect() as conn:  # what the application's role carries, set as on RDS
        _run(conn, "GRANT {0} TO {1}", group, user)
        _run(conn, "ALTER ROLE {0} SET search_path TO {s}, 'public'", user, s=schema)
        _run(conn, "ALTER ROLE {0} IN DATABASE postgres SET lock_timeout TO '3s'", user)
        _run(conn, "ALTER ROLE {0} IN DATABASE {1} SET work_mem TO '9MB'", user, other_database)
    expected_users = [f"{user}_clone", user, f"{user}_clone"]
    for round_, expected in enumerate(expected_users):
        timeout, limit = f"{round_ + 4}s", 7 + round_
        valid_until = f"{2090 + round_}-01-02 03:04:05+00"
        with multi.master_connect() as conn:  # changed on the user since the last rotation
            _run(conn, "ALTER ROLE {0} SET statement_timeout TO {t}", user, t=timeout)
            _run(conn, "ALTER ROLE {0} CONNECTION LIMIT {n}", user, n=limit)
            _run(conn, "ALTER ROLE {0} VALID UNTIL {v}", user, v=valid_until)
        multi.calls.reset()
        multi.connections.reset()
        assert multi.driver(multi.rotator()).rotate(arn).succeeded  # a new container each time
        # The catalog reads and copies ride on the master's connection and transaction.
        assert len(multi.calls) == 9
        assert multi.connections.total == 3  # quiet: guard, master, testSecret

        current, previous = multi.value(arn), multi.value(arn, AWSPREVIOUS)
        assert current["username"] == expected
        with _connect(multi, current) as conn:
            assert _show(conn, "search_path") == f'"{schema}", public'
            assert _show(conn, "statement_timeout") == timeout
            assert _show(conn, "lock_timeout") == "3s"  # IN DATABASE postgres
            assert _show(conn, "work_mem") != "9MB"
        with _connect(multi, current, dbname=other_database) as conn:
            assert _show(conn, "work_mem") == "9MB"  # IN DATABASE <other>
            assert _show(conn, "lock_timeout") != "3s"
        clone = f"{user}_clone"
        assert _limits(multi, current["username"]) == _limits(multi, user)
        assert _limits(multi, user)[0] == limit
        assert group in _memberships(multi, clone)
        if current["username"] == clone:
            assert _without_role(_settings(multi, clone)) == _settings(multi, user)
        else:  # the clone is AWSPREVIOUS now: left as it was when it was rotated in
            assert _settings(multi, clone)[(None, "statement_timeout")] == f"{round_ + 3}s"

        tag = f"{round_}_{user}"
        with _connect(multi, current) as conn:
            _create_objects(conn, tag)
        with _connect(multi, previous) as conn:
            _alter_objects(conn, tag)
        assert _owners(multi, schema, tag) == {user}


def test_settings_set_on_the_clone_are_undone_when_it_is_next_rotated_in(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    clone = f"{user}_clone"
    with multi.master_connect() as conn:
        _run(conn, "ALTER ROLE {0} SET statement_timeout TO '4s'", user)
    rotator = multi.rotator()
    assert multi.driver(rotator).rotate(arn).succeeded  # the clone is current
    with multi.master_connect() as conn:  # someone changes the clone directly
        _run(conn, "ALTER ROLE {0} SET statement_timeout TO '1s'", clone)
        _run(conn, "ALTER ROLE {0} SET work_mem TO '8MB'", clone)
        _run(conn, "ALTER ROLE {0} CONNECTION LIMIT 2", clone)
    assert multi.driver(rotator).rotate(arn).succeeded  # the owner is rotated in
    # The clone was AWSCURRENT during that rotation: not touched.
    assert _settings(multi, clone)[(None, "work_mem")] == "8MB"
    assert _limits(multi, clone)[0] == 2
    assert multi.driver(rotator).rotate(arn).succeeded  # the clone is rotated in again
    assert _without_role(_settings(multi, clone)) == {(None, "statement_timeout"): "4s"}
    assert _settings(multi, clone)[(None, "role")] == user
    assert _limits(multi, clone) == _limits(multi, user)
    with _connect(multi, multi.value(arn)) as conn:
        assert _show(conn, "statement_timeout") == "4s"
        assert conn.execute("SELECT current_user").fetchone() == (user,)


def test_memberships_follow_the_owner_with_their_options(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    clone = f"{user}_clone"
    kept, dropped, added = (_group(multi, f"{g}_{user}") for g in ("kept", "dropped", "added"))
    options = " WITH INHERIT FALSE" if multi.pg.server_version() >= 16 else ""
    with multi.master_connect() as conn:
        _run(conn, "GRANT {0} TO {1}" + options, kept, user)
        _run(conn, "GRANT {0} TO {1}", dropped, user)
    rotator = multi.rotator()
    assert multi.driver(rotator).rotate(arn).succeeded
    owner_memberships = _memberships(multi, user)
    assert _memberships(multi, clone) == {**owner_memberships, user: (True, True)}
    if options:
        assert owner_memberships[kept] == (False, True)
    with multi.master_connect() as conn:
        _run(conn, "REVOKE {0} FROM {1}", dropped, user)
        _run(conn, "GRANT {0} TO {1}", added, user)
    assert multi.driver(rotator).rotate(arn).succeeded  # the clone is current: left alone
    assert dropped in _memberships(multi, clone)
    assert multi.driver(rotator).rotate(arn).succeeded
    assert _memberships(multi, clone) == {**_memberships(multi, user), user: (True, True)}
    assert dropped not in _memberships(multi, clone)
    with _connect(multi, multi.value(arn)) as conn:  # a member: may SET ROLE to it
        _run(conn, "SET ROLE {0}", added)


# -- what the master may not copy ---------------------------------------------------------


def _no_clone(bed: MultiBed, user: str) -> bool:
    with admin_connect(bed.pg) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (f"{user}_clone",)).fetchone()
            is None
        )


def test_a_setting_the_master_may_not_set_fails_setsecret_with_the_fix(multi: MultiBed) -> None:
    """Superuser-only settings and custom (placeholder) ones need the master to be granted
    SET on them: a clear error naming each and the GRANT, nothing changed; then it works."""
    arn, user, _ = multi.app()
    with admin_connect(multi.pg) as conn:
        _run(conn, "ALTER ROLE {0} SET log_statement TO 'ddl'", user)
        _run(conn, "ALTER ROLE {0} SET myapp.tenant TO 'acme'", user)
        _run(conn, "ALTER ROLE {0} SET statement_timeout TO '4s'", user)
    rotator, token = multi.begin_and_create(arn)
    with pytest.raises(ParityError) as caught:
        rotator.handle(multi.event(arn, "setSecret", token))
    message = str(caught.value)
    for fragment in (
        "setSecret", arn, "setting log_statement", "setting myapp.tenant", "42501",
        f'GRANT SET ON PARAMETER log_statement TO "{MASTER}"',
        f'GRANT SET ON PARAMETER myapp.tenant TO "{MASTER}"',
    ):  # fmt: skip
        assert fragment in message
    assert "statement_timeout" not in message  # that one the master may copy
    assert "acme" not in message
    assert _no_clone(multi, user), "the transaction must leave no clone"
    assert multi.labels(arn)[token] == [AWSPENDING]
    with admin_connect(multi.pg) as conn:
        conn.execute(f"GRANT SET ON PARAMETER log_statement, myapp.tenant TO {MASTER}")
    try:
        assert multi.driver(rotator).run(arn, token).succeeded
    finally:
        with admin_connect(multi.pg) as conn:
            conn.execute(f"REVOKE SET ON PARAMETER log_statement, myapp.tenant FROM {MASTER}")
    assert _without_role(_settings(multi, f"{user}_clone")) == _settings(multi, user)


def test_a_membership_the_master_may_not_grant_fails_on_16_plus(multi: MultiBed) -> None:
    """On 16+ granting a role needs ADMIN OPTION on it; CREATEROLE was enough before."""
    arn, user, _ = multi.app()
    foreign = f"su_grp_{user}"
    with admin_connect(multi.pg) as conn:  # made and granted by the superuser, not the master
        _run(conn, "CREATE ROLE {0} NOLOGIN", foreign)
        _run(conn, "GRANT {0} TO {1}", foreign, user)
    multi.created.append(foreign)
    rotator, token = multi.begin_and_create(arn)
    if multi.pg.server_version() < 16:
        assert multi.driver(rotator).run(arn, token).succeeded
        assert foreign in _memberships(multi, f"{user}_clone")
        return
    with pytest.raises(ParityError) as caught:
        rotator.handle(multi.event(arn, "setSecret", token))
    assert f"membership in {foreign!r}" in str(caught.value)
    assert f'GRANT "{foreign}" TO "{MASTER}" WITH ADMIN OPTION' in str(caught.value)
    assert _no_clone(multi, user)
    with admin_connect(multi.pg) as conn:
        _run(conn, "GRANT {0} TO {1} WITH ADMIN OPTION", foreign, MASTER)
    assert multi.driver(rotator).run(arn, token).succeeded
    assert foreign in _memberships(multi, f"{user}_clone")


# -- values copied exactly, whatever they hold ----------------------------------------------

_HOSTILE_ELEMENTS = [
    "public", "B c", "$user", 'x"y', "a,b", "x'; DROP ROLE postgres; --", "back\\slash",
    "ünï名前", " lead", "trail ", "select", "UPPER", "", "tab\there", "new\nline", "n" * 100,
    '"', "'", ",", "=", "{a,b}", "$1", "%s", "%(x)s", "e'\\x41'",
]  # fmt: skip


def _hostile_lists() -> list[list[str]]:
    rng = random.Random(11)  # fixed seed: the same cases every run
    cases = [[e] for e in _HOSTILE_ELEMENTS]
    cases += [rng.sample(_HOSTILE_ELEMENTS, rng.randint(2, 5)) for _ in range(25)]
    return cases


@pytest.fixture
def pair(multi: MultiBed) -> tuple[str, str]:
    """An owner and its clone (a member), both made by the master; no secret involved."""
    owner = f"pair_{random.randbytes(4).hex()}"  # a name, not a secret
    with multi.master_connect() as conn:
        _run(conn, "CREATE ROLE {0} LOGIN", owner)
        _run(conn, "CREATE ROLE {0} LOGIN IN ROLE {1}", f"{owner}_clone", owner)
    multi.created.append(owner)
    return owner, f"{owner}_clone"


def _mirror(bed: MultiBed, owner: str, clone: str) -> list[str]:
    with bed.master_connect() as conn:
        return _mirror_on(conn, owner, clone)


def _mirror_on(conn: psycopg.Connection[Any], owner: str, clone: str) -> list[str]:
    # Through the master's guard, as every caller of match_owner goes (the clone listed).
    action = MasterAction(
        role=clone, what="a test", pair=(owner, clone), managed=ManagedRoles((clone,))
    )
    # In a master transaction (search_path pinned), as every master statement runs.
    with MasterSession(conn, password="unused-in-this-test").transaction(writes=True) as pinned:
        return match_owner(pinned, owner=owner, clone=authorise(pinned, action))


@pytest.mark.parametrize("name", ["search_path", "temp_tablespaces", "local_preload_libraries"])
def test_list_settings_with_hostile_elements_are_copied_exactly(
    multi: MultiBed, pair: tuple[str, str], name: str
) -> None:
    owner, clone = pair
    with multi.master_connect() as conn:
        for elements in _hostile_lists():
            conn.execute(
                sql.SQL("ALTER ROLE {} SET {} TO {}").format(
                    sql.Identifier(owner),
                    sql.Identifier(name),
                    sql.SQL(", ").join(map(sql.Literal, elements)),
                )
            )
            stored = _settings(multi, owner, conn)[(None, name)]
            assert split_guc_list(stored) == elements, stored  # the server as the oracle
            assert _mirror_on(conn, owner, clone) == [f"setting {name}"]
            assert _settings(multi, clone, conn)[(None, name)] == stored
            assert _mirror_on(conn, owner, clone) == []  # equal now: nothing more to do


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("application_name", "x'; DROP ROLE postgres; --"),
        ("application_name", 'we"ird, \\ ünï'),
        ("DateStyle", "iso, dmy"),
        ("statement_timeout", "1500"),
        ("default_text_search_config", "pg_catalog.simple"),
    ],
    ids=["quote-injection", "double-quote-backslash", "list-not-quoted", "number", "qualified"],
)
def test_plain_settings_with_hostile_values_are_copied_exactly(
    multi: MultiBed, pair: tuple[str, str], name: str, value: str
) -> None:
    owner, clone = pair
    with multi.master_connect() as conn:
        _run(conn, "ALTER ROLE {0} IN DATABASE postgres SET {1} TO {v}", owner, name, v=value)
    _mirror(multi, owner, clone)
    assert (
        _settings(multi, clone)[("postgres", name)] == _settings(multi, owner)[("postgres", name)]
    )


def test_a_value_that_would_not_round_trip_is_reported_not_copied_wrong(
    multi: MultiBed, pair: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an extension's GUC_LIST_QUOTE setting would do: the exact check catches it."""
    owner, clone = pair
    with multi.master_connect() as conn:
        _run(conn, "ALTER ROLE {0} SET search_path TO 'a b', 'c'", owner)
    monkeypatch.setattr(pg_parity, "LIST_QUOTE_SETTINGS", frozenset())  # as if not a list
    with pytest.raises(ParityError, match=r"setting search_path of .* still differ"):
        _mirror(multi, owner, clone)
    assert (None, "search_path") not in _settings(multi, clone)  # rolled back


def test_validity_and_limit_follow_the_owner_back_to_none(
    multi: MultiBed, pair: tuple[str, str]
) -> None:
    owner, clone = pair
    with multi.master_connect() as conn:
        _run(conn, "SET TimeZone TO 'Pacific/Chatham'")
        _run(conn, "ALTER ROLE {0} VALID UNTIL '2091-03-04 05:06:07.891234+05:30'", owner)
        _run(conn, "ALTER ROLE {0} CONNECTION LIMIT 0", owner)
    assert set(_mirror(multi, owner, clone)) == {"VALID UNTIL", "connection limit"}
    assert _limits(multi, clone) == _limits(multi, owner)
    with multi.master_connect() as conn:
        _run(conn, "ALTER ROLE {0} VALID UNTIL 'infinity' CONNECTION LIMIT -1", owner)
    _mirror(multi, owner, clone)
    assert _limits(multi, clone) == (-1, "infinity")
    assert _mirror(multi, owner, clone) == []


def test_nothing_of_the_clone_changes_when_the_owner_is_rotated_in(multi: MultiBed) -> None:
    """The rotation back to the owner leaves AWSCURRENT's role as it is, even when the owner
    carries something that would lock its sessions out."""
    arn, user, _ = multi.app()
    rotator = multi.rotator()
    assert multi.driver(rotator).rotate(arn).succeeded
    clone = f"{user}_clone"
    before = (_settings(multi, clone), _limits(multi, clone), _memberships(multi, clone))
    with multi.master_connect() as conn:
        _run(conn, "ALTER ROLE {0} SET statement_timeout TO '2s'", user)
        _run(conn, "ALTER ROLE {0} CONNECTION LIMIT 0", user)
    token = multi.begin_and_create(arn)[1]
    rotator.handle(multi.event(arn, "setSecret", token))
    assert (_settings(multi, clone), _limits(multi, clone), _memberships(multi, clone)) == before
    assert multi.logs_in(multi.value(arn, AWSCURRENT))


@pytest.mark.parametrize(
    ("sqlstate", "raised"),
    [("42501", ParityError), ("22023", ParityError), ("57014", psycopg.errors.QueryCanceled),
     ("55P03", psycopg.errors.LockNotAvailable)],
    ids=["privilege", "value", "timeout", "lock"],
)  # fmt: skip
def test_only_errors_about_the_item_are_listed_others_are_the_steps(
    multi: MultiBed,
    pair: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    sqlstate: str,
    raised: type[Exception],
) -> None:
    """A refusal of one item is collected with the others; a timeout or a lock is not the
    item's fault and must surface as the step's own error."""
    owner, clone = pair

    def failing(role: str, limit: int) -> sql.Composed:
        return sql.SQL("DO $$BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = {}; END$$").format(
            sql.Literal(sqlstate)
        )

    monkeypatch.setattr(pg_parity, "set_connection_limit", failing)
    with multi.master_connect() as conn:
        _run(conn, "ALTER ROLE {0} CONNECTION LIMIT 4", owner)
    with pytest.raises(raised) as caught:
        _mirror(multi, owner, clone)
    if raised is ParityError:
        assert f"connection limit: injected ({sqlstate})" in str(caught.value)
    assert _limits(multi, clone)[0] == -1
