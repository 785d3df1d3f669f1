"""A server that cannot prove it is the database gets one SCRAM proof, and nothing more.

The attacker here answers at the secret's host (a DNS record that points elsewhere, a
hijacked address, a man in the middle with a certificate the client trusts) and plays a
SCRAM server without the password's verifier: it takes the client's proof and answers with
a server signature it had to make up (tests/fix_fake_server.py, mode "scram"). Every labelled
version and the master secret point at it. The fake server checks each proof it received
against the known passwords, so the tests say *which* credential was offered, not only how
many.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handlers.pg_connect import PostgresConnector
from rotation import AWSPENDING, RotationError, Step
from rotation.retry import RetryPolicy
from rotation_client import RotatingCredentials, SecretsManagerSource
from rotation_contract.pg.errors import ImpostorServerError, UnreachableError
from tests.fix_aws import new_client
from tests.fix_fake_server import FakeServer
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

CURRENT = "current-password-of-the-app-000"
PREVIOUS = "previous-password-of-the-app-00"
MASTER = "the-master-password-0000000000"


def _no_sleep(_: float) -> None:
    """Retries without waiting: the tests count attempts, never time."""


def _labelled_secret(bed: Bed, server: FakeServer, **extra: Any) -> str:
    """A secret whose AWSCURRENT, AWSPREVIOUS and master all name the fake server."""
    master = bed.secret(server.secret_value(username="master", password=MASTER, **extra))
    arn = bed.secret(server.secret_value(password=PREVIOUS, masterarn=master, **extra))
    value = server.secret_value(password=CURRENT, masterarn=master, **extra)
    bed.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(value))
    return arn


def _set_secret(bed: Bed, arn: str, connector: PostgresConnector) -> tuple[RotationError, str]:
    """Run createSecret, then setSecret; the error and AWSPENDING's password."""
    from handlers.single_user import PostgresSingleUser

    rotator = bed.rotator(PostgresSingleUser(connector))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    pending = bed.value(arn, AWSPENDING)["password"]
    with pytest.raises(RotationError) as caught:
        rotator.handle(bed.event(arn, "setSecret", token))
    return caught.value, pending


@pytest.mark.parametrize("fault", ["signature", "nonce", "skip-final"])
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls-require"])
def test_single_user_offers_one_credential_to_an_impostor(  # noqa: PLR0917  # parametrized
    bed: Bed,
    fake_server: type[FakeServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
    tls: bool,
) -> None:
    # With sslmode=require the man in the middle's own certificate is accepted (libpq
    # verifies the CA under require only when a root file is named, see test_require_auth).
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    server = fake_server("scram", tls_dir=tmp_path / "tls" if tls else None, scram_fault=fault)
    arn = _labelled_secret(bed, server, ssl="require" if tls else False)
    connector = PostgresConnector(retry_policy=RetryPolicy(attempts=3, sleep=_no_sleep))

    error, pending = _set_secret(bed, arn, connector)

    assert isinstance(error, ImpostorServerError), error
    assert bed.labels(arn)  # the secret is untouched: setSecret changes no label
    # Exactly one credential reached it, AWSCURRENT's: not AWSPENDING's, AWSPREVIOUS's or
    # the master's, and not AWSCURRENT's again (an impostor is not retried).
    server.wait_for(1)
    assert server.client_first_messages() == 1
    passwords = {"AWSCURRENT": CURRENT, "AWSPENDING": pending, "AWSPREVIOUS": PREVIOUS}
    proven = server.proven({**passwords, "master": MASTER})
    assert proven == ([] if fault == "nonce" else ["AWSCURRENT"])
    # The message: where, what, and what to do; the context; no password.
    assert error.step == "setSecret"
    assert arn in str(error)
    assert "the server at 127.0.0.1 is not the database" in error.problem
    assert "No other credential was offered" in error.problem
    assert "resolves to" in error.problem
    assert "AWSCURRENT" in error.problem
    for password in (*passwords.values(), MASTER):
        assert password not in str(error)
    assert error.__cause__ is None or MASTER not in repr(error.__cause__.args)


def test_a_connection_dropped_after_the_proof_is_retried_never_answered_with_another(
    bed: Bed, fake_server: type[FakeServer]
) -> None:
    """Without the server's answer nothing says the password was wrong: the same credential
    is tried again (an unreachable server), and no other one is offered."""
    server = fake_server("scram", scram_fault="drop")
    arn = _labelled_secret(bed, server)
    connector = PostgresConnector(retry_policy=RetryPolicy(attempts=3, sleep=_no_sleep))

    error, pending = _set_secret(bed, arn, connector)

    assert isinstance(error, UnreachableError), error
    server.wait_for(3)
    proven = server.proven(
        {"AWSCURRENT": CURRENT, "AWSPENDING": pending, "AWSPREVIOUS": PREVIOUS, "master": MASTER}
    )
    assert proven == ["AWSCURRENT"] * 3


@pytest.mark.parametrize("fault", ["signature", "skip-final"])
def test_the_client_offers_one_credential_to_an_impostor(
    bed: Bed, fake_server: type[FakeServer], fault: str
) -> None:
    """The application client: no fall-back to AWSPENDING or AWSPREVIOUS, no retry round."""
    server = fake_server("scram", scram_fault=fault)
    arn = _labelled_secret(bed, server)
    pending = server.secret_value(password="pending-password-of-the-app-0")
    bed.sm.put_secret_value(
        SecretId=arn, SecretString=json.dumps(pending), VersionStages=[AWSPENDING]
    )
    credentials = RotatingCredentials(arn, source=SecretsManagerSource(new_client()))

    with pytest.raises(ImpostorServerError) as caught:
        credentials.connect()

    server.wait_for(1)
    assert server.client_first_messages() == 1
    assert server.proven(
        {
            "AWSCURRENT": CURRENT,
            "AWSPENDING": str(pending["password"]),
            "AWSPREVIOUS": PREVIOUS,
        }
    ) == ["AWSCURRENT"]
    assert "the server at 127.0.0.1 is not the database" in caught.value.problem
    assert caught.value.__cause__ is None  # the driver's error holds the password
