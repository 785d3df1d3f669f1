"""Resolving the database's host name is bounded by the step's deadline.

The resolver is injected (the connector's ``resolver``): one that never answers stands for a
DNS server that drops the query, one that maps a name to the test bed's address stands for a
record that points there. Deadlines are frozen, so the bound each attempt got is exact and
no test waits for more than a fraction of a second.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from handlers.pg_connect import PostgresConnector
from rotation import DeadlineError
from rotation.retry import RetryPolicy
from rotation_contract.pg.errors import TlsError, UnreachableError
from rotation_contract.pg.resolve import needs_resolution, resolve
from rotation_contract.pg.secret import PostgresSecret, parse_postgres_secret
from rotation_contract.pg.settings import PostgresSettings
from testbed.pgcluster import PostgresCluster
from tests.fix_silent import frozen_deadline

pytestmark = pytest.mark.functional


class _Hung:
    """A resolver that never answers (until the test ends), counting the questions."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.release = threading.Event()

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        self.release.wait()
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


@pytest.fixture
def hung() -> Iterator[_Hung]:
    resolver = _Hung()
    yield resolver
    resolver.release.set()


class _Recorded:
    """``psycopg.connect`` that records what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        self.calls.append(kwargs)
        return psycopg.connect(**kwargs)


def _secret(pg: PostgresCluster, user: str, password: str, host: str) -> PostgresSecret:
    value = pg.secret_value(user, password, host=host)
    value.pop("ssl", None)  # verify-full
    return parse_postgres_secret(value)


def _connector(**kwargs: Any) -> PostgresConnector:
    return PostgresConnector(
        PostgresSettings.from_env(os.environ),
        retry_policy=RetryPolicy(attempts=3, sleep=lambda _: None),
        **kwargs,
    )


def test_a_resolver_that_never_answers_fails_the_login_within_the_time_left(
    pg: PostgresCluster, hung: _Hung
) -> None:
    recorded = _Recorded()
    secret = _secret(pg, "app", "pw", host="db.internal.example")
    with pytest.raises(UnreachableError) as caught:
        _connector(connect=recorded, resolver=hung).connect(
            secret, frozen_deadline(0.2), who="AWSCURRENT", floor="verify-full"
        )
    problem = caught.value.problem
    assert "could not resolve the host name 'db.internal.example' for AWSCURRENT" in problem
    assert "did not answer within 0.2 s" in problem
    assert "DNS" in problem
    assert hung.asked == ["db.internal.example"]  # no retry: less than an attempt was left
    assert recorded.calls == []  # libpq was never reached


def test_a_name_that_does_not_resolve_says_so(pg: PostgresCluster) -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    secret = _secret(pg, "app", "pw", host="nope.invalid")
    connector = PostgresConnector(
        PostgresSettings(), retry_policy=RetryPolicy(attempts=1), resolver=nxdomain
    )
    with pytest.raises(UnreachableError, match=r"'nope\.invalid' .*Name or service not known"):
        connector.connect(secret, frozen_deadline(10), who="AWSCURRENT", floor="verify-full")


def test_the_certificate_is_still_checked_against_the_name_in_the_secret(
    pg: PostgresCluster, make_user: Any
) -> None:
    """libpq connects to the address it is given, and checks the certificate against the
    name: a record that sends another name to the database's address fails verify-full."""
    user, password = make_user()
    recorded = _Recorded()

    def local(host: str, port: int) -> list[str]:
        return [pg.host]

    connector = _connector(connect=recorded, resolver=local)
    ok = _secret(pg, user, password, host="localhost")  # a name the certificate holds
    with connector.connect(ok, frozen_deadline(10), who="AWSCURRENT", floor="verify-full"):
        pass
    assert recorded.calls[-1]["host"] == "localhost"
    assert recorded.calls[-1]["hostaddr"] == pg.host
    other = _secret(pg, user, password, host="db.elsewhere.example")
    with pytest.raises(TlsError, match="does not match host name"):
        connector.connect(other, frozen_deadline(10), who="AWSCURRENT", floor="verify-full")


def test_the_system_resolver_is_used_by_default(pg: PostgresCluster, make_user: Any) -> None:
    user, password = make_user()
    recorded = _Recorded()
    secret = _secret(pg, user, password, host="localhost")
    with _connector(connect=recorded).connect(
        secret, frozen_deadline(10), who="AWSCURRENT", floor="verify-full"
    ):
        pass
    addresses = recorded.calls[-1]["hostaddr"].split(",")
    assert pg.host in addresses
    assert recorded.calls[-1]["host"] == ",".join(["localhost"] * len(addresses))


def test_no_time_left_is_a_deadline_error_before_anything_is_tried(
    pg: PostgresCluster, hung: _Hung
) -> None:
    recorded = _Recorded()
    secret = _secret(pg, "app", "pw", host="localhost")
    with pytest.raises(DeadlineError, match="no time was left in the step to log in as AWSCURRENT"):
        _connector(connect=recorded, resolver=hung).connect(
            secret, frozen_deadline(0), who="AWSCURRENT", floor="verify-full"
        )
    assert hung.asked == []
    assert recorded.calls == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("db.example.com", True),
        ("localhost", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("/var/run/postgresql", False),
        ("", False),
    ],
)
def test_only_names_are_resolved(host: str, expected: bool) -> None:
    assert needs_resolution(host) is expected


def test_resolve_gives_up_at_its_timeout(hung: _Hung) -> None:
    with pytest.raises(TimeoutError):
        resolve("db.example.com", 5432, timeout_s=0.05, resolver=hung)
    with pytest.raises(TimeoutError):
        resolve("db.example.com", 5432, timeout_s=0.0, resolver=hung)
