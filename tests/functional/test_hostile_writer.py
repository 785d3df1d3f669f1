"""The hostile secret writer: whoever can write one secret must not be able to point the
master credential at a role of their choosing (issue #20; the contract's *The master's
authority*; the guard is :mod:`handlers.pg_authority`).

For every path through which the master acts (single-user recovery, multi-user setSecret
creating the clone, multi-user setSecret on an existing pair, where parity runs, and
``rotation verify --reconcile`` for either strategy; each once more with an RDS-managed
master found through moto's RDS API), the attacker writes the secret they would: another
application's role, the master itself, a CREATEROLE role, a member (two levels down) of a
CREATEROLE role, a member of ``rds_superuser``, a ``<victim>_clone`` that does not exist yet,
another host. Each case asserts from ``pg_authid``, ``pg_auth_members`` and
``pg_db_role_setting`` that nothing changed, and that the error names the rule.

MASTER_MANAGED_ROLES is as generous as an operator could make it (every role the attacker
names but the other application's): the refusals below come from the rules that hold
whatever the list says, except where the list is the rule under test.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql

from handlers.master import MasterSession
from handlers.multi_user import PostgresMultiUser
from handlers.pg_authority import AuthorityError, MasterAction, authorise
from handlers.pg_config import ManagedRoles
from handlers.pg_connect import PostgresConnector
from handlers.rds import INSTANCE_TAG, RdsTopology
from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, LocalRotation, RetryPolicy, RotationError, Rotator, SecretStore
from rotation_tools.doctor import run_doctor
from rotation_tools.pair_sessions import collect_pair_sessions
from rotation_tools.plan import build_plan
from rotation_tools.verify import verify_secrets
from tests.fix_multi import MASTER, MultiBed, bed_resolver
from tests.fix_postgres import ServerLog, admin_connect, set_role_password

pytestmark = pytest.mark.functional

FAST = RetryPolicy(attempts=2, initial_wait_s=0.01, max_wait_s=0.02, jitter_s=0.0)
JUNK = "the-attackers-own-password-1"

PATHS = [
    "single-user-recovery",
    "multi-user-setsecret",
    "multi-user-parity",
    "reconcile-single-user",
    "reconcile-multi-user",
]
CASES = [
    "another-application",
    "the-master",
    "createrole",
    "member-of-createrole",
    "member-of-rds_superuser",
    "missing-clone",
    "another-host",
]
_MULTI_SET = ("multi-user-setsecret", "multi-user-parity")


@dataclass
class World:
    """The roles on the server: a victim application, and roles the attacker holds."""

    bed: MultiBed
    victim: str
    victim_password: str
    creator: str  # LOGIN CREATEROLE; the attacker knows its password
    member: str  # member of a plain role that is a member of a CREATEROLE role
    ops: str  # the CREATEROLE role at the top of that chain
    rds_member: str  # member of a role named rds_superuser (no attributes of its own)
    known: dict[str, str]  # the passwords the attacker knows

    def secret_for(self, case: str, path: str, master_arn: str, host: str) -> str:
        """The secret the attacker writes for ``case``."""
        username, password = {
            "another-application": (self.victim, JUNK),
            "the-master": (MASTER, JUNK),
            "createrole": (self.creator, JUNK),
            "member-of-createrole": (self.member, JUNK),
            "member-of-rds_superuser": (self.rds_member, JUNK),
            "missing-clone": (f"{self.victim}_clone", JUNK),
            "another-host": (self.victim, JUNK),
        }[case]
        if path in _MULTI_SET:
            # Multi-user setSecret needs AWSCURRENT to log in: the attacker uses the
            # passwords they know (the master's: its secret's value copied into this one).
            password = self.known.get(username, password)
        value = self.bed.pg.secret_value(username, password, masterarn=master_arn)
        value["host"] = "localhost" if case == "another-host" else host
        return self.bed.secret(value)

    def managed(self, case: str) -> ManagedRoles:
        """Everything the attacker names but the other application (the list is the rule
        under test there), as generous as an operator could be."""
        roles = [MASTER, self.creator, self.member, self.rds_member, f"{self.victim}_clone"]
        if case == "another-host":
            roles.append(self.victim)
        return ManagedRoles(tuple(roles))


def _role(conn: Any, statement: str, *names: str) -> None:
    conn.execute(sql.SQL(statement).format(*(sql.Identifier(n) for n in names)))


@pytest.fixture
def world(multi: MultiBed) -> Iterator[World]:
    yield from _world(multi)


@pytest.fixture
def world_tls(multi_tls: MultiBed) -> Iterator[World]:
    yield from _world(multi_tls)


def _world(bed: MultiBed) -> Iterator[World]:
    _, victim, victim_password = bed.app(f"hw_victim_{secrets.token_hex(3)}")
    tag = secrets.token_hex(3)
    creator, member, mid, ops = (f"hw_{kind}_{tag}" for kind in ("creator", "member", "mid", "ops"))
    rds_member = f"hw_rdsmember_{tag}"
    known = {MASTER: bed.master_password}
    made: list[str] = []
    with admin_connect(bed.pg) as conn:
        _role(conn, "CREATE ROLE {} LOGIN CREATEROLE", creator)
        _role(conn, "CREATE ROLE {} NOLOGIN CREATEROLE", ops)
        _role(conn, "CREATE ROLE {} NOLOGIN IN ROLE {}", mid, ops)
        _role(conn, "CREATE ROLE {} LOGIN IN ROLE {}", member, mid)
        conn.execute("CREATE ROLE rds_superuser NOLOGIN")  # as on RDS; dropped afterwards
        _role(conn, "CREATE ROLE {} LOGIN IN ROLE rds_superuser", rds_member)
        for name in (creator, member, rds_member):
            known[name] = secrets.token_urlsafe(18)
            set_role_password(conn, name, known[name])
        made += [rds_member, member, mid, ops, creator]
        ours = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'").fetchone()
    world = World(bed, victim, victim_password, creator, member, ops, rds_member, known)
    yield world
    with admin_connect(bed.pg) as conn:
        for name in [*(f"{n}_clone" for n in made), *made]:
            _role(conn, "DROP ROLE IF EXISTS {}", name)
        if ours:
            conn.execute("DROP ROLE IF EXISTS rds_superuser")


def _make_pairs(world: World) -> None:
    """multi-user-parity: every role the attacker names already has a clone that is a
    member (as an earlier, legitimate rotation left it), so setSecret would alter it and
    run parity."""
    with admin_connect(world.bed.pg) as conn:
        for owner in (world.victim, world.creator, world.member, world.rds_member):
            _role(conn, "CREATE ROLE {} LOGIN IN ROLE {}", f"{owner}_clone", owner)


def _database_state(world: World) -> list[Any]:
    """Every role's password verifier and attributes, every membership, every setting."""
    with admin_connect(world.bed.pg) as conn:
        return [
            conn.execute(
                "SELECT rolname, rolpassword, rolsuper, rolcreaterole, rolbypassrls,"
                " rolreplication, rolcanlogin, rolconnlimit, rolvaliduntil::text"
                " FROM pg_authid ORDER BY rolname"
            ).fetchall(),
            conn.execute(
                "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members"
                " ORDER BY 1, 2"
            ).fetchall(),
            conn.execute(
                "SELECT setrole, setdatabase, setconfig FROM pg_db_role_setting ORDER BY 1, 2"
            ).fetchall(),
        ]


def _expected(world: World, path: str, case: str) -> str:
    """A regular expression for the rule the error must name."""
    multi_set = path in _MULTI_SET
    reconcile_multi = path == "reconcile-multi-user"
    return {
        "another-application": (
            "confused-deputy guard" if multi_set else r"does not list .*MASTER_MANAGED_ROLES"
        ),
        "the-master": rf"the master's own role \('{MASTER}'\)",
        "createrole": rf"'{world.creator}'.* has CREATEROLE.*never changes a privileged role",
        "member-of-createrole": (
            rf"is a member of '{world.ops}' \(CREATEROLE\).*never changes a privileged role"
        ),
        "member-of-rds_superuser": (
            r"is a member of 'rds_superuser' \(a privileged role by name\)"
        ),
        "missing-clone": (
            "confused-deputy guard"
            if multi_set
            else "reported, not created"
            if reconcile_multi
            else rf"role '{world.victim}_clone' does not exist; .* creates no role"
        ),
        "another-host": "neither the user's host",
    }[case]


def _master_logs_in(case: str) -> bool:
    """Whether the master may log in at all before the refusal (the guard's database part);
    every other refusal happens before its credential is sent anywhere."""
    return case in {
        "createrole",
        "member-of-createrole",
        "member-of-rds_superuser",
        "missing-clone",
    }


def _attack(world: World, path: str, case: str, *, master_arn: str, host: str, rds: Any) -> str:
    """Run ``path`` on the attacker's secret; returns the error text it ended with."""
    bed = world.bed
    arn = world.secret_for(case, path, master_arn, host)
    connector = PostgresConnector(connect=bed.connections, retry_policy=FAST, resolver=bed_resolver)
    topology = RdsTopology(rds) if rds is not None else None
    managed = world.managed(case)
    if path.startswith("reconcile"):
        strategy = path.removeprefix("reconcile-")
        before = _database_state(world)
        bed.connections.reset()
        (result,) = verify_secrets(
            bed.handler_client, [arn], strategy=strategy, reconcile=True, connector=connector,
            rds=topology, managed_roles=managed,
        )  # fmt: skip
        assert result.state.value == "drift", result
        assert _database_state(world) == before
        (action,) = result.actions
        assert action.startswith("reconcile failed: "), action
        return action
    if path == "single-user-recovery":
        strategy_obj: Any = PostgresSingleUser(connector, rds=topology, managed_roles=managed)
    else:
        strategy_obj = PostgresMultiUser(connector, rds=topology)
    rotator = Rotator(strategy_obj, SecretStore(bed.handler_client))
    driver = LocalRotation(bed.sm, rotator.handle)
    token = driver.begin(arn)
    rotator.handle(bed.event(arn, "createSecret", token))
    before = _database_state(world)
    labels = bed.labels(arn)
    bed.connections.reset()
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    assert _database_state(world) == before
    assert bed.labels(arn) == labels
    message = str(caught.value)
    assert arn in message
    assert "setSecret" in message
    return message


def _check(world: World, path: str, case: str, message: str) -> None:
    assert re.search(_expected(world, path, case), message), message
    assert (
        "Nothing was changed" in message
        or "nothing was changed" in message
        or ("confused-deputy" in message or "neither the user's host" in message)
    )
    for password in (JUNK, world.bed.master_password, *world.known.values()):
        assert password not in message
    if not _master_logs_in(case) and case != "the-master":
        # (With "the-master", the attacker's own secret logs in as that user, with JUNK.)
        assert world.bed.connections.by_user.get(MASTER, 0) == 0
    # The victim's application still logs in with its own password.
    assert world.bed.logs_in({"username": world.victim, "password": world.victim_password})


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", PATHS)
def test_the_master_refuses_the_hostile_writer(world: World, path: str, case: str) -> None:
    if path == "multi-user-parity":
        _make_pairs(world)
    master_arn = world.bed.master_secret()
    message = _attack(world, path, case, master_arn=master_arn, host=world.bed.pg.host, rds=None)
    _check(world, path, case, message)


@pytest.fixture
def rds(moto_endpoint: Any) -> Any:
    return boto3.client("rds")


def _rds_master(world: World, rds: Any) -> tuple[str, str]:
    """An RDS-managed master secret (username and password only, tagged with its
    instance), and the instance's endpoint, which the test bed routes to the cluster."""
    bed = world.bed
    instance = rds.create_db_instance(
        DBInstanceIdentifier=f"db-{secrets.token_hex(4)}", Engine="postgres",
        DBInstanceClass="db.t3.micro", MasterUsername=MASTER,
        MasterUserPassword="irrelevant-here", Port=bed.pg.port, AllocatedStorage=20,
    )["DBInstance"]  # fmt: skip
    arn = bed.sm.create_secret(
        Name=f"rds!db-{secrets.token_hex(4)}",
        SecretString=json.dumps({"username": MASTER, "password": bed.master_password}),
        Tags=[{"Key": INSTANCE_TAG, "Value": instance["DBInstanceArn"]}],
    )["ARN"]
    return str(arn), str(instance["Endpoint"]["Address"])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", PATHS)
def test_an_rds_managed_master_refuses_the_hostile_writer(
    world_tls: World, rds: Any, path: str, case: str
) -> None:
    """The same, with the master found through the RDS API: before #20, single-user
    recovery sent this master's credential to whatever host AWSCURRENT named."""
    if path == "multi-user-parity":
        _make_pairs(world_tls)
    master_arn, endpoint = _rds_master(world_tls, rds)
    message = _attack(world_tls, path, case, master_arn=master_arn, host=endpoint, rds=rds)
    _check(world_tls, path, case, message)


# -- what still works ----------------------------------------------------------------------


def _drift(world: World, role: str) -> None:
    with admin_connect(world.bed.pg) as conn:
        set_role_password(conn, role, secrets.token_urlsafe(18))


def test_a_listed_role_whose_password_drifted_is_recovered(world: World) -> None:
    bed = world.bed
    arn = bed.secret(
        bed.pg.secret_value(world.victim, world.victim_password, masterarn=bed.master_secret())
    )
    _drift(world, world.victim)
    strategy = PostgresSingleUser(
        PostgresConnector(connect=bed.connections, retry_policy=FAST, resolver=bed_resolver),
        managed_roles=ManagedRoles.parse(f"hw_victim_*, {world.creator}"),
    )
    run = LocalRotation(bed.sm, Rotator(strategy, SecretStore(bed.handler_client)).handle).rotate(
        arn
    )
    assert run.succeeded, run.steps
    assert bed.labelled_logins(arn) == [AWSCURRENT]


def test_a_listed_role_is_recovered_through_an_rds_managed_master(
    world_tls: World, rds: Any
) -> None:
    bed = world_tls.bed
    master_arn, endpoint = _rds_master(world_tls, rds)
    value = bed.pg.secret_value(world_tls.victim, world_tls.victim_password, masterarn=master_arn)
    arn = bed.secret({**value, "host": endpoint})
    _drift(world_tls, world_tls.victim)
    strategy = PostgresSingleUser(
        PostgresConnector(connect=bed.connections, retry_policy=FAST, resolver=bed_resolver),
        rds=RdsTopology(rds),
        managed_roles=ManagedRoles((world_tls.victim,)),
    )
    run = LocalRotation(bed.sm, Rotator(strategy, SecretStore(bed.handler_client)).handle).rotate(
        arn
    )
    assert run.succeeded, run.steps
    assert bed.connections.by_user[MASTER] == 1
    assert bed.logs_in({**bed.value(arn), "host": bed.pg.host})


def test_unset_master_managed_roles_fails_recovery_naming_the_variable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The behaviour change: recovery through the master needs MASTER_MANAGED_ROLES."""
    monkeypatch.delenv("MASTER_MANAGED_ROLES", raising=False)
    bed = world.bed
    arn = bed.secret(
        bed.pg.secret_value(world.victim, world.victim_password, masterarn=bed.master_secret())
    )
    _drift(world, world.victim)
    before = _database_state(world)
    strategy = PostgresSingleUser(
        PostgresConnector(connect=bed.connections, retry_policy=FAST, resolver=bed_resolver)
    )
    rotator = Rotator(strategy, SecretStore(bed.handler_client))
    token = LocalRotation(bed.sm, rotator.handle).begin(arn)
    rotator.handle(bed.event(arn, "createSecret", token))
    bed.connections.reset()
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    message = str(caught.value)
    assert arn in message
    assert "setSecret" in message
    assert "MASTER_MANAGED_ROLES is not set" in message
    assert "lists the roles the master may give a password" in message
    assert "add it to MASTER_MANAGED_ROLES" in message
    assert bed.connections.by_user.get(MASTER, 0) == 0
    assert _database_state(world) == before


def test_a_list_naming_every_role_is_refused_before_any_login(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MASTER_MANAGED_ROLES", "app_1, *")
    bed = world.bed
    arn = bed.secret(
        bed.pg.secret_value(world.victim, world.victim_password, masterarn=bed.master_secret())
    )
    strategy = PostgresSingleUser(
        PostgresConnector(connect=bed.connections, retry_policy=FAST, resolver=bed_resolver)
    )
    rotator = Rotator(strategy, SecretStore(bed.handler_client))
    token = LocalRotation(bed.sm, rotator.handle).begin(arn)
    rotator.handle(bed.event(arn, "createSecret", token))
    bed.connections.reset()
    with pytest.raises(RotationError, match=r"may not be '\*' alone"):
        rotator.handle(bed.event(arn, "setSecret", token))
    assert bed.connections.total == 0


# -- the database's owner: what it controls never runs as the master ---------------------
#
# An application that owns its database (its secret's dbname) controls that database's
# schemas and its ALTER DATABASE ... SET defaults. A master secret without a dbname (every
# RDS-managed one) logs in there. The owner puts `public` before `pg_catalog` and plants
# operators for every pair of types the master's catalog queries compare; each one, run by
# anyone but the owner, records who ran it and tries to reset another application's
# password. Every path on which the master runs SQL is played on a clean, non-hostile
# secret: none may run the owner's code, and the server's own statement log shows that
# every statement of every master session ran inside a transaction whose first statement
# pinned search_path.

OWNER_PATHS = [
    "multi-user-rotation",
    "single-user-recovery",
    "reconcile-single-user",
    "reconcile-multi-user",
    "status",
    "doctor",
    "plan",
]
PWNED = "pwned-by-the-database-owner-1"
PIN = "SET LOCAL search_path = pg_catalog, pg_temp"
# (operator, left, right): what the master's queries compare (pg_sql, pg_sessions, doctor).
_PLANTED = [
    ("=", "oid", "oid"),
    ("=", "name", "name"),
    ("=", "name", "text"),
    ("=", "text", "text"),
    ("=", "integer", "integer"),
    ("<>", "integer", "integer"),
]


@dataclass
class OwnedDatabase:
    bed: MultiBed
    name: str
    owner: str
    owner_password: str
    victim: str
    victim_password: str
    master_arn: str  # no dbname, as RDS makes it: the master logs in to the owner's database

    def secret(self, password: str | None = None) -> str:
        value = self.bed.pg.secret_value(
            self.owner, password or self.owner_password, masterarn=self.master_arn
        )
        return self.bed.secret({**value, "dbname": self.name})

    def loot(self) -> list[tuple[str, str]]:
        info = {**self.bed.pg.conninfo(), "dbname": self.name}
        with psycopg.connect(**info, autocommit=True) as conn:
            rows = conn.execute("SELECT DISTINCT who, what FROM public.loot").fetchall()
        return [(str(who), str(what)) for who, what in rows]


def _plant(conn: psycopg.Connection[Any], owner: str, victim: str) -> None:
    """The owner's operators (see above): each records a caller other than the owner and
    tries to give ``victim`` the owner's password, then answers as pg_catalog's would."""
    body = sql.SQL(
        "BEGIN IF session_user::text <> {owner} THEN"
        " INSERT INTO public.loot VALUES (session_user::text, current_user::text);"
        " BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', {victim}, {pwned});"
        " EXCEPTION WHEN others THEN NULL; END;"
        " END IF; RETURN $1 OPERATOR(pg_catalog.{operator}) $2; END"
    )
    for index, (operator, left, right) in enumerate(_PLANTED):
        function = sql.Identifier("public", f"planted_{index}")
        text = body.format(
            owner=sql.Literal(owner),
            victim=sql.Literal(victim),
            pwned=sql.Literal(PWNED),
            operator=sql.SQL(operator),
        ).as_string(conn)
        conn.execute(
            sql.SQL("CREATE FUNCTION {}({}, {}) RETURNS boolean LANGUAGE plpgsql AS {}").format(
                function, sql.SQL(left), sql.SQL(right), sql.Literal(text)
            )
        )
        conn.execute(
            sql.SQL(
                "CREATE OPERATOR public.{} (LEFTARG = {}, RIGHTARG = {}, FUNCTION = {})"
            ).format(sql.SQL(operator), sql.SQL(left), sql.SQL(right), function)
        )


@pytest.fixture
def owned(multi: MultiBed) -> Iterator[OwnedDatabase]:
    bed = multi
    _, victim, victim_password = bed.app(f"hw_victim_{secrets.token_hex(3)}")
    _, owner, owner_password = bed.app(f"hw_dbowner_{secrets.token_hex(3)}")
    name = f"db_{owner}"
    with admin_connect(bed.pg) as conn:
        _role(conn, "CREATE DATABASE {} OWNER {}", name, owner)
    try:
        info = {**bed.pg.conninfo(owner, owner_password), "dbname": name}
        with psycopg.connect(**info, autocommit=True) as conn:
            # All of this is the owner's own right in its own database.
            _role(conn, "ALTER DATABASE {} SET search_path = public, pg_catalog", name)
            conn.execute("CREATE TABLE public.loot (who text, what text)")
            conn.execute("GRANT INSERT, SELECT ON public.loot TO PUBLIC")
            _plant(conn, owner, victim)
        # The plant works: a session of anyone else in that database runs it.
        with psycopg.connect(**{**bed.pg.conninfo(), "dbname": name}, autocommit=True) as conn:
            conn.execute("SELECT 1 FROM pg_roles WHERE oid = 10").fetchall()
        master_arn = bed.master_secret(dbname=None)
        database = OwnedDatabase(
            bed, name, owner, owner_password, victim, victim_password, master_arn
        )
        assert database.loot(), "the planted operators never ran: the test proves nothing"
        with psycopg.connect(**{**bed.pg.conninfo(), "dbname": name}, autocommit=True) as conn:
            conn.execute("TRUNCATE public.loot")
            # (That check ran as the superuser, so the plant reset the victim: undone.)
            set_role_password(conn, victim, victim_password)
        yield database
    finally:
        with admin_connect(bed.pg) as conn:
            _role(conn, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


def _master_statements(log: str) -> dict[str, list[str]]:
    """Each master session's statements, from the server's own log (log_statement=all)."""
    sessions: dict[str, list[str]] = {}
    masters: set[str] = set()
    for line in log.splitlines():
        found = re.search(r"\[(\d+)\] LOG:  connection authorized: user=(\S+)", line)
        if found and found.group(2) == MASTER:
            masters.add(found.group(1))
            sessions[found.group(1)] = []
            continue
        found = re.search(r"\[(\d+)\] LOG:  (?:statement|execute [^:]*): (.*)$", line)
        if found and found.group(1) in masters:
            sessions[found.group(1)].append(found.group(2).strip())
    return sessions


# Each transaction's first statement is the step's bounds (handlers.pg_bounds), before the
# pin: it calls pg_catalog.set_config by its qualified name with bind parameters, so no name
# in it resolves through search_path. Anything else before the pin is a failure.
_BOUNDS = (
    "SELECT pg_catalog.set_config('statement_timeout', $1, true), "
    "pg_catalog.set_config('lock_timeout', $2, true)"
)


def _unpinned(statements: list[str]) -> list[str]:
    """Statements that ran outside a transaction opened by the pin."""
    wrong, state = [], "idle"
    for statement in statements:
        if state == "idle":
            state = "begun" if statement in ("BEGIN", "BEGIN READ WRITE") else "idle"
            if state == "idle":
                wrong.append(statement)
        elif state == "begun":
            if statement == _BOUNDS:
                continue  # fully qualified, bind parameters only: nothing to resolve
            state = "pinned" if statement == PIN else "begun"
            if state == "begun":
                wrong.append(statement)
        elif statement in ("COMMIT", "ROLLBACK"):
            state = "idle"
    return wrong


def _run_as_owner(database: OwnedDatabase, path: str) -> str:
    """Run ``path`` on the owner's own (clean) secret; returns what it did, for messages."""
    bed = database.bed
    connector = PostgresConnector(connect=bed.connections, retry_policy=FAST)
    client = bed.handler_client
    managed = ManagedRoles((database.owner, f"{database.owner}_clone"))
    if path == "multi-user-rotation":
        arn = database.secret()
        run = bed.driver(bed.rotator()).rotate(arn)
        assert run.succeeded, run.steps
        return "rotated"
    if path == "single-user-recovery":
        arn = database.secret("a-password-that-drifted-1")
        strategy = PostgresSingleUser(connector, managed_roles=managed)
        run = LocalRotation(bed.sm, Rotator(strategy, SecretStore(client)).handle).rotate(arn)
        assert run.succeeded, run.steps
        assert bed.logs_in(bed.value(arn))
        return "recovered"
    if path.startswith("reconcile"):
        strategy_name = path.removeprefix("reconcile-")
        arn = database.secret()
        if strategy_name == "multi-user":
            assert bed.driver(bed.rotator()).rotate(arn).succeeded
        user = bed.value(arn)["username"]
        _drift_role(bed, user)
        (result,) = verify_secrets(
            client, [arn], strategy=strategy_name, reconcile=True, connector=connector,
            managed_roles=managed,
        )  # fmt: skip
        assert any(a.startswith(("set the password", "reset the password")) for a in result.actions)
        assert bed.logs_in(bed.value(arn))
        return ", ".join(result.actions)
    arn = database.secret()
    assert bed.driver(bed.rotator()).rotate(arn).succeeded  # a pair, for the readers
    log = ServerLog(bed.pg)
    if path == "status":
        report = collect_pair_sessions(client, arn, connector=connector)
        assert report["checked"], report
    elif path == "doctor":
        checks = {check.name: check for check in run_doctor(client, arn, strategy="multi-user")}
        assert checks["login as the master"].ok, checks
        assert checks["master may create roles"].ok, checks
    else:
        plan = build_plan(client, arn, strategy="multi-user", connector=connector)
        assert plan, plan
    assert _master_statements(log.since()), "the master read nothing: the test proves nothing"
    return path


def _drift_role(bed: MultiBed, role: str) -> None:
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, role, secrets.token_urlsafe(18))


@pytest.mark.parametrize("path", OWNER_PATHS)
def test_nothing_the_database_owner_plants_runs_as_the_master(
    owned: OwnedDatabase, path: str
) -> None:
    log = ServerLog(owned.bed.pg)
    done = _run_as_owner(owned, path)
    assert [who for who, _ in owned.loot() if who == MASTER] == [], done
    assert not owned.bed.logs_in({"username": owned.victim, "password": PWNED})
    assert owned.bed.logs_in({"username": owned.victim, "password": owned.victim_password})
    sessions = _master_statements(log.since())
    assert sessions, "no master session in the server's log: the test proves nothing"
    for pid, statements in sessions.items():
        assert statements, pid
        assert _unpinned(statements) == [], (pid, statements)


def test_the_guard_refuses_a_transaction_that_did_not_pin_search_path(multi: MultiBed) -> None:
    """The second layer: a master statement that skipped the session (a bug) meets a guard
    that checks the pin before its first operator runs."""
    _, victim, _ = multi.app(f"hw_victim_{secrets.token_hex(3)}")
    action = MasterAction(role=victim, what="a test", managed=ManagedRoles((victim,)))
    unpinned = r"not the master session's 'pg_catalog, pg_temp'"
    with (
        multi.master_connect() as conn,
        conn.transaction(),
        pytest.raises(AuthorityError, match=unpinned),
    ):
        authorise(conn, action)
    with (
        multi.master_connect() as conn,
        MasterSession(conn, password="unused-in-this-test").transaction(writes=True) as pinned,
    ):
        assert authorise(pinned, action).role == victim


# -- predefined roles: the ones that read, write, signal or reach out are privileged -------

PRIVILEGED_PREDEFINED = [
    "pg_read_all_data",
    "pg_write_all_data",
    "pg_signal_backend",
    "pg_checkpoint",
    "pg_create_subscription",  # PostgreSQL 16+
    "pg_use_reserved_connections",  # PostgreSQL 16+
    "pg_maintain",  # PostgreSQL 17+
]


def _member_of_predefined(bed: MultiBed, predefined: str, *, via: bool) -> str:
    """An application role (``app_*``, as an operator's prefix list names them) that is a
    member of ``predefined``, directly or (``via``) through a plain role."""
    tag = secrets.token_hex(3)
    _, role, _ = bed.app(f"app_report_{tag}")
    with admin_connect(bed.pg) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (predefined,)).fetchone():
            if via:
                middle = f"hw_mid_{tag}"
                _role(conn, "CREATE ROLE {} NOLOGIN IN ROLE {}", middle, predefined)
                _role(conn, "GRANT {} TO {}", middle, role)
                bed.created.append(middle)
            else:
                _role(conn, "GRANT {} TO {}", predefined, role)
        else:
            pytest.skip(f"{predefined} is not on PostgreSQL {conn.info.server_version // 10000}")
    return role


@pytest.mark.parametrize("via", [False, True], ids=["direct", "through-a-plain-role"])
@pytest.mark.parametrize("predefined", PRIVILEGED_PREDEFINED)
def test_a_member_of_a_powerful_predefined_role_is_not_recovered(
    multi: MultiBed, predefined: str, via: bool
) -> None:
    """With MASTER_MANAGED_ROLES=app_*, a secret naming a member of pg_read_all_data (say)
    is refused: otherwise the writer would read every table with the password it chose."""
    bed = multi
    role = _member_of_predefined(bed, predefined, via=via)
    before = _database_state_of(bed)
    arn = bed.secret(bed.pg.secret_value(role, JUNK, masterarn=bed.master_secret()))
    strategy = PostgresSingleUser(
        PostgresConnector(connect=bed.connections, retry_policy=FAST),
        managed_roles=ManagedRoles(("app_*",)),
    )
    rotator = Rotator(strategy, SecretStore(bed.handler_client))
    token = LocalRotation(bed.sm, rotator.handle).begin(arn)
    rotator.handle(bed.event(arn, "createSecret", token))
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    message = str(caught.value)
    assert f"is a member of '{predefined}' (a privileged role by name)" in message, message
    assert "never changes a privileged role" in message
    assert _database_state_of(bed) == before
    assert not bed.logs_in({"username": role, "password": JUNK})


def test_a_member_of_the_monitoring_roles_is_still_recovered(multi: MultiBed) -> None:
    """pg_monitor (pg_read_all_stats, pg_read_all_settings, pg_stat_scan_tables) reads
    statistics and settings only: a monitoring agent's role stays repairable."""
    bed = multi
    role = _member_of_predefined(bed, "pg_monitor", via=False)
    arn = bed.secret(bed.pg.secret_value(role, JUNK, masterarn=bed.master_secret()))
    strategy = PostgresSingleUser(
        PostgresConnector(connect=bed.connections, retry_policy=FAST),
        managed_roles=ManagedRoles(("app_*",)),
    )
    run = LocalRotation(bed.sm, Rotator(strategy, SecretStore(bed.handler_client)).handle).rotate(
        arn
    )
    assert run.succeeded, run.steps
    assert bed.labelled_logins(arn) == [AWSCURRENT]


def _database_state_of(bed: MultiBed) -> list[Any]:
    with admin_connect(bed.pg) as conn:
        return conn.execute(
            "SELECT rolname, rolpassword FROM pg_authid ORDER BY rolname"
        ).fetchall()
