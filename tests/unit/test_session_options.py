"""The libpq options that bound a rotation session's statements by the step's deadline."""

from __future__ import annotations

import pytest

from handlers.pg_connect import session_options
from rotation import Deadline
from rotation.pg.settings import PostgresSettings

HOST = "mydb.c9akciq32.us-east-1.rds.amazonaws.com"


def frozen(remaining_s: float) -> Deadline:
    return Deadline(expires_at=500.0 + remaining_s, clock=lambda: 500.0)


@pytest.mark.parametrize(
    ("remaining_s", "statement_ms", "lock_ms"),
    [
        (3.0, 3000, 2700),  # the lock wait gives up a tenth earlier...
        (45.0, 45000, 44000),  # ...but never more than 1 s earlier
        (0.0005, 1, 1),  # never 0, which would switch the timeouts off
    ],
)
def test_statement_and_lock_timeouts_come_from_the_time_left(
    remaining_s: float, statement_ms: int, lock_ms: int
) -> None:
    options = session_options(HOST, frozen(remaining_s), PostgresSettings())
    assert options == {"options": f"-c statement_timeout={statement_ms} -c lock_timeout={lock_ms}"}


def test_pgoptions_keeps_its_meaning_and_comes_first() -> None:
    settings = PostgresSettings.from_env({"PGOPTIONS": " -c search_path=app "})
    options = session_options(HOST, frozen(3.0), settings)
    assert options == {
        "options": "-c search_path=app -c statement_timeout=3000 -c lock_timeout=2700"
    }


def test_rds_proxy_gets_no_startup_options() -> None:
    """RDS Proxy refuses startup options; sending them would fail every login."""
    proxy = "pool.proxy-c9akciq32.us-east-1.rds.amazonaws.com"
    assert session_options(proxy, frozen(3.0), PostgresSettings()) == {}
    settings = PostgresSettings(options="-c search_path=app")
    assert session_options(proxy, frozen(3.0), settings) == {"options": "-c search_path=app"}
