"""No cleartext password, ever, to any server: libpq's ``require_auth`` refuses a server that
asks for a cleartext password, or for none at all, before anything is sent.

Against a fake server on loopback (the only honest way to see what a client sends to a
server that should not get it), for the rotation handlers and for ``rotation_client``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.pg_connect import PostgresConnector
from rotation import RotationError, Step
from rotation.retry import RetryPolicy
from rotation_client import RotatingCredentials, SecretsManagerSource
from rotation_contract.pg.errors import AuthMethodError
from rotation_contract.pg.settings import PostgresSettings
from tests.fix_aws import new_client
from tests.fix_fake_server import FakeServer
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

PASSWORD = b"must-never-reach-the-fake-server"


def _set_secret(bed: Bed, arn: str, connector: PostgresConnector) -> RotationError:
    from handlers.single_user import PostgresSingleUser

    rotator = bed.rotator(PostgresSingleUser(connector))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    return caught.value


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("cleartext", "asked for the password in cleartext"),
        ("trust", "without asking for any password"),
    ],
)
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls-require"])
def test_set_secret_refuses_before_sending_anything(  # noqa: PLR0917  # parametrized
    bed: Bed,
    fake_server: type[FakeServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    says: str,
    tls: bool,
) -> None:
    # libpq verifies the CA even under sslmode=require when PGSSLROOTCERT names a file: the
    # man in the middle here has a certificate of its own, as one would.
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    server = fake_server(mode, tls_dir=tmp_path / "tls" if tls else None)
    arn = bed.secret(server.secret_value(ssl="require" if tls else False))
    connector = PostgresConnector(retry_policy=RetryPolicy(attempts=3))

    error = _set_secret(bed, arn, connector)

    assert isinstance(error, AuthMethodError)
    assert says in error.problem
    assert "PGREQUIREAUTH=" in error.problem
    assert "pg_hba.conf" in error.problem
    assert error.step == "setSecret"
    assert arn in str(error)
    # One attempt (a configuration problem is not retried), and not one byte after the
    # server's authentication request: no password message, no query.
    assert server.wait_for(1) == [b""]
    assert PASSWORD.decode() not in str(error)


def test_the_client_refuses_a_cleartext_server(bed: Bed, fake_server: type[FakeServer]) -> None:
    server = fake_server("cleartext")
    arn = bed.secret(server.secret_value())
    credentials = RotatingCredentials(arn, source=SecretsManagerSource(new_client()))

    with pytest.raises(AuthMethodError, match="cleartext") as caught:
        credentials.connect()

    assert server.wait_for(1) == [b""]
    assert caught.value.__cause__ is None  # the driver's error holds the password


def test_the_client_refuses_a_server_that_asks_for_nothing(
    bed: Bed, fake_server: type[FakeServer]
) -> None:
    server = fake_server("trust")
    arn = bed.secret(server.secret_value())
    credentials = RotatingCredentials(arn, source=SecretsManagerSource(new_client()))
    with pytest.raises(TypeError, match="require_auth= is refused"):
        credentials.connect(require_auth="none")  # a caller's keyword cannot lower it
    with pytest.raises(AuthMethodError, match="trust"):
        credentials.connect()
    assert server.wait_for(1) == [b""]


def test_pgrequireauth_is_the_deliberate_override(bed: Bed, fake_server: type[FakeServer]) -> None:
    """Whoever accepts the risk says so in the environment, and then the password goes."""
    server = fake_server("cleartext")
    arn = bed.secret(server.secret_value())
    settings = PostgresSettings.from_env({"PGREQUIREAUTH": "password"})
    connector = PostgresConnector(settings, retry_policy=RetryPolicy(attempts=1))

    error = _set_secret(bed, arn, connector)

    assert not isinstance(error, AuthMethodError)
    received = server.wait_for(1)
    assert received[0].startswith(b"p")
    assert PASSWORD in received[0]


def test_scram_against_the_real_server_is_allowed(bed: Bed) -> None:
    """The default admits the real cluster's scram-sha-256 (every other test relies on it
    too; this one says so): a rotation with the default settings completes."""
    arn, _, _ = bed.user_secret()
    assert PostgresSettings.from_env({}).require_auth == "scram-sha-256,md5"
    assert bed.driver(bed.rotator()).rotate(arn).succeeded
