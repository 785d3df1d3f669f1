"""Rotations through PgBouncer: failed queries of three applications, per pooling setup.

Starts its own moto server, throwaway cluster (TLS off) and PgBouncer per setup, and runs
each strategy through three rotations with the readers of
:mod:`testbed.pgbouncer` (a plain psycopg reader opening a connection per
query with AWSCURRENT, one holding a connection, the client library), reading
``QUERIES_PER_STEP`` times before each rotation and after each step. Writes
``bench/PGBOUNCER.md`` and ``bench/pgbouncer.json``. Counts are exact (the reads and the
steps interleave in a fixed order); the tests assert the setups that work
(tests/functional/test_pgbouncer.py); this also records the one that breaks.

Usage: ``.venv/bin/python bench/pgbouncer.py``
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import Rotator, SecretStore
from testbed.moto_server import running_moto, secrets_manager_at
from testbed.pgbouncer import (
    QUERIES_PER_STEP,
    ROTATIONS,
    PgBouncer,
    Readers,
    rotate_with_readers,
    running_pgbouncer,
)
from testbed.pgcluster import PostgresCluster, running_cluster

HERE = Path(__file__).resolve().parent
SETUPS = [
    # (name, pool_mode, server_via_socket, hold a connection across rotations)
    ("session, SCRAM pass-through", "session", False, True),
    ("transaction, pooler authenticates (server trusts it)", "transaction", True, True),
    ("transaction, SCRAM pass-through, no held connection", "transaction", False, False),
    ("transaction, SCRAM pass-through, a held connection", "transaction", False, True),
]


def _role(pg: PostgresCluster, name: str, password: str, *, createrole: bool = False) -> None:
    with psycopg.connect(**pg.conninfo(), autocommit=True) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(name),
                sql.SQL("CREATEROLE" if createrole else ""),
                sql.Literal(password),
            )
        )
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(name)))


def _run(sm: Any, pg: PostgresCluster, bouncer: PgBouncer, strategy: str, hold: bool) -> Any:
    user, password = f"app_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    _role(pg, user, password)
    value = bouncer.secret_value(user, password)
    if strategy == "multi-user":
        master, master_password = f"master_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
        _role(pg, master, master_password, createrole=True)
        value["masterarn"] = sm.create_secret(
            Name=f"bench/{master}",
            SecretString=json.dumps(bouncer.secret_value(master, master_password)),
        )["ARN"]
        rotation_strategy: Any = PostgresMultiUser(PostgresConnector())
    else:
        rotation_strategy = PostgresSingleUser(PostgresConnector())
    arn = sm.create_secret(Name=f"bench/{user}", SecretString=json.dumps(value))["ARN"]
    readers = Readers(sm, arn, bouncer, hold=hold, source=secrets_manager_at(sm.meta.endpoint_url))
    rotator = Rotator(rotation_strategy, SecretStore(secrets_manager_at(sm.meta.endpoint_url)))
    try:
        failures = rotate_with_readers(sm, rotator, arn, readers)
    finally:
        readers.close()
    return {
        "queries": dict(readers.ran),
        "failed": {name: readers.failed.get(name, 0) for name in readers.ran},
        "first_error": readers.errors,
        "rotations_failed": len(failures),
        "rotation_errors": [f.split(": ", 1)[-1][:300] for f in failures],
    }


def main() -> int:
    results: list[dict[str, Any]] = []
    with running_moto() as moto, running_cluster(tls=False) as pg:
        sm = secrets_manager_at(moto.url)
        for name, mode, via_socket, hold in SETUPS:
            for strategy in ("single-user", "multi-user"):
                with running_pgbouncer(pg, pool_mode=mode, server_via_socket=via_socket) as b:
                    outcome = _run(sm, pg, b, strategy, hold)
                results.append({"setup": name, "strategy": strategy, **outcome})
                sys.stderr.write(f"{name} / {strategy}: {outcome['failed']}\n")
    (HERE / "pgbouncer.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = [
        "# Rotations through PgBouncer",
        "",
        f"`python bench/pgbouncer.py`: PgBouncer (auth_query, scram-sha-256), {ROTATIONS} "
        f"rotations per row, {QUERIES_PER_STEP} queries per reader before each rotation and "
        "after each step. Failed / run, per reader; exact counts, not timings.",
        "",
        "| setup | strategy | plain, a connection per query | plain, one held connection "
        "| client library | rotations failed |",
        "|---|---|---|---|---|---|",
    ]
    for row in results:
        cells = []
        for reader in (
            "plain, a connection per query",
            "plain, one held connection",
            "client library",
        ):
            ran = row["queries"].get(reader)
            cells.append(f"{row['failed'][reader]} / {ran}" if ran else "-")
        lines.append(
            f"| {row['setup']} | {row['strategy']} | {' | '.join(cells)} "
            f"| {row['rotations_failed']} / {ROTATIONS} |"
        )
    lines += ["", "First error per reader and failed rotation:", ""]
    for row in results:
        for reader, error in row["first_error"].items():
            lines.append(f"- {row['setup']} / {row['strategy']} / {reader}: `{error}`")
        for error in row["rotation_errors"][:1]:
            lines.append(f"- {row['setup']} / {row['strategy']} / rotation: `{error}`")
    (HERE / "PGBOUNCER.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
