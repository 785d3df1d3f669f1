"""The TLS floor: no login of a rotation uses weaker TLS than AWSCURRENT's mode.

Every scenario puts a credential that asks for a plain connection (``"ssl": false``) where
a rotation must use it, against the TLS cluster, and reads the server log: each login the
rotation made (``application_name=secrets-rotation``) must say ``SSL enabled``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, AWSPREVIOUS, Rotator, SecretStore, Step
from rotation.driver import RotationFailed
from rotation_client import RotatingCredentials, SecretsManagerSource
from rotation_contract.pg.settings import PostgresSettings
from tests.fix_aws import new_client
from tests.fix_multi import MASTER, MultiBed
from tests.fix_postgres import ServerLog, can_login
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

_AUTHORIZED = re.compile(r"connection authorized: user=(\S+) .*application_name=(\S+)(.*)$", re.M)


def _rotation_logins(log: ServerLog, user: str) -> list[str]:
    """The rest of each 'connection authorized' line of the rotation's logins as ``user``."""
    return [
        rest
        for who, app, rest in _AUTHORIZED.findall(log.since())
        if who == user and app == "secrets-rotation"
    ]


def _make_previous(bed: Bed, arn: str, value: dict[str, Any]) -> None:
    """Put ``value`` as the new AWSCURRENT; the version before becomes AWSPREVIOUS."""
    bed.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(value))


def test_single_user_previous_without_tls_is_raised_to_currents_mode(
    bed: Bed, server_log: ServerLog
) -> None:
    """An AWSPREVIOUS written before TLS was turned on (``"ssl": false``) is the only
    credential the database still accepts: setSecret logs in with it, over TLS."""
    user, password = bed.make_user()
    old = bed.pg.secret_value(user, password, ssl=False)
    arn = bed.secret(old)
    # AWSCURRENT now asks for verify-full (no ssl key) but holds a password the database
    # never got (e.g. set by hand); AWSPREVIOUS is the plain-text-era value.
    _make_previous(bed, arn, {**old, "password": "never-set-in-the-db-1"} | {"ssl": True})
    assert bed.value(arn, AWSPREVIOUS)["ssl"] is False

    run = bed.driver(bed.rotator()).rotate(arn)

    assert run.succeeded, run.steps
    logins = _rotation_logins(server_log, user)
    assert len(logins) >= 2  # AWSPREVIOUS in setSecret, AWSPENDING in testSecret
    assert all("SSL enabled" in rest for rest in logins), logins
    assert bed.logs_in(bed.value(arn))


def test_single_user_master_without_tls_is_raised_to_currents_mode(
    bed: Bed, server_log: ServerLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A master secret with ``"ssl": false`` repairs the user over TLS."""
    user, _ = bed.make_user()
    monkeypatch.setenv("MASTER_MANAGED_ROLES", user)
    master_arn = bed.secret(bed.pg.secret_value("postgres", bed.pg.superuser_password, ssl=False))
    value = bed.pg.secret_value(user, "not-the-db-password-1", masterarn=master_arn)
    value.pop("ssl", None)
    arn = bed.secret(value)

    run = bed.driver(bed.rotator()).rotate(arn)

    assert run.succeeded, run.steps
    master_logins = _rotation_logins(server_log, "postgres")
    assert len(master_logins) == 1
    assert "SSL enabled" in master_logins[0]


def test_multi_user_master_without_tls_is_raised_to_currents_mode(
    multi_tls: MultiBed, server_log: ServerLog
) -> None:
    master_arn = multi_tls.master_secret(ssl=False)
    arn, user, _ = multi_tls.app(master_arn=master_arn)
    assert "ssl" not in multi_tls.value(arn)  # AWSCURRENT: verify-full

    run = multi_tls.driver(multi_tls.rotator()).rotate(arn)

    assert run.succeeded, run.steps
    master_logins = _rotation_logins(server_log, MASTER)
    assert len(master_logins) == 1
    assert "SSL enabled" in master_logins[0]
    every = [*master_logins, *_rotation_logins(server_log, user)]
    every += _rotation_logins(server_log, f"{user}_clone")
    assert len(every) == 3  # the current user's guard login, the master, testSecret
    assert all("SSL enabled" in rest for rest in every), every


def test_a_pending_value_without_tls_is_used_over_tls_and_never_promoted(
    bed: Bed, server_log: ServerLog
) -> None:
    """A pending value written with ``"ssl": false`` is raised in setSecret and testSecret,
    and finishSecret refuses to make it AWSCURRENT: promoted, it would lower the floor for
    every later login and every application."""
    arn, user, _ = bed.user_secret()

    class PlainPending(PostgresSingleUser):
        def create(self, request: Any) -> Any:
            result = super().create(request)
            return type(result)(value={**result.value, "ssl": False})

    rotator = Rotator(PlainPending(bed.connector()), SecretStore(bed.handler_client))
    before = bed.labels(arn)
    with pytest.raises(RotationFailed) as caught:
        bed.driver(rotator).rotate(arn)

    assert caught.value.step is Step.FINISH
    assert "weaker than AWSCURRENT's verify-full" in str(caught.value)
    current_id = next(v for v, stages in before.items() if AWSCURRENT in stages)
    assert AWSCURRENT in bed.labels(arn)[current_id]
    assert "ssl" not in bed.value(arn)
    logins = _rotation_logins(server_log, user)
    assert len(logins) == 2  # setSecret's and testSecret's
    assert all("SSL enabled" in rest for rest in logins), logins


def test_the_client_raises_previous_to_currents_mode(bed: Bed) -> None:
    """``rotation_client`` falling back to AWSPREVIOUS keeps AWSCURRENT's TLS."""
    user, password = bed.make_user()
    old = bed.pg.secret_value(user, password, ssl=False)
    arn = bed.secret(old)
    _make_previous(bed, arn, {**old, "password": "never-set-in-the-db-2", "ssl": True})
    credentials = RotatingCredentials(
        arn,
        source=SecretsManagerSource(new_client()),
        settings=PostgresSettings.from_env(os.environ),
    )

    with credentials.connect(autocommit=True) as conn:
        assert conn.info.user == user
        assert conn.pgconn.ssl_in_use

    # The caller's own keyword arguments cannot lower it either.
    with credentials.connect(autocommit=True, sslmode="disable") as conn:
        assert conn.pgconn.ssl_in_use
    assert can_login(bed.pg, user, password)
