"""Every cause of a failed login that a client can tell apart, provoked on a real server.

Each gets its own error class and its own message with the fix; only the transient ones
(a full server, one that is starting or stopping, one that does not answer) are retried;
and single-user setSecret moves on to another credential only when the credential itself
was refused. The causes no test bed can provoke (other versions' texts, a translating
server) are in tests/unit/test_login_classification.py.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import Deadline, RetryPolicy
from rotation_contract.pg.errors import (
    AuthenticationError,
    DatabaseError,
    LoginConfigurationError,
    ServerUnavailableError,
    TlsError,
)
from rotation_contract.pg.resolve import Resolver, system_resolver
from rotation_contract.pg.secret import PostgresSecret, parse_postgres_secret
from rotation_contract.pg.settings import PostgresSettings
from testbed.pgcluster import PostgresCluster, running_cluster
from tests.fix_faults import Pauses
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed, ConnectionCounter

pytestmark = pytest.mark.functional

WHO = "AWSCURRENT"


def _role(cluster: PostgresCluster, name: str, *options: str) -> None:
    with admin_connect(cluster) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} {}").format(
                sql.Identifier(name), sql.SQL(" ".join(("LOGIN", *options)))
            )
        )
        set_role_password(conn, name, "pw-1")


@pytest.fixture(scope="module")
def hba_pg() -> Iterator[PostgresCluster]:
    """A plain cluster whose pg_hba.conf rejects one role outright and has no line at all
    for one database (its own cluster: the session's pg_hba.conf stays untouched)."""
    with running_cluster(tls=False) as cluster:
        _role(cluster, "hba_rejected")
        _role(cluster, "hba_user")
        with admin_connect(cluster) as conn:
            conn.execute("CREATE DATABASE hba_unlisted")
        cluster.write_hba(
            "local all all trust",
            "host all hba_rejected 127.0.0.1/32 reject",
            "host postgres all 127.0.0.1/32 scram-sha-256",
        )
        cluster.restart()
        yield cluster


@pytest.fixture(scope="module")
def full_pg() -> Iterator[PostgresCluster]:
    """A plain cluster with room for three connections in all."""
    settings = {"max_connections": "3", "superuser_reserved_connections": "0"}
    with running_cluster(tls=False, extra_settings=settings) as cluster:
        _role(cluster, "full_user")
        yield cluster


class Attempt:
    """One ``PostgresConnector.connect`` with counted connections and recorded pauses."""

    def __init__(
        self,
        pauses: Pauses | None = None,
        *,
        ca: Any = None,
        resolver: Resolver = system_resolver,
        **connect: Any,
    ) -> None:
        self.pauses = pauses or Pauses()
        self.counter = ConnectionCounter()
        extra = dict(connect)

        def counted(**params: Any) -> psycopg.Connection[Any]:
            return self.counter(**params, **extra)

        self.connector = PostgresConnector(
            PostgresSettings(extra_root_cert=ca),
            connect=counted,
            retry_policy=RetryPolicy(attempts=4, sleep=self.pauses),
            resolver=resolver,
        )

    def login(self, secret: PostgresSecret) -> psycopg.Connection[Any]:
        return self.connector.connect(secret, Deadline.in_seconds(30), who=WHO, floor="disable")

    def fails(self, secret: PostgresSecret) -> DatabaseError:
        with pytest.raises(DatabaseError) as caught:
            self.login(secret).close()
        return caught.value


def _secret(cluster: PostgresCluster, user: str, password: str, **extra: Any) -> PostgresSecret:
    return parse_postgres_secret(cluster.secret_value(user, password, **extra))


def _tls_secret(bed: Bed, user: str, password: str, **extra: Any) -> PostgresSecret:
    return _secret(bed.pg, user, password, **extra)


def _ca(bed: Bed) -> Any:
    assert bed.pg.certificates is not None
    return bed.pg.certificates.ca_cert


# -- refused credentials: another credential may log in; never retried ---------------------


def test_a_wrong_password_is_a_refused_credential_not_retried(bed: Bed) -> None:
    user, _ = bed.make_user()
    attempt = Attempt(ca=_ca(bed))
    error = attempt.fails(_tls_secret(bed, user, "not-the-password"))
    assert type(error) is AuthenticationError
    assert "password authentication failed" in error.problem
    assert "role does not exist" in error.problem  # honest: the server does not say which
    assert (attempt.counter.total, attempt.pauses.waits) == (1, [])


def test_an_unknown_role_looks_the_same_as_a_wrong_password(bed: Bed) -> None:
    """The server answers a missing role exactly like a wrong password (on purpose: nobody
    may probe which roles exist), so the client cannot tell them apart; the message says
    so, and the server's log says which."""
    ghost = f"ghost_{secrets.token_hex(4)}"
    attempt = Attempt(ca=_ca(bed))
    error = attempt.fails(_tls_secret(bed, ghost, "whatever-1"))
    assert type(error) is AuthenticationError
    assert "the role does not exist" in error.problem
    assert f'Role "{ghost}" does not exist' in bed.pg.server_log()
    assert (attempt.counter.total, attempt.pauses.waits) == (1, [])


# -- the same for every credential: a configuration error, not retried ---------------------


def test_an_unknown_database_is_a_configuration_error(bed: Bed) -> None:
    user, password = bed.make_user()
    attempt = Attempt(ca=_ca(bed))
    error = attempt.fails(_tls_secret(bed, user, password, dbname="no_such_db"))
    assert type(error) is LoginConfigurationError
    assert 'database "no_such_db" does not exist' in error.problem
    assert "Fix 'dbname' in the secret" in error.problem
    assert (attempt.counter.total, attempt.pauses.waits) == (1, [])


def test_a_nologin_role_is_a_configuration_error(bed: Bed) -> None:
    user, password = bed.make_user()
    with admin_connect(bed.pg) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(user)))
    attempt = Attempt(ca=_ca(bed))
    error = attempt.fails(_tls_secret(bed, user, password))
    assert type(error) is LoginConfigurationError
    assert "ALTER ROLE ... LOGIN" in error.problem
    assert attempt.pauses.waits == []


def test_a_missing_connect_privilege_is_a_configuration_error(bed: Bed) -> None:
    user, password = bed.make_user()
    database = f"noconnect_{secrets.token_hex(3)}"
    with admin_connect(bed.pg) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        conn.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database))
        )
    try:
        attempt = Attempt(ca=_ca(bed))
        error = attempt.fails(_tls_secret(bed, user, password, dbname=database))
        assert type(error) is LoginConfigurationError
        assert "GRANT CONNECT ON DATABASE" in error.problem
        assert attempt.pauses.waits == []
    finally:
        with admin_connect(bed.pg) as conn:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(database)))


@pytest.mark.parametrize(
    ("user", "dbname", "text"),
    [
        ("hba_rejected", "postgres", "pg_hba.conf rejects connection"),
        ("hba_user", "hba_unlisted", "no pg_hba.conf entry"),
    ],
    ids=["reject-line", "no-entry"],
)
def test_a_pg_hba_rejection_is_a_configuration_error_not_retried(
    hba_pg: PostgresCluster, user: str, dbname: str, text: str
) -> None:
    attempt = Attempt()
    error = attempt.fails(_secret(hba_pg, user, "pw-1", dbname=dbname))
    assert type(error) is LoginConfigurationError
    assert text in error.problem
    assert "pg_hba.conf and reload" in error.problem
    # Before: taken for an unreachable server and retried for seconds.
    assert (attempt.counter.total, attempt.pauses.waits) == (1, [])


# -- TLS: retrying cannot help ---------------------------------------------------------------


def test_a_server_without_tls_is_a_tls_error_not_retried(hba_pg: PostgresCluster) -> None:
    attempt = Attempt()
    error = attempt.fails(_secret(hba_pg, "hba_user", "pw-1", ssl="require"))
    assert type(error) is TlsError
    assert "does not speak TLS" in error.problem
    assert '"ssl": false' in error.problem
    assert (attempt.counter.total, attempt.pauses.waits) == (1, [])


def test_an_untrusted_certificate_is_a_tls_error_not_retried(bed: Bed) -> None:
    user, password = bed.make_user()
    attempt = Attempt(ca=None)  # only the shipped RDS roots: the test CA is not among them
    error = attempt.fails(_tls_secret(bed, user, password))
    assert type(error) is TlsError
    assert "certificate verify failed" in error.problem
    assert "PGSSLROOTCERT" in error.problem
    assert (attempt.counter.total, attempt.pauses.waits) == (1, [])


def test_a_certificate_for_another_host_name_is_a_tls_error_not_retried(bed: Bed) -> None:
    """The secret names a host the certificate is not for (reached here through a resolver
    that answers with the test bed's address, as a CNAME would reach it)."""
    user, password = bed.make_user()
    attempt = Attempt(ca=_ca(bed), resolver=lambda _host, _port: ["127.0.0.1"])
    error = attempt.fails(_tls_secret(bed, user, password, host="db.example.invalid"))
    assert type(error) is TlsError
    assert 'does not match host name "db.example.invalid"' in error.problem
    assert '"verify-ca"' in error.problem
    assert (attempt.counter.total, attempt.pauses.waits) == (1, [])


# -- a full server: transient, retried -------------------------------------------------------


def test_a_role_connection_limit_is_retried_then_names_the_limit(bed: Bed) -> None:
    user, password = bed.make_user()
    with admin_connect(bed.pg) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 0").format(sql.Identifier(user)))
    attempt = Attempt(ca=_ca(bed))
    error = attempt.fails(_tls_secret(bed, user, password))
    assert type(error) is ServerUnavailableError
    assert f'too many connections for role "{user}"' in error.problem
    assert "CONNECTION LIMIT" in error.problem
    assert (attempt.counter.total, len(attempt.pauses.waits)) == (4, 3)


def _free_slot(keeper: psycopg.Connection[Any], hog: psycopg.Connection[Any]) -> None:
    """End ``hog``'s session and return once its slot is free: closing it is not enough,
    its server process exits a moment later (pg_terminate_backend with a timeout waits)."""
    ended = keeper.execute(
        "SELECT pg_terminate_backend(%s, 10000)", (hog.info.backend_pid,)
    ).fetchone()
    assert ended == (True,)
    hog.close()


@contextlib.contextmanager
def _every_slot_taken(cluster: PostgresCluster) -> Iterator[list[psycopg.Connection[Any]]]:
    """Three superuser sessions fill ``full_pg``; afterwards every slot is free again
    before the next test can need one."""
    hogs = [admin_connect(cluster) for _ in range(3)]
    try:
        yield hogs
    finally:
        keeper = hogs[0]
        for hog in hogs[1:]:
            if not hog.closed:
                _free_slot(keeper, hog)
        with admin_connect(cluster) as other:
            _free_slot(other, keeper)


def test_a_full_server_is_retried_and_the_login_succeeds_once_a_slot_frees(
    full_pg: PostgresCluster,
) -> None:
    with _every_slot_taken(full_pg) as hogs:
        attempt = Attempt(Pauses(lambda: _free_slot(hogs[0], hogs[2])))
        with attempt.login(_secret(full_pg, "full_user", "pw-1")) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("full_user",)
        assert (attempt.counter.total, len(attempt.pauses.waits)) == (2, 1)
        assert "too many clients already" in full_pg.server_log()


def test_a_full_server_that_stays_full_fails_with_the_fix(full_pg: PostgresCluster) -> None:
    with _every_slot_taken(full_pg):
        attempt = Attempt()
        error = attempt.fails(_secret(full_pg, "full_user", "pw-1"))
        assert type(error) is ServerUnavailableError
        assert "too many clients already" in error.problem
        assert "max_connections" in error.problem
        assert (attempt.counter.total, len(attempt.pauses.waits)) == (4, 3)


def test_a_failed_login_carries_no_sqlstate_through_the_driver(bed: Bed) -> None:
    """Why rotation_contract.pg.login reads text at all: the server sends 3D000, but psycopg 3.3 and
    its libpq hand the client neither the SQLSTATE nor any diagnostic field. Should a driver
    start passing it on, the classification prefers it (a unit test covers that path)."""
    user, password = bed.make_user()
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(**bed.pg.conninfo(user, password, dbname="no_such_db"))
    assert caught.value.sqlstate is None
    assert caught.value.diag.sqlstate is None
    assert caught.value.pgresult is None


# -- single-user setSecret: only a refused credential moves on to the next one --------------


def _single_user(bed: Bed, counter: ConnectionCounter) -> PostgresSingleUser:
    return PostgresSingleUser(PostgresConnector(connect=counter, retry_policy=bed.fast_retries()))


def test_single_user_stops_at_once_on_a_missing_database(bed: Bed) -> None:
    """Before, a dbname typo tried every labelled credential and the master, then told the
    operator to reset the password."""
    master = bed.secret(bed.pg.secret_value("postgres", bed.pg.superuser_password))
    arn, _, _ = bed.user_secret(dbname="no_such_db", masterarn=master)
    counter = ConnectionCounter()
    rotator, token = bed.begin_and_create(arn)
    rotator = bed.rotator(_single_user(bed, counter))
    with pytest.raises(LoginConfigurationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    assert "setSecret" in str(caught.value)
    assert "Fix 'dbname' in the secret" in str(caught.value)
    assert "reset" not in str(caught.value).lower()
    assert counter.by_user.get("postgres", 0) == 0  # the master was not tried
    assert counter.total == 1


def test_single_user_stops_at_once_on_a_pg_hba_rejection(bed: Bed, hba_pg: PostgresCluster) -> None:
    arn = bed.secret(hba_pg.secret_value("hba_rejected", "pw-1"))
    counter = ConnectionCounter()
    _, token = bed.begin_and_create(arn)
    with pytest.raises(LoginConfigurationError, match=r"pg_hba\.conf rejects"):
        bed.rotator(_single_user(bed, counter)).handle(bed.event(arn, "setSecret", token))
    assert counter.total == 1


def test_single_user_moves_on_after_a_refused_credential(bed: Bed) -> None:
    """A role that does not exist is refused like a wrong password: every labelled
    credential is tried, and the message covers both readings."""
    ghost = f"ghost_{secrets.token_hex(4)}"
    arn = bed.secret(bed.pg.secret_value(ghost, "whatever-1"))
    counter = ConnectionCounter()
    _, token = bed.begin_and_create(arn)
    with pytest.raises(AuthenticationError, match="no labelled credential logs in") as caught:
        bed.rotator(_single_user(bed, counter)).handle(bed.event(arn, "setSecret", token))
    assert "or create the user" in str(caught.value)
    assert counter.total == 2  # AWSCURRENT, AWSPENDING; no AWSPREVIOUS yet
