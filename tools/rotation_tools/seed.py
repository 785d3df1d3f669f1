"""The users, table and secrets the demo and the sandbox start from.

On a throwaway cluster: an application user owning a table ``orders`` and its single-user
secret; a master user with CREATEROLE and its secret; a second application user, made by the
master as on RDS (so PostgreSQL 16+'s admin-option rules hold as they would there), with
``SELECT`` on the table and a multi-user secret naming the master. Passwords are random and
reach the server only as SCRAM verifiers.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from testbed.pgcluster import PostgresCluster

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["LOCAL_PARTS", "TABLE", "SeedNames", "Seeded", "seed"]

TABLE = "orders"
# What the demo and the sandbox run on, in words a newcomer knows.
LOCAL_PARTS = (
    "a Secrets Manager emulator and a throwaway PostgreSQL server, both on this machine, "
    "no AWS account"
)


@dataclass(frozen=True)
class SeedNames:
    """The roles and secret names one seeding makes."""

    single_user: str
    master_user: str
    multi_user: str
    single_name: str
    master_name: str
    multi_name: str


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed` made: the secrets' ARNs, and the server's major version."""

    names: SeedNames
    single_arn: str
    master_arn: str
    multi_arn: str
    postgres_version: int


def _make_role(conn: psycopg.Connection[Any], name: str, *, createrole: bool = False) -> str:
    """Create a login role with a random password, sent as a SCRAM verifier; returns the
    password."""
    password = secrets.token_urlsafe(24)
    verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
            sql.Identifier(name),
            sql.SQL("CREATEROLE" if createrole else ""),
            sql.Literal(verifier.decode()),
        )
    )
    return password


def secret_value(cluster: PostgresCluster, user: str, password: str) -> dict[str, Any]:
    """The contract's secret JSON for ``user``, with no "ssl" key: verify-full, as a default
    secret on RDS (the cluster serves TLS with its own CA)."""
    value = cluster.secret_value(user, password)
    value.pop("ssl", None)
    return value


def seed(
    cluster: PostgresCluster,
    client: SecretsManagerClient,
    names: SeedNames,
    *,
    single_extra: dict[str, Any] | None = None,
) -> Seeded:
    """Create the roles, the table and the three secrets (see the module docstring).

    ``single_extra``: keys added to the single-user secret (unknown keys survive rotations).
    """

    def create_secret(name: str, value: dict[str, Any]) -> str:
        return str(client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])

    with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
        version = conn.info.server_version // 10000
        app_password = _make_role(conn, names.single_user)
        master_password = _make_role(conn, names.master_user, createrole=True)
        conn.execute(
            sql.SQL("GRANT CREATE ON SCHEMA public TO {}, {}").format(
                sql.Identifier(names.single_user), sql.Identifier(names.master_user)
            )
        )
    with psycopg.connect(**cluster.conninfo(names.single_user, app_password)) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, item text NOT NULL)").format(
                sql.Identifier(TABLE)
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {} (item) VALUES ('coffee'), ('tea')").format(
                sql.Identifier(TABLE)
            )
        )
    # On RDS the master user creates the application users: do the same here.
    with psycopg.connect(**cluster.conninfo(names.master_user, master_password)) as conn:
        multi_password = _make_role(conn, names.multi_user)
        conn.commit()
    with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(TABLE), sql.Identifier(names.multi_user)
            )
        )
    single_arn = create_secret(
        names.single_name,
        {**secret_value(cluster, names.single_user, app_password), **(single_extra or {})},
    )
    master_arn = create_secret(
        names.master_name, secret_value(cluster, names.master_user, master_password)
    )
    multi_arn = create_secret(
        names.multi_name,
        {**secret_value(cluster, names.multi_user, multi_password), "masterarn": master_arn},
    )
    return Seeded(names, single_arn, master_arn, multi_arn, version)
