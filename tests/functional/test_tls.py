"""TLS per the contract: verify-full by default, sslmode names as given, never a downgrade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from handlers.pg_connect import PostgresConnector
from rotation import Deadline, RetryPolicy
from rotation_contract.pg.errors import AuthMethodError, ImpostorServerError, TlsError
from rotation_contract.pg.secret import PostgresSecret, parse_postgres_secret
from rotation_contract.pg.settings import PostgresSettings
from testbed.pgcluster import PostgresCluster, running_cluster
from tests.fix_fake_server import FakeServer
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

NO_RETRY = RetryPolicy(attempts=1)


@pytest.fixture(scope="module")
def plain_pg() -> Iterator[PostgresCluster]:
    """A second cluster that does not speak TLS at all."""
    with running_cluster(tls=False) as cluster:
        with admin_connect(cluster) as conn:
            conn.execute("CREATE ROLE plain_app LOGIN")
            set_role_password(conn, "plain_app", "plain-app-pw-1")
        yield cluster


def _connector(ca: Path | None) -> PostgresConnector:
    return PostgresConnector(PostgresSettings(extra_root_cert=ca), retry_policy=NO_RETRY)


def _secret(cluster: PostgresCluster, user: str, password: str, **extra: object) -> PostgresSecret:
    value = cluster.secret_value(user, password, **extra)
    if "ssl" not in extra:
        value.pop("ssl", None)
    return parse_postgres_secret(value)


def _ssl_in_use(conn: psycopg.Connection[object]) -> bool:
    return bool(conn.pgconn.ssl_in_use)


@pytest.mark.parametrize("ssl", [None, True, "true", "verify-full", "verify-ca", "require"])
def test_tls_modes_that_verify_or_encrypt_use_tls(bed: Bed, ssl: object) -> None:
    assert bed.pg.certificates is not None
    user, password = bed.make_user()
    extra = {} if ssl is None else {"ssl": ssl}
    secret = _secret(bed.pg, user, password, **extra)
    with _connector(bed.pg.certificates.ca_cert).connect(
        secret,
        Deadline.in_seconds(10),
        who="AWSCURRENT",
        floor=secret.sslmode,
    ) as conn:
        assert _ssl_in_use(conn)


def test_verify_full_fails_when_the_server_certificate_is_not_trusted(bed: Bed) -> None:
    """Without PGSSLROOTCERT only the shipped RDS roots are trusted: our test CA is not."""
    user, password = bed.make_user()
    secret = _secret(bed.pg, user, password)
    with pytest.raises(TlsError, match="certificate verify failed"):
        _connector(None).connect(
            secret, Deadline.in_seconds(10), who="AWSCURRENT", floor=secret.sslmode
        )


def test_require_does_not_verify_the_certificate(bed: Bed) -> None:
    user, password = bed.make_user()
    secret = _secret(bed.pg, user, password, ssl="require")
    with _connector(None).connect(
        secret, Deadline.in_seconds(10), who="AWSCURRENT", floor=secret.sslmode
    ) as conn:
        assert _ssl_in_use(conn)


@pytest.mark.parametrize("ssl", [None, True, "verify-full", "require"])
def test_no_silent_downgrade_to_plaintext(plain_pg: PostgresCluster, ssl: object) -> None:
    extra = {} if ssl is None else {"ssl": ssl}
    secret = _secret(plain_pg, "plain_app", "plain-app-pw-1", **extra)
    with pytest.raises(TlsError, match="does not support SSL"):
        _connector(None).connect(
            secret, Deadline.in_seconds(10), who="AWSCURRENT", floor=secret.sslmode
        )


@pytest.mark.parametrize("ssl", [False, "false", "disable"])
def test_ssl_false_connects_in_plaintext(plain_pg: PostgresCluster, ssl: object) -> None:
    secret = _secret(plain_pg, "plain_app", "plain-app-pw-1", ssl=ssl)
    with _connector(None).connect(
        secret, Deadline.in_seconds(10), who="AWSCURRENT", floor=secret.sslmode
    ) as conn:
        assert not _ssl_in_use(conn)


def test_a_rotation_against_a_tls_server_with_defaults_end_to_end(bed: Bed) -> None:
    """The lambda path: no ssl key, PGSSLROOTCERT from the environment (set by the bed)."""
    arn, _, _ = bed.user_secret()
    assert "ssl" not in bed.value(arn)
    assert bed.driver(bed.rotator()).rotate(arn).succeeded
    assert "SSL enabled" in bed.pg.server_log()


# -- channel binding (SCRAM-SHA-256-PLUS) ------------------------------------------------


def _bound_connector(ca: Path | None, binding: str) -> PostgresConnector:
    env = {"PGCHANNELBINDING": binding}
    settings = PostgresSettings.from_env(env if ca is None else {**env, "PGSSLROOTCERT": str(ca)})
    return PostgresConnector(settings, retry_policy=NO_RETRY)


@pytest.mark.parametrize("ssl", [None, "verify-ca", "require"])
def test_the_tls_server_binds_scram_to_the_tls_session(bed: Bed, ssl: object) -> None:
    """PostgreSQL 11+ over TLS offers SCRAM-SHA-256-PLUS: with "require" (which fails unless
    the exchange was bound) the login succeeds, so "prefer", the default, binds too (libpq
    picks SCRAM-SHA-256-PLUS whenever the server offers it)."""
    assert bed.pg.certificates is not None
    user, password = bed.make_user()
    secret = _secret(bed.pg, user, password, **({} if ssl is None else {"ssl": ssl}))
    connector = _bound_connector(bed.pg.certificates.ca_cert, "require")
    deadline = Deadline.in_seconds(10)
    with connector.connect(secret, deadline, who="AWSCURRENT", floor=secret.sslmode) as conn:
        assert _ssl_in_use(conn)
    assert connector.parameters(secret, deadline)["channel_binding"] == "require"


def test_preferred_channel_binding_leaves_a_plaintext_login_alone(
    plain_pg: PostgresCluster,
) -> None:
    secret = _secret(plain_pg, "plain_app", "plain-app-pw-1", ssl=False)
    connector = PostgresConnector(PostgresSettings.from_env({}), retry_policy=NO_RETRY)
    deadline = Deadline.in_seconds(10)
    assert connector.parameters(secret, deadline)["channel_binding"] == "prefer"
    with connector.connect(secret, deadline, who="AWSCURRENT", floor="disable") as conn:
        assert not _ssl_in_use(conn)


def test_required_channel_binding_without_tls_fails_before_anything_is_sent(
    fake_server: type[FakeServer],
) -> None:
    """PGCHANNELBINDING=require on a plaintext connection: libpq stops at the server's SCRAM
    offer, before any SCRAM message; the message names the variable and the fix."""
    server = fake_server("scram")
    secret = parse_postgres_secret(server.secret_value())
    with pytest.raises(AuthMethodError) as caught:
        _bound_connector(None, "require").connect(
            secret, Deadline.in_seconds(10), who="AWSCURRENT", floor="disable"
        )
    assert "PGCHANNELBINDING=require" in caught.value.problem
    assert "SSL not in use" in caught.value.problem
    assert server.wait_for(1) == [b""]


def test_over_tls_the_client_says_it_can_bind(
    fake_server: type[FakeServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server (or a man in the middle) that offers only SCRAM-SHA-256 over TLS is told
    that the client supports channel binding ("y" in the gs2 header), so a real server that
    does offer SCRAM-SHA-256-PLUS refuses an exchange relayed from another TLS session
    (RFC 5802's downgrade protection): channel binding is never disabled by default."""
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    server = fake_server("scram", tls_dir=tmp_path / "tls")
    secret = parse_postgres_secret(server.secret_value(ssl="require"))
    connector = PostgresConnector(PostgresSettings.from_env({}), retry_policy=NO_RETRY)
    with pytest.raises(ImpostorServerError):
        connector.connect(secret, Deadline.in_seconds(10), who="AWSCURRENT", floor="require")
    received = server.wait_for(1)[0]
    assert b"y,,n=,r=" in received
    assert b"n,,n=,r=" not in received
