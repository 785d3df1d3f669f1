"""``rotation status`` and ``rotation plan`` show when AWSPREVIOUS's password expires
(``PREVIOUS_PASSWORD_TTL``), the operator's ``VALID UNTIL`` as the operator's, and nothing
set when the rotation set nothing. Real PostgreSQL (read as the master), moto over HTTP;
"expired" is judged on the server's clock (TTL 0: no wait)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from psycopg import sql

from handlers.pg_expiry import expiry_time, is_rotation_expiry
from rotation import AWSPREVIOUS
from rotation_tools.console import Console
from rotation_tools.pair_sessions import collect_pair_sessions, render_pair_sessions
from rotation_tools.plan import build_plan, render_plan
from tests.fix_multi import MultiBed
from tests.functional.test_cli import rotation
from tests.functional.test_previous_expiry import ttl_rotator, validity

pytestmark = pytest.mark.functional


def _status_expiry(report: dict[str, Any], user: str) -> dict[str, Any]:
    (entry,) = [e for e in report["users"] if e["label"] == AWSPREVIOUS]
    assert entry["user"] == user
    expiry: dict[str, Any] = entry["password_expiry"]
    return expiry


def _both(bed: MultiBed, arn: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(status's expiry, plan's expiry, both texts), read in this process."""
    previous = bed.value(arn, AWSPREVIOUS)["username"]
    report = collect_pair_sessions(bed.sm, arn)
    plan = build_plan(bed.sm, arn, strategy="multi-user")
    stream = io.StringIO()
    console = Console(stream=stream)
    render_pair_sessions(report, console)
    render_plan(plan, console)
    planned = plan.as_json()["previous_password_expiry"]
    assert planned is not None
    assert planned["user"] == previous
    return _status_expiry(report, previous), planned, stream.getvalue()


def _shown(valid_until: str) -> str:
    moment = expiry_time(valid_until)
    assert moment is not None
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def test_a_ttl_rotation_shows_the_expiry_in_status_and_plan_text_and_json(
    multi: MultiBed,
) -> None:
    arn, user, password = multi.app()
    assert multi.driver(ttl_rotator(multi, 3600)).rotate(arn).succeeded
    valid_until, passed = validity(multi, user)
    assert is_rotation_expiry(valid_until)
    assert not passed
    expected = {
        "user": user,
        "valid_until": valid_until,
        "set_by": "rotation",
        "expired": False,
        "summary": f"password expires at {_shown(valid_until)} (PREVIOUS_PASSWORD_TTL)",
    }
    # The commands as an operator runs them: text and --json.
    status_json = rotation("status", arn, "--json")
    status_text = rotation("status", arn)
    plan_json = rotation("plan", arn, "--strategy", "multi-user", "--json")
    plan_text = rotation("plan", arn, "--strategy", "multi-user")
    for result in (status_json, status_text, plan_json, plan_text):
        assert result.returncode == 0, result.stdout + result.stderr
        for secret in (password, multi.value(arn)["password"], multi.master_password):
            assert secret not in result.stdout + result.stderr
    assert _status_expiry(json.loads(status_json.stdout)["sessions"], user) == expected
    assert json.loads(plan_json.stdout)["previous_password_expiry"] == expected
    line = f"{user} (AWSPREVIOUS): "
    assert any(
        row.startswith(f"  {line}") and row.endswith(f"; {expected['summary']}")
        for row in status_text.stdout.splitlines()
    ), status_text.stdout
    assert f"  {line}{expected['summary']}\n" in plan_text.stdout
    assert "carries the last rotation's expiry" in plan_text.stdout
    # The plan read it, changed nothing.
    assert validity(multi, user) == (valid_until, False)


def test_a_rotation_without_ttl_shows_no_expiry(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    assert multi.driver(ttl_rotator(multi, None)).rotate(arn).succeeded
    status, planned, text = _both(multi, arn)
    for expiry in (status, planned):
        assert expiry == {
            "user": user, "valid_until": None, "set_by": None, "expired": False,
            "summary": "no expiry set by rotation",
        }  # fmt: skip
    assert "password expire" not in text
    assert text.count("no expiry set by rotation") == 2


def test_a_passed_expiry_says_expired(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    assert multi.driver(ttl_rotator(multi, 0)).rotate(arn).succeeded
    valid_until, passed = validity(multi, user)
    assert is_rotation_expiry(valid_until)
    assert passed  # TTL 0: on the server's clock, already
    status, planned, text = _both(multi, arn)
    for expiry in (status, planned):
        assert (expiry["set_by"], expiry["expired"]) == ("rotation", True)
        assert expiry["summary"] == (
            f"password expired at {_shown(valid_until)} (PREVIOUS_PASSWORD_TTL)"
        )
    assert text.count(f"password expired at {_shown(valid_until)}") == 2
    assert "password expires" not in text


def test_the_operators_valid_until_is_shown_as_the_operators(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    with multi.master_connect() as conn:  # parity copies it to the clone
        conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2099-01-02 03:04:05+00'").format(
            sql.Identifier(user)))  # fmt: skip
    assert multi.driver(ttl_rotator(multi, None)).rotate(arn).succeeded
    status, planned, _ = _both(multi, arn)
    for expiry in (status, planned):
        assert expiry["valid_until"] == "2099-01-02T03:04:05.000000Z"
        assert (expiry["set_by"], expiry["expired"]) == ("operator", False)
        assert expiry["summary"] == (
            "password expires at 2099-01-02 03:04:05 UTC (the operator's VALID UNTIL)"
        )
    # An operator's value that has passed (set on the previous user by hand).
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} VALID UNTIL '2001-02-03 04:05:06+00'").format(
            sql.Identifier(user)))  # fmt: skip
    status, planned, _ = _both(multi, arn)
    for expiry in (status, planned):
        assert (expiry["set_by"], expiry["expired"]) == ("operator", True)
        assert expiry["summary"] == (
            "password expired at 2001-02-03 04:05:06 UTC (the operator's VALID UNTIL)"
        )
