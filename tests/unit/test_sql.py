from __future__ import annotations

import psycopg

from handlers.pg_authority import planned
from handlers.pg_sql import alter_password


def _render(composed: psycopg.sql.Composable) -> str:
    return composed.as_string(None)


def test_alter_password_quotes_the_role_and_the_verifier() -> None:
    statement = _render(alter_password(planned('we"ird; DROP'), "SCRAM-SHA-256$4096:a'b"))
    assert statement == "ALTER ROLE \"we\"\"ird; DROP\" PASSWORD 'SCRAM-SHA-256$4096:a''b'"
