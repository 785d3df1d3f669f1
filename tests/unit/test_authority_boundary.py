"""No master action bypasses the guard (handlers/pg_authority.py), read from the source.

Every statement that changes a role is built in handlers/pg_sql.py by a function that takes
an ``AuthorisedRole``; only the guard makes one (sealed at run time too); only ``rotation
plan`` asks for a display-only one; and no other module of the Lambda side or the command
spells role-changing SQL of its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from handlers.pg_authorised import AuthorisedRole
from handlers.pg_config import ManagedRoles, master_managed_roles
from handlers.pg_connect import PostgresConnector
from handlers.pg_sql import alter_password, create_login_role, grant_membership, revoke_role
from rotation.errors import ConfigurationError
from rotation.retry import Deadline
from rotation_contract.pg.secret import PostgresSecret, master_login

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for name in ("handlers", "rotation", "contract/rotation_contract", "tools/rotation_tools")
    for p in (ROOT / name).rglob("*.py")
)
_CHANGES_A_ROLE = re.compile(
    r"^\s*(ALTER ROLE|CREATE ROLE|CREATE USER|ALTER USER|GRANT|REVOKE|DROP ROLE)\b", re.I
)
# Not master actions: the demo, the sandbox (seed.py) and the test bed set up their own
# throwaway databases as their superuser, outside any rotation.
_SETUP_ONLY = ("tools/rotation_tools/demo.py", "tools/rotation_tools/seed.py", "testbed/")


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _calls(tree: ast.AST, name: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]


def test_only_the_guard_makes_an_authorised_role() -> None:
    found = {
        _relative(path): lines
        for path in SOURCES
        if (lines := _calls(ast.parse(path.read_text()), "AuthorisedRole"))
    }
    assert set(found) == {"handlers/pg_authority.py"}


def test_only_the_plan_asks_for_a_display_only_token() -> None:
    found = {
        _relative(path)
        for path in SOURCES
        if _relative(path) != "handlers/pg_authority.py"
        and _calls(ast.parse(path.read_text()), "planned")
    }
    assert found == {"tools/rotation_tools/plan.py"}


def _sql_texts(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_every_builder_that_changes_a_role_takes_the_guards_token() -> None:
    tree = ast.parse((ROOT / "handlers" / "pg_sql.py").read_text())
    builders = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            _CHANGES_A_ROLE.match(text)
            for text in _sql_texts(node)
            if text != ast.get_docstring(node)
        ):
            annotations = [ast.unparse(a.annotation) for a in node.args.args if a.annotation]
            builders[node.name] = "AuthorisedRole" in annotations
    assert builders, "the guard test found no builder: the pattern is wrong"
    assert {name for name, guarded in builders.items() if not guarded} == set()
    assert {"alter_password", "create_login_role", "grant_membership", "revoke_role"} <= set(
        builders
    )


def test_no_other_module_spells_role_changing_sql() -> None:
    found: dict[str, list[int]] = {}
    for path in SOURCES:
        relative = _relative(path)
        if relative == "handlers/pg_sql.py" or relative.startswith(_SETUP_ONLY):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            # Only text handed to psycopg counts: sql.SQL(...) or conn.execute("...").
            if isinstance(node, ast.Call) and (
                isinstance(node.func, ast.Attribute) and node.func.attr in {"SQL", "execute"}
            ):
                for text in _sql_texts(node):
                    if _CHANGES_A_ROLE.match(text):
                        found.setdefault(relative, []).append(node.lineno)
    assert found == {}


def test_a_bare_name_or_a_forged_token_is_refused_at_run_time() -> None:
    with pytest.raises(TypeError, match="from the guard"):
        alter_password("victim", "SCRAM-SHA-256$x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from the guard"):
        create_login_role("victim_clone", "SCRAM-SHA-256$x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from the guard"):
        grant_membership("victim", "victim_clone")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from the guard"):
        revoke_role("x", "victim_clone")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"handlers\.pg_authority"):
        AuthorisedRole("victim", "forged")


# -- the master's session: every statement of the master's in a pinned transaction ----------


def _names(tree: ast.AST, name: str) -> list[int]:
    """Lines that mention ``name``: as a name, an attribute, an import or a keyword."""
    lines = []
    for node in ast.walk(tree):
        if (
            (isinstance(node, ast.Name) and node.id == name)
            or (isinstance(node, ast.Attribute) and node.attr == name)
            or (isinstance(node, ast.keyword) and node.arg == name)
        ):
            lines.append(getattr(node, "lineno", 0))
        elif isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            lines.append(node.lineno)
    return lines


def _holders(name: str) -> set[str]:
    return {_relative(path) for path in SOURCES if _names(ast.parse(path.read_text()), name)}


def test_only_the_master_session_logs_the_master_in() -> None:
    # The connector opens a MasterSecret only with the seal; only handlers.master has it.
    assert _holders("_MASTER_SEAL") == {"handlers/pg_connect.py", "handlers/master.py"}
    passes_it = {
        _relative(path)
        for path in SOURCES
        if any(
            isinstance(node, ast.keyword) and node.arg == "_master"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    }
    assert passes_it == {"handlers/master.py"}


def test_only_master_login_makes_a_master_credential() -> None:
    found = {
        _relative(path) for path in SOURCES if _calls(ast.parse(path.read_text()), "MasterSecret")
    }
    assert found == {"contract/rotation_contract/pg/secret.py"}


def test_the_master_sessions_connection_is_reached_only_through_its_transactions() -> None:
    assert _holders("_conn") == {"handlers/master.py"}
    assert {
        _relative(path) for path in SOURCES if _calls(ast.parse(path.read_text()), "MasterSession")
    } == {"handlers/master.py"}


def test_the_connector_refuses_the_masters_credential_outside_its_session() -> None:
    opened: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> Any:
        opened.append(kwargs)
        raise AssertionError("never reached")

    current = PostgresSecret("postgres", "db.example.com", 5432, "app", "pw", "appdb")
    master = master_login(current, current, host="db.example.com", port=5432, dbname=None)
    connector = PostgresConnector(connect=connect)
    for attempt in (connector.connect, connector.try_login):
        with pytest.raises(TypeError, match=r"handlers\.master\.open_master"):
            attempt(master, Deadline.in_seconds(5), who="the master secret", floor="require")
    assert opened == []


@pytest.mark.parametrize(
    ("raw", "role", "allowed"),
    [
        ("app", "app", True),
        ("app", "App", False),  # role names are case-sensitive
        ("app", "app_clone", False),
        ("app_*", "app_clone", True),
        ("app_*", "app", False),
        (" a , b ,, ", "b", True),
        ("", "app", False),
        (None, "app", False),
    ],
)
def test_master_managed_roles_match_exactly_or_by_trailing_prefix(
    raw: str | None, role: str, allowed: bool
) -> None:
    assert ManagedRoles.parse(raw).allows(role) is allowed


@pytest.mark.parametrize("raw", ["*", "app, *", "a*b", "*app"])
def test_a_star_alone_or_inside_a_name_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="MASTER_MANAGED_ROLES"):
        master_managed_roles({"MASTER_MANAGED_ROLES": raw})


def test_the_commands_option_wins_over_the_environment() -> None:
    managed = master_managed_roles({"MASTER_MANAGED_ROLES": "a"}, explicit="b")
    assert managed.entries == ("b",)
    assert "--master-managed-roles" in managed.source
    assert not master_managed_roles({}).is_set
