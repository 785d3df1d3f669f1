"""Stragglers: clients still logged in as the AWSPREVIOUS user when multi-user setSecret is
about to change its password (real clients, real pg_stat_activity, both policies)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers import pg_sessions
from handlers.multi_user import PostgresMultiUser
from rotation import AWSPENDING, AWSPREVIOUS, ConfigurationError, Rotator, SecretStore, Step
from rotation.driver import RotationFailed
from tests.fix_multi import MASTER, MultiBed
from tests.fix_postgres import admin_connect

pytestmark = pytest.mark.functional

APP = "billing-worker"


@pytest.fixture(autouse=True)
def _fresh_container() -> Iterator[None]:
    """Each test is a new container: the "report once" memory starts empty."""
    pg_sessions._warned.clear()
    yield
    pg_sessions._warned.clear()


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _rotator(bed: MultiBed, policy: str | None = None) -> Rotator:
    strategy = PostgresMultiUser(bed.strategy().connector, stragglers=policy)
    return Rotator(strategy, SecretStore(bed.handler_client))


def _wait_until_gone(bed: MultiBed, user: str) -> None:
    """Until no backend of ``user`` is left. A closed client's server process exits a moment
    after the client returns: wait for that condition (bounded), never for a fixed time."""
    deadline = time.monotonic() + 30
    with admin_connect(bed.pg) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE usename = %s", (user,)).fetchone():
            assert time.monotonic() < deadline, f"sessions of {user} did not end"
            time.sleep(0.02)


def _straggler(bed: MultiBed, arn: str) -> psycopg.Connection[Any]:
    """A client that never switched: logged in as AWSPREVIOUS, over TCP (the only one)."""
    value = bed.value(arn, AWSPREVIOUS)
    _wait_until_gone(bed, value["username"])
    return psycopg.connect(
        **bed.pg.conninfo(value["username"], value["password"]), application_name=APP
    )


@pytest.fixture
def read_all_stats(multi: MultiBed) -> Iterator[None]:
    """The master may see every session's details (as RDS's master can be granted)."""
    with admin_connect(multi.pg) as conn:
        conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(MASTER)))
    try:
        yield
    finally:
        with admin_connect(multi.pg) as conn:
            conn.execute(sql.SQL("REVOKE pg_read_all_stats FROM {}").format(sql.Identifier(MASTER)))


def test_warn_goes_on_and_logs_and_counts_the_sessions(
    multi: MultiBed,
    read_all_stats: None,
    json_log: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("STRAGGLER_POLICY", raising=False)  # the default: warn
    arn, user, _ = multi.app()
    rotator = _rotator(multi)
    assert multi.driver(rotator).rotate(arn).succeeded
    previous = multi.value(arn, AWSPREVIOUS)
    assert previous["username"] == user
    capsys.readouterr()
    with _straggler(multi, arn) as client:
        started = client.execute(
            "SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert multi.driver(rotator).rotate(arn).succeeded
        # The straggler's own session goes on; its next login would fail.
        assert client.execute("SELECT 1").fetchone() == (1,)
    assert not multi.logs_in(previous)
    (warning,) = [line for line in _lines(json_log) if "stragglers" in line]
    assert warning["level"] == "WARNING"
    assert warning["step"] == "setSecret"
    assert warning["user"] == user
    assert warning["sessions"] == 1
    (session,) = warning["stragglers"]
    assert session["address"] == "127.0.0.1"
    assert session["application"] == APP
    assert started is not None
    assert session["since"] == started[0].isoformat()
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if "StragglerSessions" in x]
    assert [document["StragglerSessions"] for document in emf] == [[1.0]]
    assert emf[0]["Strategy"] == "postgres-multi-user"
    # Details seen: nothing to report about the master's visibility.
    assert not [line for line in _lines(json_log) if "pg_read_all_stats" in line["message"]]
    text = json_log.getvalue()
    for value in multi.values_by_label(arn).values():
        assert value["password"] not in text


def test_refuse_changes_nothing_and_a_retry_after_the_straggler_left_completes(
    multi: MultiBed, read_all_stats: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRAGGLER_POLICY", "refuse")
    arn, user, _ = multi.app()
    rotator = _rotator(multi)  # the policy from the environment, as in Lambda
    multi.connections.reset()
    # The first rotation: the clone does not exist yet, so nobody can be logged in as it.
    assert multi.driver(rotator).rotate(arn).succeeded
    previous = multi.value(arn, AWSPREVIOUS)
    client = _straggler(multi, arn)
    try:
        driver = multi.driver(rotator)
        token = driver.begin(arn)
        driver.run(arn, token, [Step.CREATE])
        pending_before = multi.value(arn, AWSPENDING)
        labels_before = multi.labels(arn)
        with pytest.raises(RotationFailed) as failed:
            driver.run(arn, token, [Step.SET])
        error = failed.value.__cause__
        assert isinstance(error, pg_sessions.StragglerError)
        message = str(error)
        assert f"still logged in as {user!r}" in message
        assert "127.0.0.1" in message
        assert APP in message
        assert "since 20" in message
        assert "Secrets Manager retries" in message
        assert "STRAGGLER_POLICY=warn" in message
        assert error.step == "setSecret"
        for value in (previous, pending_before, multi.value(arn)):
            assert value["password"] not in message
        # Nothing changed: the old user's password, the labels, the pending value.
        assert multi.logs_in(previous)
        assert not multi.logs_in(pending_before)
        assert multi.labels(arn) == labels_before
        assert multi.value(arn, AWSPENDING) == pending_before
        # Still there: refused again, still nothing changed.
        with pytest.raises(RotationFailed):
            driver.run(arn, token, [Step.SET])
        assert multi.logs_in(previous)
    finally:
        client.close()
    _wait_until_gone(multi, user)
    # The straggler disconnected: Secrets Manager's re-attempt (same token) completes.
    run = multi.driver(rotator).rotate(arn)
    assert run.succeeded
    assert run.token == token
    assert multi.value(arn)["username"] == user
    assert multi.logs_in(multi.value(arn))
    assert not multi.logs_in(previous)


def test_a_master_without_read_all_stats_counts_and_is_reported_once(
    multi: MultiBed,
    json_log: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    arn, user, _ = multi.app()
    rotator = _rotator(multi, "warn")
    assert multi.driver(rotator).rotate(arn).succeeded
    with _straggler(multi, arn):
        assert multi.driver(rotator).rotate(arn).succeeded  # user -> clone: 1 straggler
    with _straggler(multi, arn):
        assert multi.driver(rotator).rotate(arn).succeeded  # clone -> user: 1 straggler
    lines = _lines(json_log)
    reports = [line for line in lines if "GRANT pg_read_all_stats TO " + MASTER in line["message"]]
    assert len(reports) == 1  # three rotations, one report
    assert reports[0]["level"] == "WARNING"
    warnings = [line for line in lines if "stragglers" in line]
    assert [w["user"] for w in warnings] == [user, f"{user}_clone"]
    for warning in warnings:
        (session,) = warning["stragglers"]
        assert session["application"] == APP  # visible to everyone
        assert session["address"] is None  # hidden without the grant
        assert session["since"] is None
    out = capsys.readouterr().out
    emf = [json.loads(x) for x in out.splitlines() if "StragglerSessions" in x]
    assert [document["StragglerSessions"] for document in emf] == [[0.0], [1.0], [1.0]]


def test_refuse_without_read_all_stats_still_refuses_and_says_details_are_hidden(
    multi: MultiBed,
) -> None:
    arn, _, _ = multi.app()
    rotator = _rotator(multi, "refuse")
    assert multi.driver(rotator).rotate(arn).succeeded
    previous = multi.value(arn, AWSPREVIOUS)
    with _straggler(multi, arn), pytest.raises(RotationFailed) as failed:
        multi.driver(rotator).rotate(arn)
    message = str(failed.value.__cause__)
    assert "1 session still logged in" in message
    assert "an address hidden from the master" in message
    assert APP in message
    assert multi.logs_in(previous)


@pytest.mark.parametrize("raw", ["refuse ", "WARN", "Refuse"])
def test_policy_spellings(raw: str) -> None:
    from handlers.pg_config import straggler_policy

    assert straggler_policy({"STRAGGLER_POLICY": raw}) == raw.strip().lower()
    assert straggler_policy({}) == "warn"
    assert straggler_policy({"STRAGGLER_POLICY": ""}) == "warn"


def test_an_invalid_policy_fails_set_secret_before_anything(
    multi: MultiBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn, _, _ = multi.app()
    monkeypatch.setenv("STRAGGLER_POLICY", "block")
    rotator = _rotator(multi)
    driver = multi.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    multi.connections.reset()
    with pytest.raises(RotationFailed) as failed:
        driver.run(arn, token, [Step.SET])
    error = failed.value.__cause__
    assert isinstance(error, ConfigurationError)
    assert "STRAGGLER_POLICY must be one of warn, refuse, got 'block'" in str(error)
    assert multi.connections.total == 0


def test_status_shows_the_pair_s_sessions(multi: MultiBed, read_all_stats: None) -> None:
    from tests.functional.test_cli import rotation

    arn, user, _ = multi.app()
    assert multi.driver(_rotator(multi)).rotate(arn).succeeded  # user -> clone
    current = multi.value(arn)
    _wait_until_gone(multi, current["username"])  # testSecret's session, just closed
    with (
        _straggler(multi, arn),
        psycopg.connect(
            **multi.pg.conninfo(current["username"], current["password"]), application_name="api"
        ),
    ):
        document = json.loads(rotation("status", arn, "--json").stdout)
        text = rotation("status", arn)
    report = document["sessions"]
    assert report["checked"] is True
    assert report["details_visible"] is True
    by_user = {entry["user"]: entry for entry in report["users"]}
    assert by_user[user]["label"] == AWSPREVIOUS
    assert [s["application"] for s in by_user[user]["sessions"]] == [APP]
    assert by_user[user]["sessions"][0]["address"] == "127.0.0.1"
    assert by_user[f"{user}_clone"]["label"] == "AWSCURRENT"
    assert [s["application"] for s in by_user[f"{user}_clone"]["sessions"]] == ["api"]
    assert text.returncode == 0, text.stderr
    assert "Sessions" in text.stdout
    assert f"{user} (AWSPREVIOUS): 1 session" in text.stdout
    assert "The next rotation changes" in text.stdout
    for value in multi.values_by_label(arn).values():
        assert value["password"] not in text.stdout + text.stderr


def test_status_without_a_master_says_why_not(multi: MultiBed) -> None:
    from tests.functional.test_cli import rotation

    value = multi.pg.secret_value("nobody_here", "not-a-password")
    arn = multi.secret(value)
    result = rotation("status", arn)
    assert result.returncode == 0, result.stderr
    assert "not checked: no masterarn" in result.stdout


def test_status_of_a_single_user_secret_shows_no_pair(multi: MultiBed) -> None:
    """A secret with a masterarn that is rotated single-user: no "<user>_clone" exists and
    nothing names it AWSPREVIOUS, so status does not invent one."""
    from rotation_tools.pair_sessions import collect_pair_sessions
    from tests.functional.test_cli import rotation

    arn, user, password = multi.app()
    report = collect_pair_sessions(multi.sm, arn)
    assert report["checked"] is True
    assert [(e["user"], e["label"]) for e in report["users"]] == [(user, "AWSCURRENT")]
    text = rotation("status", arn)
    assert text.returncode == 0, text.stderr
    assert f"{user}_clone" not in text.stdout
    assert "no user pair" in text.stdout
    assert password not in text.stdout + text.stderr


def test_status_shows_a_missing_member_of_a_pair(multi: MultiBed) -> None:
    """AWSPREVIOUS names the other user of the pair but its role was dropped: listed, and
    said to be missing."""
    from rotation_tools.pair_sessions import collect_pair_sessions

    arn, user, _ = multi.app()
    assert multi.driver(_rotator(multi)).rotate(arn).succeeded  # user -> clone
    clone = multi.value(arn)["username"]
    _wait_until_gone(multi, clone)
    _wait_until_gone(multi, user)
    with admin_connect(multi.pg) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))
    report = collect_pair_sessions(multi.sm, arn)
    assert [(e["user"], e["label"], e["exists"]) for e in report["users"]] == [
        (clone, "AWSCURRENT", True),
        (user, "AWSPREVIOUS", False),
    ]


def test_status_does_not_use_a_master_for_another_host(multi: MultiBed) -> None:
    from rotation_tools.pair_sessions import collect_pair_sessions

    elsewhere = multi.master_secret(host="other-db.invalid")
    arn, _, _ = multi.app(master_arn=elsewhere)
    report = collect_pair_sessions(multi.sm, arn)
    assert report["checked"] is False
    assert "is for host 'other-db.invalid'" in report["reason"]
    assert "it is not used" in report["reason"]
    assert multi.master_password not in json.dumps(report)
