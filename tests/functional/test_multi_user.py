"""Multi-user rotation on the machine's PostgreSQL and on PostgreSQL 18, with a CREATEROLE
master as on RDS."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers import pg_roles
from rotation import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    Outcome,
    RotationError,
    SecretFormatError,
    SecretsManagerError,
    Step,
)
from rotation_contract.pg.errors import AuthenticationError, DatabaseError
from tests.fix_aws import new_client
from tests.fix_multi import MultiBed
from tests.fix_postgres import ServerLog, admin_connect, set_role_password

pytestmark = pytest.mark.functional


def _connect(bed: MultiBed, value: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(**bed.pg.conninfo(value["username"], value["password"]), autocommit=True)


def test_three_rotations_alternate_users_and_keep_privileges(multi: MultiBed) -> None:
    arn, user, password = multi.app()
    rotator = multi.rotator()
    users = []
    for _ in range(3):
        run = multi.driver(rotator).rotate(arn)
        assert run.succeeded
        current = multi.value(arn)
        users.append(current["username"])
        assert multi.logs_in(current)
        # The previous user still logs in: that is the point of multi-user rotation.
        assert multi.logs_in(multi.value(arn, AWSPREVIOUS))
        with _connect(multi, current) as conn:
            row = conn.execute(
                sql.SQL("SELECT note FROM {}").format(sql.Identifier(f"items_{user}"))
            ).fetchone()
            assert row == ("first",)
    assert users == [f"{user}_clone", user, f"{user}_clone"]
    assert not multi.logs_in({"username": user, "password": password})
    labels = multi.labels(arn)
    assert sorted(s for stages in labels.values() for s in stages) == [AWSCURRENT, AWSPREVIOUS]


def test_both_users_act_as_one_owner(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    multi.driver(multi.rotator()).rotate(arn)
    clone, original = multi.value(arn), multi.value(arn, AWSPREVIOUS)
    assert clone["username"] == f"{user}_clone"
    for who, value in (("clone", clone), ("orig", original)):
        with _connect(multi, value) as conn:
            conn.execute(
                sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(f"t_{who}_{user}"))
            )
    for value in (clone, original):
        with _connect(multi, value) as conn:
            for who in ("clone", "orig"):
                table = sql.Identifier(f"t_{who}_{user}")
                conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(table))
                assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
                conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS c int").format(table))
            row = conn.execute("SELECT session_user, current_user").fetchone()
            assert row == (value["username"], user)
    with _connect(multi, original) as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename LIKE %s",
            (f"t\\_%\\_{user}",),
        ).fetchall()
    assert owners == [(user,)]


def test_a_happy_rotation_makes_nine_calls_and_three_logins(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    multi.driver(multi.rotator()).rotate(arn)
    assert multi.calls.names == [
        "DescribeSecret", "GetSecretValue", "GetSecretValue", "PutSecretValue",
        "DescribeSecret", "GetSecretValue",
        "DescribeSecret",
        "DescribeSecret", "UpdateSecretVersionStage",
    ]  # fmt: skip
    # Quiet: the current user's login (confused-deputy guard), the master's; testSecret's.
    assert multi.connections.by_user == {user: 1, "rotation_master": 1, f"{user}_clone": 1}


def _role_rows(bed: MultiBed, roles: list[str]) -> list[tuple[Any, ...]]:
    """Everything a role carries, as a superuser reads it (pg_authid's verifier included)."""
    with admin_connect(bed.pg) as conn:
        return conn.execute(
            "SELECT a.rolname, a.rolpassword, a.rolvaliduntil, a.rolconnlimit,"
            " (SELECT array_agg(s.setconfig::text ORDER BY s.setdatabase)"
            "  FROM pg_db_role_setting s WHERE s.setrole = a.oid),"
            " (SELECT array_agg(m.roleid::regrole::text ORDER BY m.roleid)"
            "  FROM pg_auth_members m WHERE m.member = a.oid)"
            " FROM pg_authid a WHERE a.rolname = ANY(%s) ORDER BY 1",
            (roles,),
        ).fetchall()


@pytest.mark.parametrize("rotations", [1, 2], ids=["clone-pending", "owner-pending"])
def test_a_set_secret_re_attempt_changes_nothing(multi: MultiBed, rotations: int) -> None:
    """A re-attempt after a crash that came after the change: the same two logins as the
    first attempt, no refused one, and the catalog ends byte for byte as it was (the
    verifier is salted by the token, so the same one is stored again)."""
    arn, user, _ = multi.app()
    for _ in range(rotations - 1):
        assert multi.driver(multi.rotator()).rotate(arn).succeeded
    rotator, token = multi.begin_and_create(arn)
    assert rotator.handle(multi.event(arn, "setSecret", token)) == Outcome.DONE
    current_user = multi.value(arn)["username"]
    before = _role_rows(multi, [user, f"{user}_clone"])
    multi.connections.reset()
    multi.calls.reset()
    log = ServerLog(multi.pg)

    assert multi.rotator().handle(multi.event(arn, "setSecret", token)) == Outcome.DONE

    assert multi.connections.by_user == {current_user: 1, "rotation_master": 1}
    assert "password authentication failed" not in log.since()
    assert _role_rows(multi, [user, f"{user}_clone"]) == before
    # The pending password logs in, and the rotation completes from here.
    assert multi.logs_in(multi.value(arn, AWSPENDING))
    driver = multi.driver(multi.rotator())
    driver.run(arn, token, [Step.TEST, Step.FINISH])
    driver.complete(arn, token)
    assert multi.labelled_logins(arn) == [AWSCURRENT, AWSPREVIOUS]


@pytest.mark.parametrize("step", list(Step), ids=lambda s: s.value)
def test_every_step_can_run_twice(multi: MultiBed, step: Step) -> None:
    arn, _, _ = multi.app()
    driver = multi.driver(multi.rotator())
    token = driver.begin(arn)
    steps = list(Step)
    driver.run(arn, token, steps[: steps.index(step) + 1])
    multi.driver(multi.rotator()).run(arn, token, [step])
    driver.run(arn, token, steps[steps.index(step) + 1 :])
    driver.complete(arn, token)
    assert multi.labels(arn)[token] == [AWSCURRENT]
    assert multi.labelled_logins(arn) == [AWSCURRENT, AWSPREVIOUS]


def test_clients_looping_on_awscurrent_see_no_failure(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    stop = threading.Event()
    outcomes = {"ok": 0, "failed": 0}
    lock = threading.Lock()

    def client_loop() -> None:
        client = new_client()
        while not stop.is_set():
            value = json.loads(
                client.get_secret_value(SecretId=arn, VersionStage=AWSCURRENT)["SecretString"]
            )
            try:
                with _connect(multi, value) as conn:
                    conn.execute("SELECT 1")
                key = "ok"
            except psycopg.OperationalError:
                key = "failed"
            with lock:
                outcomes[key] += 1

    threads = [threading.Thread(target=client_loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        rotator = multi.rotator()
        for _ in range(3):
            assert multi.driver(rotator).rotate(arn).succeeded
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert outcomes["failed"] == 0
    assert outcomes["ok"] > 10


def test_a_clone_name_over_63_bytes_is_refused_before_anything_changes(multi: MultiBed) -> None:
    name = "é" * 28 + "abc"  # 59 bytes, 31 characters: the clone would be 65 bytes
    arn, _, _ = multi.app(name)
    driver = multi.driver(multi.rotator())
    token = driver.begin(arn)
    with pytest.raises(SecretFormatError, match="63-byte"):
        multi.rotator().handle(multi.event(arn, "createSecret", token))
    assert multi.labels(arn)[token] == [AWSPENDING]
    assert multi.values_by_label(arn).keys() == {AWSCURRENT}


@pytest.mark.parametrize(
    "username", ['we"ird', "semi;colon", "with space", "ünï_名前"],
    ids=["double-quote", "semicolon", "space", "non-ascii"],
)  # fmt: skip
def test_hostile_usernames_rotate_twice(multi: MultiBed, username: str) -> None:
    arn, _, _ = multi.app(username)
    rotator = multi.rotator()
    for expected in (f"{username}_clone", username):
        multi.driver(rotator).rotate(arn)
        assert multi.value(arn)["username"] == expected
        assert multi.logs_in(multi.value(arn))


def test_a_secret_without_masterarn_is_refused_in_createsecret(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    value = multi.value(arn)
    value.pop("masterarn")
    bare = multi.secret(value)
    token = multi.driver(multi.rotator()).begin(bare)
    with pytest.raises(SecretFormatError, match="masterarn"):
        multi.rotator().handle(multi.event(bare, "createSecret", token))


def _assert_unchanged(multi: MultiBed, arn: str, user: str, token: str) -> None:
    assert multi.labels(arn)[token] == [AWSPENDING]
    with multi.master_connect() as conn:
        clone = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (f"{user}_clone",))
        assert clone.fetchone() is None
    assert multi.labelled_logins(arn) == [AWSCURRENT]


@pytest.mark.parametrize(
    ("master", "error", "fragment"),
    [
        ("missing", SecretsManagerError, "ResourceNotFoundException"),
        ("wrong-password", AuthenticationError, "master secret"),
        ("other-host", SecretFormatError, "master secret is for host"),
        ("not-json", SecretFormatError, "not valid JSON"),
    ],
)
def test_a_bad_master_secret_is_a_clear_error_and_changes_nothing(
    multi: MultiBed, master: str, error: type[Exception], fragment: str
) -> None:
    if master == "missing":
        master_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    elif master == "wrong-password":
        master_arn = multi.master_secret(password="not-the-master-password")
    elif master == "other-host":
        master_arn = multi.master_secret(host="other-db.example.com")
    else:
        master_arn = str(
            multi.sm.create_secret(Name=f"m/{time.time_ns()}", SecretString="{oops")["ARN"]
        )
    arn, user, _ = multi.app(master_arn=master_arn)
    token = multi.begin_and_create(arn)[1]
    with pytest.raises(error, match=fragment) as caught:
        multi.rotator().handle(multi.event(arn, "setSecret", token))
    assert "setSecret" in str(caught.value)
    assert arn in str(caught.value)
    _assert_unchanged(multi, arn, user, token)


def test_a_pending_version_with_another_user_is_refused(multi: MultiBed) -> None:
    arn, _, _ = multi.app()
    driver = multi.driver(multi.rotator())
    token = driver.begin(arn)
    planted = {**multi.value(arn), "username": "postgres", "password": "planted-pw-123"}
    multi.sm.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=json.dumps(planted),
        VersionStages=[AWSPENDING],
    )  # fmt: skip
    with pytest.raises(SecretFormatError, match="alternate"):
        multi.rotator().handle(multi.event(arn, "setSecret", token))
    assert multi.connections.total == 0


def test_a_current_credential_that_does_not_log_in_is_refused(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    token = multi.begin_and_create(arn)[1]
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(user)))
    with pytest.raises(AuthenticationError, match="confused-deputy"):
        multi.rotator().handle(multi.event(arn, "setSecret", token))
    with multi.master_connect() as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (f"{user}_clone",)).fetchone()
            is None
        )


def test_setsecret_when_the_pending_user_already_logs_in_does_nothing(multi: MultiBed) -> None:
    arn, user, _ = multi.app()
    rotator = multi.rotator()
    token = multi.begin_and_create(arn)[1]
    rotator.handle(multi.event(arn, "setSecret", token))
    with multi.master_connect() as conn:  # the current user is locked out meanwhile
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(user)))
    assert rotator.handle(multi.event(arn, "setSecret", token)) == Outcome.KEPT


def test_master_without_admin_on_the_user_is_explained_on_16_plus(multi: MultiBed) -> None:
    """On PostgreSQL 16+, CREATEROLE no longer grants admin over roles someone else made."""
    if multi.pg.server_version() < 16:
        pytest.skip("PostgreSQL 15 and older let CREATEROLE grant any non-superuser role")
    name = f"su_made_{time.time_ns() % 10**8}"
    with admin_connect(multi.pg) as conn:  # made by the superuser, not by the master
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        set_role_password(conn, name, "su-made-pw-123")
    multi.created.append(name)
    arn = multi.secret(
        multi.pg.secret_value(name, "su-made-pw-123", masterarn=multi.master_secret())
    )
    token = multi.begin_and_create(arn)[1]
    with pytest.raises(DatabaseError, match="ADMIN OPTION"):
        multi.rotator().handle(multi.event(arn, "setSecret", token))
    with admin_connect(multi.pg) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (f"{name}_clone",)).fetchone()
            is None
        ), "the transaction must leave no half-made clone"


def test_an_existing_clone_from_the_aws_reference_is_upgraded(multi: MultiBed) -> None:
    """The reference made the clone with only GRANT original TO clone."""
    arn, user, _ = multi.app()
    with multi.master_connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(f"{user}_clone")))
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(user), sql.Identifier(f"{user}_clone"))
        )
    multi.driver(multi.rotator()).rotate(arn)
    with _connect(multi, multi.value(arn)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)


def test_the_error_never_contains_a_password(multi: MultiBed) -> None:
    master_arn = multi.master_secret(password="wrong-master-pw-9")
    arn, _, password = multi.app(master_arn=master_arn)
    token = multi.begin_and_create(arn)[1]
    with pytest.raises(RotationError) as caught:
        multi.rotator().handle(multi.event(arn, "setSecret", token))
    pending = multi.value(arn, AWSPENDING)["password"]
    for secret in (password, pending, "wrong-master-pw-9", multi.master_password):
        assert secret not in str(caught.value)


def test_a_failure_inside_the_clone_transaction_leaves_no_clone(
    multi: MultiBed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CREATE ROLE ran, then the next statement failed: the whole transaction rolls back."""

    def broken_grant(owner: str, member: object) -> sql.Composed:
        return sql.SQL("GRANT {} TO no_such_role_at_all").format(sql.Identifier(owner))

    monkeypatch.setattr(pg_roles, "grant_membership", broken_grant)
    arn, user, _ = multi.app()
    token = multi.begin_and_create(arn)[1]
    with pytest.raises(DatabaseError, match="setting up user"):
        multi.rotator().handle(multi.event(arn, "setSecret", token))
    _assert_unchanged(multi, arn, user, token)
    monkeypatch.undo()
    run = multi.driver(multi.rotator()).run(arn, token)
    assert run.succeeded
    assert multi.value(arn)["username"] == f"{user}_clone"
