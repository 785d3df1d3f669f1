"""A caller's connection keywords cannot replace the secret's credential, in any integration.

``user=``, ``password=``, ``host=``... passed through to psycopg would log in with
something else than the rotated secret (and stop following rotations, or send the secret's
password to another server); ``require_auth=`` would lower the contract's rule. Each is
refused with a TypeError that names it, why, and the fix.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg_pool
import pytest

import rotation_client.sqlalchemy as rotating_sqlalchemy
from rotation_client import (
    ConnectRetry,
    RotatingCredentials,
    SecretsManagerSource,
    connect,
    connect_async,
    make_async_pool,
    make_pool,
)
from rotation_contract.pg.settings import PostgresSettings
from tests.fix_aws import new_client
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

REFUSED = ["user", "password", "host", "hostaddr", "port", "dbname", "conninfo", "passfile"]
REFUSED += ["service"]
FAST = ConnectRetry(rounds=1, initial_wait_s=0.0, max_wait_s=0.0, jitter=0.0, sleep=lambda _: None)


def _creds(arn: str) -> RotatingCredentials:
    return RotatingCredentials(arn, source=SecretsManagerSource(new_client()), retry=FAST)


@pytest.mark.parametrize("key", REFUSED)
def test_a_keyword_that_names_the_login_is_refused(bed: Bed, key: str) -> None:
    arn, _, _ = bed.user_secret()
    other: Any = {"port": 1, "hostaddr": "127.0.0.1"}.get(key, "wrong-value-9")
    with pytest.raises(TypeError, match=rf"{key}= is refused: the secret supplies the login"):
        _creds(arn).connect(**{key: other})


def test_a_positional_conninfo_is_refused(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    with pytest.raises(TypeError, match="conninfo= is refused"):
        _creds(arn).connect("user=postgres")  # type: ignore[arg-type]  # as psycopg takes it


def test_a_password_given_by_the_caller_is_refused_not_tried(bed: Bed) -> None:
    """Before the refusal, the caller's password replaced the secret's: refused logins."""
    arn, _, _ = bed.user_secret()
    with pytest.raises(TypeError, match=r"remove password= \(change the secret instead\)"):
        _creds(arn).connect(password="wrong-password-9")


def test_a_callers_require_auth_is_refused_naming_the_override(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    with pytest.raises(TypeError, match=r"require_auth= is refused.*set PGREQUIREAUTH"):
        _creds(arn).connect(require_auth="password")


def test_a_stronger_sslmode_is_still_taken(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    with _creds(arn).connect(sslmode="verify-full") as conn:
        assert conn.pgconn.ssl_in_use


def _pool(arn: str, creds: RotatingCredentials) -> None:
    make_pool(arn, credentials_=creds, kwargs={"user": "postgres"}, open=False)


def _pool_conninfo(arn: str, creds: RotatingCredentials) -> None:
    make_pool(arn, credentials_=creds, conninfo="user=postgres", open=False)


def _pool_connection_class(arn: str, creds: RotatingCredentials) -> None:
    pool = make_pool(arn, credentials_=creds, open=False)
    pool.connection_class.connect("user=postgres")  # positional conninfo, as a pool passes it


def _async_pool(arn: str, creds: RotatingCredentials) -> None:
    make_async_pool(arn, credentials_=creds, kwargs={"user": "postgres"})


def _connect(arn: str, creds: RotatingCredentials) -> None:
    connect(arn, credentials_=creds, user="postgres")


def _connect_async(arn: str, creds: RotatingCredentials) -> None:
    asyncio.run(connect_async(arn, credentials_=creds, user="postgres"))


def _engine(arn: str, creds: RotatingCredentials) -> None:
    rotating_sqlalchemy.create_engine(arn, credentials_=creds, connect_args={"user": "postgres"})


def _async_engine(arn: str, creds: RotatingCredentials) -> None:
    rotating_sqlalchemy.create_async_engine(
        arn, credentials_=creds, connect_args={"user": "postgres"}
    )


@pytest.mark.parametrize(
    "integration",
    [
        _connect,
        _connect_async,
        _pool,
        _pool_conninfo,
        _pool_connection_class,
        _async_pool,
        _engine,
        _async_engine,
    ],
)
def test_every_integration_refuses_the_login_keywords(
    bed: Bed, integration: Callable[[str, RotatingCredentials], None]
) -> None:
    arn, _, _ = bed.user_secret()
    with pytest.raises(TypeError, match=r"(user|conninfo)= is refused"):
        integration(arn, _creds(arn))


@pytest.fixture(scope="session")
def django_settings() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.dummy"}},
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()


def _django(options: dict[str, Any], **settings_: Any) -> Any:
    from django.conf import settings
    from django.db import connections

    alias = f"kwargs_{len(settings.DATABASES)}_{id(options)}"
    settings.DATABASES[alias] = {"ENGINE": "rotation_client.django", "OPTIONS": options}
    settings.DATABASES[alias].update(settings_)
    connections.configure_settings(settings.DATABASES)
    return connections[alias]


@pytest.mark.parametrize("key", [*REFUSED, "require_auth"])
def test_django_options_may_not_carry_the_login(bed: Bed, django_settings: None, key: str) -> None:
    from django.core.exceptions import ImproperlyConfigured

    arn, _, _ = bed.user_secret()
    wrapper = _django({"secret_id": arn, "credentials": _creds(arn), key: "x"})
    with pytest.raises(ImproperlyConfigured, match=re.escape(f'"OPTIONS": {key}= is refused')):
        wrapper.ensure_connection()


def test_django_name_host_port_settings_still_apply(bed: Bed, django_settings: None) -> None:
    """Django's own NAME, HOST and PORT settings replace the secret's (its test runner
    points NAME at the test database); only the login comes from the secret."""
    arn, user, _ = bed.user_secret()
    wrapper = _django(
        {"secret_id": arn, "credentials": _creds(arn)},
        NAME="postgres",
        HOST="127.0.0.1",
        PORT=str(bed.pg.port),
    )
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database()")
            assert cursor.fetchone() == (user, "postgres")
    finally:
        wrapper.close()
    assert isinstance(psycopg.__version__, str)


# -- a pool's callable kwargs (#21) ---------------------------------------------------------


def test_make_pool_takes_a_callable_kwargs_and_checks_what_it_returns(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    creds = RotatingCredentials(arn, client=new_client())
    calls: list[int] = []

    def per_connection() -> dict[str, Any]:
        calls.append(1)
        return {"application_name": f"callable-{len(calls)}"}

    with (
        make_pool(arn, credentials_=creds, kwargs=per_connection, min_size=1) as pool,
        pool.connection() as conn,
    ):
        row = conn.execute("SELECT current_user, current_setting('application_name')").fetchone()
    assert row is not None
    assert row[0] == user
    assert str(row[1]).startswith("callable-")
    assert calls

    # What the callable returns is checked like a static kwargs, at each new connection.
    refused = make_pool(arn, credentials_=creds, kwargs=lambda: {"user": "postgres"}, open=False)
    assert callable(refused.kwargs)
    returned = refused.kwargs()
    with pytest.raises(TypeError, match="user= is refused"):
        refused.connection_class.connect(**returned)

    # current_parameters belongs to a plain pool (as docs/client/pools.md says), not to make_pool.
    with pytest.raises(TypeError, match="current_parameters is refused here"):
        make_pool(arn, credentials_=creds, kwargs=creds.current_parameters, open=False)
    with (
        psycopg_pool.ConnectionPool(kwargs=creds.current_parameters, min_size=1) as plain,
        plain.connection() as conn,
    ):
        row = conn.execute("SELECT current_user").fetchone()
    assert row is not None
    assert row[0] == user


# -- channel binding may be raised, never lowered (#21) ----------------------------------

_BINDING_DISABLED: dict[str, Callable[[str, RotatingCredentials], Any]] = {
    "connect": lambda arn, c: connect(arn, credentials_=c, channel_binding="disable"),
    "connect_async": lambda arn, c: asyncio.run(
        connect_async(arn, credentials_=c, channel_binding="disable")
    ),
    "pool": lambda arn, c: make_pool(
        arn, credentials_=c, kwargs={"channel_binding": "disable"}, open=False
    ),
    "async_pool": lambda arn, c: make_async_pool(
        arn, credentials_=c, kwargs={"channel_binding": "disable"}
    ),
    "engine": lambda arn, c: rotating_sqlalchemy.create_engine(
        arn, credentials_=c, connect_args={"channel_binding": "disable"}
    ),
    "async_engine": lambda arn, c: rotating_sqlalchemy.create_async_engine(
        arn, credentials_=c, connect_args={"channel_binding": "Disable"}
    ),
}


@pytest.mark.parametrize("integration", sorted(_BINDING_DISABLED))
def test_every_integration_refuses_a_channel_binding_that_lowers_the_clients(
    bed: Bed, integration: str
) -> None:
    arn, _, _ = bed.user_secret()
    with pytest.raises(
        TypeError, match=r"channel_binding='disable' is refused.*set PGCHANNELBINDING=disable"
    ):
        _BINDING_DISABLED[integration](arn, _creds(arn))


def test_django_options_may_not_disable_channel_binding(bed: Bed, django_settings: None) -> None:
    from django.core.exceptions import ImproperlyConfigured

    arn, _, _ = bed.user_secret()
    wrapper = _django({"secret_id": arn, "credentials": _creds(arn), "channel_binding": "disable"})
    with pytest.raises(ImproperlyConfigured, match=r"channel_binding='disable' is refused"):
        wrapper.ensure_connection()


def test_an_unknown_channel_binding_is_refused_naming_the_modes(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    with pytest.raises(TypeError, match=r"channel_binding='off' is not a libpq channel binding"):
        _creds(arn).connect(channel_binding="off")


class _Recorded:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **params: Any) -> psycopg.Connection[Any]:
        self.calls.append(params)
        return psycopg.connect(**params)


def test_channel_binding_require_is_taken_and_logs_in_over_tls(bed: Bed) -> None:
    """The test bed's server speaks TLS and SCRAM: SCRAM-SHA-256-PLUS binds the login to
    the TLS session."""
    arn, user, _ = bed.user_secret()
    recorded = _Recorded()
    with _creds(arn).connect(recorded, channel_binding="require") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
        assert conn.pgconn.ssl_in_use
    assert [c["channel_binding"] for c in recorded.calls] == ["require"]


def test_without_a_keyword_the_client_prefers_channel_binding(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    recorded = _Recorded()
    with _creds(arn).connect(recorded):
        pass
    assert [c["channel_binding"] for c in recorded.calls] == ["prefer"]


def test_a_callers_prefer_does_not_lower_pgchannelbinding_require(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    settings = PostgresSettings.from_env({**os.environ, "PGCHANNELBINDING": "require"})
    creds = RotatingCredentials(
        arn, source=SecretsManagerSource(new_client()), retry=FAST, settings=settings
    )
    recorded = _Recorded()
    with creds.connect(recorded, channel_binding="prefer") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    assert [c["channel_binding"] for c in recorded.calls] == ["require"]


def test_a_callers_connect_timeout_may_shorten_the_clients_never_lengthen_it(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    recorded = _Recorded()
    creds = _creds(arn)
    with creds.connect(recorded, connect_timeout=3):
        pass
    with creds.connect(recorded, connect_timeout=600):
        pass
    default = creds.settings.connect_timeout_s
    assert [c["connect_timeout"] for c in recorded.calls] == [min(3, default), default]
