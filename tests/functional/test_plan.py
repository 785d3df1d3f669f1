"""``rotation plan``: changes nothing, prints no password, and shows exactly the statements a
real rotation then sends (compared with the server's log, log_statement=all)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from psycopg import sql

from rotation_tools.plan import BOUND_PARAMS, LOCK_KEY_PARAM
from testbed.pgcluster import PostgresCluster
from tests.fix_multi import MultiBed
from tests.fix_postgres import ServerLog, admin_connect
from tests.fix_rotation import Bed
from tests.functional.test_cli import rotation

pytestmark = pytest.mark.functional

_LINE = re.compile(r"\[(\d+)\] (LOG|DETAIL):  (.*)")
_VERIFIER = re.compile(r"'SCRAM-SHA-256\$[^']*'")
_BOUNDS = "SELECT pg_catalog.set_config('statement_timeout'"
_PAIR_LOCK = "SELECT pg_catalog.pg_advisory_xact_lock("


def _statements_by_user(log: str) -> list[tuple[str, str, str]]:
    """(user, statement, parameters) for every statement in the log, in order."""
    users: dict[str, str] = {}
    found: list[tuple[str, str, str]] = []
    for raw in log.splitlines():
        match = _LINE.search(raw)
        if not match:
            continue
        pid, kind, text = match.groups()
        if text.startswith("connection authorized: user="):
            users[pid] = text.split("user=", 1)[1].split()[0]
        elif kind == "LOG" and (text.startswith("statement: ") or text.startswith("execute ")):
            statement = text.split(": ", 1)[1]
            found.append((users.get(pid, "?"), _VERIFIER.sub("'<redacted>'", statement), ""))
        elif kind == "DETAIL" and text.lower().startswith("parameters: ") and found:
            # "parameters:" up to PostgreSQL 17, "Parameters:" from 18.
            user, statement, _ = found[-1]
            params = text[len("parameters: ") :]
            if statement.startswith(_BOUNDS):
                # The time left when the transaction started: the plan cannot know it.
                assert re.fullmatch(r"\$1 = '[1-9][0-9]*', \$2 = '[1-9][0-9]*'", params)
                params = ", ".join(f"${i} = '{p}'" for i, p in enumerate(BOUND_PARAMS, 1))
            if statement.startswith(_PAIR_LOCK):
                # An HMAC of a password (handlers.pg_lock): the plan shows a placeholder.
                assert re.fullmatch(r"\$1 = '-?[0-9]+'", params)
                params = f"$1 = '{LOCK_KEY_PARAM}'"
            found[-1] = (user, statement, params)
    return found


def _pg_param(value: Any) -> str:
    """A parameter as the server log shows it."""
    if isinstance(value, list):
        return "'{" + ",".join(value) + "}'"
    return "'" + str(value) + "'"


def _planned(document: dict[str, Any], step: str) -> list[tuple[str, str]]:
    (planned,) = [s for s in document["steps"] if s["step"] == step]
    return [
        (
            s["sql"],
            ", ".join(f"${i} = {_pg_param(p)}" for i, p in enumerate(s["params"], 1)),
        )
        for s in planned["statements"]
    ]


def _database_state(cluster: PostgresCluster) -> list[Any]:
    with admin_connect(cluster) as conn:
        return [
            conn.execute(
                "SELECT rolname, rolpassword, rolconnlimit, rolvaliduntil::text, rolcanlogin"
                " FROM pg_authid ORDER BY rolname"
            ).fetchall(),
            conn.execute(
                "SELECT setrole, setdatabase, setconfig FROM pg_db_role_setting ORDER BY 1, 2"
            ).fetchall(),
            conn.execute("SELECT roleid, member FROM pg_auth_members ORDER BY 1, 2").fetchall(),
        ]


def _secrets_state(sm: Any, *arns: str) -> list[Any]:
    state = []
    for arn in arns:
        described = sm.describe_secret(SecretId=arn)
        versions = sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
        state.append(
            (
                described["VersionIdsToStages"],
                described.get("RotationEnabled"),
                sorted(v["VersionId"] for v in versions),
                sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"],
            )
        )
    return state


def _plan(arn: str, strategy: str) -> tuple[dict[str, Any], str]:
    as_json = rotation("plan", arn, "--strategy", strategy, "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    text = rotation("plan", arn, "--strategy", strategy)
    assert text.returncode == 0, text.stderr
    return json.loads(as_json.stdout), text.stdout + text.stderr + as_json.stderr


def test_single_user_plan_changes_nothing_and_matches_the_rotation(bed: Bed) -> None:
    arn, user, password = bed.user_secret()
    secrets_before, database_before = _secrets_state(bed.sm, arn), _database_state(bed.pg)
    during = ServerLog(bed.pg)
    document, text = _plan(arn, "single-user")
    assert _secrets_state(bed.sm, arn) == secrets_before
    assert _database_state(bed.pg) == database_before
    # The plan's own sessions (doctor's logins) only read.
    for _, statement, _ in _statements_by_user(during.since()):
        assert statement.split()[0].upper() in {"SELECT", "BEGIN", "COMMIT", "ROLLBACK"}
    assert password not in text + json.dumps(document)
    assert document["ok"] is True
    assert document["failed_checks"] == []
    assert [s["step"] for s in document["steps"]] == [
        "createSecret", "setSecret", "testSecret", "finishSecret",
    ]  # fmt: skip
    (set_step,) = [s for s in document["steps"] if s["step"] == "setSecret"]
    (login,) = set_step["logins"]
    assert (login["credential"], login["user"], login["sslmode"]) == (
        "AWSCURRENT", user, "verify-full",
    )  # fmt: skip
    assert login["require_auth"] == "scram-sha-256,md5"
    assert f"ALTER ROLE \"{user}\" PASSWORD '<redacted>'" in text
    assert sum(len(s["secrets_manager"]) for s in document["steps"]) == 8  # the docs' count

    log = ServerLog(bed.pg)
    run = bed.driver(bed.rotator()).rotate(arn)
    assert run.succeeded
    executed = [(s, p) for u, s, p in _statements_by_user(log.since()) if u == user]
    assert executed == _planned(document, "setSecret") + _planned(document, "testSecret")


@pytest.mark.parametrize("rotations_before", [0, 1], ids=["creates-clone", "alters-clone"])
def test_multi_user_plan_matches_the_rotation(multi: MultiBed, rotations_before: int) -> None:
    arn, user, password = multi.app()
    for _ in range(rotations_before * 2):  # back to the user as AWSCURRENT
        assert multi.driver(multi.rotator()).rotate(arn).succeeded
    with admin_connect(multi.pg) as conn:  # something the clone must be made to match
        conn.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = '7s'").format(sql.Identifier(user))
        )
    master_arn = multi.value(arn)["masterarn"]
    secrets_before = _secrets_state(multi.sm, arn, master_arn)
    database_before = _database_state(multi.pg)
    document, text = _plan(arn, "multi-user")
    assert _secrets_state(multi.sm, arn, master_arn) == secrets_before
    assert _database_state(multi.pg) == database_before
    current = multi.value(arn)
    for secret in (password, current["password"], multi.master_password):
        assert secret not in text + json.dumps(document)
    (set_step,) = [s for s in document["steps"] if s["step"] == "setSecret"]
    assert [login["credential"] for login in set_step["logins"]] == [
        "AWSPENDING", "AWSCURRENT", "the master secret",
    ]  # fmt: skip
    assert sum(len(s["secrets_manager"]) for s in document["steps"]) == 9  # the docs' count
    verb = "ALTER ROLE" if rotations_before else "CREATE ROLE"
    assert f'{verb} "{user}_clone"' in text
    assert "statement_timeout" in text

    log = ServerLog(multi.pg)
    assert multi.driver(multi.rotator()).rotate(arn).succeeded
    statements = _statements_by_user(log.since())
    by_master = [(s, p) for u, s, p in statements if u == "rotation_master"]
    by_pending = [(s, p) for u, s, p in statements if u == f"{user}_clone"]
    assert by_master == _planned(document, "setSecret")
    assert by_pending == _planned(document, "testSecret")


def test_the_plan_names_the_checks_doctor_fails(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    with admin_connect(bed.pg) as conn:  # the stored password no longer logs in
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(user)))
    result = rotation("plan", arn, "--strategy", "single-user", "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert [c["name"] for c in document["failed_checks"]] == ["login as AWSCURRENT"]


def test_a_master_without_catalog_access_is_one_line_error(multi: MultiBed) -> None:
    """A hardened cluster that revoked the catalog from PUBLIC: the plan's catalog read as the
    master fails with the CLI's one-line error naming the cause, not a traceback."""
    arn, _, password = multi.app()
    with admin_connect(multi.pg) as conn:
        conn.execute("REVOKE SELECT ON pg_catalog.pg_db_role_setting FROM PUBLIC")
    try:
        result = rotation("plan", arn, "--strategy", "multi-user", "--json")
    finally:
        with admin_connect(multi.pg) as conn:
            conn.execute("GRANT SELECT ON pg_catalog.pg_db_role_setting TO PUBLIC")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert "reading the catalog as the master (rotation_master) failed" in document["error"]
    assert "InsufficientPrivilege, 42501" in document["error"]
    for secret in (password, multi.master_password):
        assert secret not in result.stdout + result.stderr


def test_the_plan_says_when_there_is_no_rotation_window(bed: Bed) -> None:
    # moto keeps no rotation rules for a function it cannot invoke: the windows themselves
    # are computed from AWS-shaped entries in tests/unit/test_plan_windows.py.
    arn, _, _ = bed.user_secret()
    document, text = _plan(arn, "single-user")
    assert document["windows"]["windows"] == []
    assert document["windows"]["notes"] == ["rotation is not enabled with a schedule: no window"]
    assert "Rotation windows (no schedule)" in text
