"""The startup packet carries nothing of ours (poolers refuse it); the step's bounds are set
inside each transaction, from the time left (handlers.pg_bounds)."""

from __future__ import annotations

import pytest

from handlers.pg_bounds import statement_bounds
from handlers.pg_connect import session_options
from rotation import Deadline
from rotation_contract.pg.settings import PostgresSettings

HOST = "mydb.c9akciq32.us-east-1.rds.amazonaws.com"
PROXY = "pool.proxy-c9akciq32.us-east-1.rds.amazonaws.com"


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
    assert statement_bounds(frozen(remaining_s)) == (statement_ms, lock_ms)


@pytest.mark.parametrize("host", [HOST, PROXY, "127.0.0.1"])
def test_no_startup_options_of_ours(host: str) -> None:
    """PgBouncer answers an options startup parameter with "unsupported startup parameter",
    RDS Proxy with "Feature not supported": nothing of ours goes there."""
    assert session_options(host, frozen(3.0), PostgresSettings()) == {}


def test_pgoptions_keeps_its_meaning() -> None:
    settings = PostgresSettings.from_env({"PGOPTIONS": " -c search_path=app "})
    assert session_options(HOST, frozen(3.0), settings) == {"options": "-c search_path=app"}
