"""A throwaway PgBouncer in front of a throwaway cluster, for the tests and the benchmark.

Debian's ``pgbouncer`` package (``apt-get install -y pgbouncer``), run as an ordinary
process (as ``postgres`` when run as root, like the cluster): ``auth_type =
scram-sha-256``, ``auth_user`` + ``auth_query`` over a ``SECURITY DEFINER`` function on
``pg_shadow`` (the verifiers come from the server at each login, so a rotated password
needs no reload), and an ``auth_file`` holding only the ``auth_user``'s line. Clients
connect in plaintext (``client_tls_sslmode = disable``): the pooler is on loopback here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rotation import AWSCURRENT, LocalRotation, Rotator
from rotation.driver import RotationFailed
from rotation_client import RotatingCredentials, SecretsManagerSource
from testbed.pgcluster import PostgresCluster, _unprivileged_user, free_port

__all__ = [
    "AUTH_USER",
    "QUERIES_PER_STEP",
    "ROTATIONS",
    "PgBouncer",
    "Readers",
    "find_pgbouncer",
    "rotate_with_readers",
    "running_pgbouncer",
]

QUERIES_PER_STEP = 3
ROTATIONS = 3

AUTH_USER = "pgbouncer_auth"
_LOOKUP = """
CREATE OR REPLACE FUNCTION public.pgbouncer_lookup(p_user name, OUT uname name, OUT phash text)
RETURNS record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS
$$ SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = p_user $$
"""


def find_pgbouncer() -> str | None:
    """The pgbouncer binary, or None (``apt-get install -y pgbouncer`` installs it)."""
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


@dataclass
class PgBouncer:
    """One PgBouncer; ``start()`` / ``stop()`` or :func:`running_pgbouncer`."""

    cluster: PostgresCluster
    pool_mode: str = "transaction"
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgbouncer-")))
    auth_password: str = field(default_factory=lambda: os.urandom(12).hex(), repr=False)
    settings: dict[str, str] = field(default_factory=dict)
    # False: to the server over TCP, where it asks for SCRAM, which PgBouncer answers with
    # the keys of the client that made it open the connection (pass-through). True: over
    # the server's Unix socket, where the throwaway cluster trusts local connections: the
    # pooler alone authenticates clients (against auth_query's verifiers).
    server_via_socket: bool = False

    @property
    def log_path(self) -> Path:
        return self.root / "pgbouncer.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "pgbouncer.pid"

    def _prepare_server(self) -> None:
        with psycopg.connect(**self.cluster.conninfo(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (AUTH_USER,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(AUTH_USER)))
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(AUTH_USER), sql.Literal(self.auth_password)
                )
            )
            conn.execute(_LOOKUP)
            conn.execute("REVOKE ALL ON FUNCTION public.pgbouncer_lookup(name) FROM PUBLIC")
            conn.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION public.pgbouncer_lookup(name) TO {}").format(
                    sql.Identifier(AUTH_USER)
                )
            )

    def _write_config(self) -> Path:
        (self.root / "userlist.txt").write_text(f'"{AUTH_USER}" "{self.auth_password}"\n')
        settings = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": str(self.root),
            "logfile": str(self.log_path),
            "pidfile": str(self.pid_path),
            "auth_type": "scram-sha-256",
            "auth_file": str(self.root / "userlist.txt"),
            "auth_user": AUTH_USER,
            "auth_query": "SELECT uname, phash FROM public.pgbouncer_lookup($1)",
            "pool_mode": self.pool_mode,
            "client_tls_sslmode": "disable",
            "server_tls_sslmode": "prefer",
            "max_client_conn": "200",
            "default_pool_size": "5",
            **self.settings,
        }
        ini = self.root / "pgbouncer.ini"
        lines = [
            "[databases]",
            f"* = host={self.cluster.root if self.server_via_socket else self.cluster.host} "
            f"port={self.cluster.port}",
            "[pgbouncer]",
            *(f"{key} = {value}" for key, value in settings.items()),
        ]
        ini.write_text("\n".join(lines) + "\n")
        return ini

    def start(self) -> PgBouncer:
        binary = find_pgbouncer()
        if binary is None:
            raise RuntimeError("pgbouncer is not installed: apt-get install -y pgbouncer")
        self._prepare_server()
        ini = self._write_config()
        owner = _unprivileged_user()
        kwargs: dict[str, Any] = {}
        if owner is not None:
            for path in [self.root, *self.root.iterdir()]:
                os.chown(path, owner.pw_uid, owner.pw_gid)
            kwargs = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        subprocess.run(  # the binary found above, our own config
            [binary, "-d", str(ini)], check=True, capture_output=True, text=True, **kwargs
        )
        # Up when its port takes a TCP connection (pgbouncer -d returns before that).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection((self.host, self.port), timeout=1):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not start: {self._log()[-500:]}")

    def _log(self) -> str:
        with suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log(self) -> str:
        return self._log()

    def stop(self) -> None:
        with suppress(OSError, ValueError):
            pid = int(self.pid_path.read_text().strip())
            os.kill(pid, signal.SIGINT)
            for _ in range(200):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def secret_value(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        """A secret in the contract's shape that reaches the database through this pooler."""
        return {
            "engine": "postgres",
            "host": self.host,
            "port": self.port,
            "username": username,
            "password": password,
            "dbname": "postgres",
            "ssl": False,
            **extra,
        }


@contextmanager
def running_pgbouncer(cluster: PostgresCluster, **kwargs: Any) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(cluster, **kwargs).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()


class Readers:
    """Three applications reading through the pooler; each failed query is counted."""

    def __init__(
        self, sm: Any, arn: str, bouncer: PgBouncer, *, hold: bool = True, source: Any = None
    ) -> None:
        self.sm, self.arn, self.bouncer = sm, arn, bouncer
        self.failed: Counter[str] = Counter()
        self.errors: dict[str, str] = {}
        self.ran: Counter[str] = Counter()
        self.held = self._connect(self._current()) if hold else None
        self.client = RotatingCredentials(arn, source=SecretsManagerSource(source or sm))

    def _current(self) -> dict[str, Any]:
        value = self.sm.get_secret_value(SecretId=self.arn, VersionStage=AWSCURRENT)
        return dict(json.loads(value["SecretString"]))

    def _connect(self, value: dict[str, Any]) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=value["host"], port=value["port"], dbname=value["dbname"],
            user=value["username"], password=value["password"], connect_timeout=5,
            autocommit=True,
            # psycopg prepares a statement run 5 times on a connection; in transaction
            # pooling the next transaction may reach a server connection without it
            # ('prepared statement "_pg3_0" does not exist', PgBouncer before 1.21).
            prepare_threshold=None,
        )  # fmt: skip

    def _query(self, name: str, conn: psycopg.Connection[Any], *, close: bool) -> None:
        self.ran[name] += 1
        try:
            conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            self.failed[name] += 1
            self.errors.setdefault(name, str(exc))
        finally:
            if close:
                conn.close()

    def read(self, _: object = None) -> None:
        for _ in range(QUERIES_PER_STEP):
            try:
                fresh = self._connect(self._current())
            except psycopg.OperationalError:
                self.ran["plain, a connection per query"] += 1
                self.failed["plain, a connection per query"] += 1
            else:
                self._query("plain, a connection per query", fresh, close=True)
            if self.held is not None:
                self._query("plain, one held connection", self.held, close=False)
            try:
                through_client = self.client.connect()
            except psycopg.OperationalError:
                self.ran["client library"] += 1
                self.failed["client library"] += 1
            else:
                self._query("client library", through_client, close=True)

    def close(self) -> None:
        if self.held is not None:
            self.held.close()


def rotate_with_readers(sm: Any, rotator: Rotator, arn: str, readers: Readers) -> list[str]:
    """Three rotations, the readers reading before each and after each step (in this order,
    so that the counts are exact); the failures of rotations that failed (none expected)."""
    failures: list[str] = []
    driver = LocalRotation(sm, rotator.handle, on_step=readers.read)
    for _ in range(ROTATIONS):
        readers.read()
        try:
            run = driver.rotate(arn)
        except RotationFailed as exc:
            failures.append(str(exc))
            continue
        if not run.succeeded:
            failures.append(str(run))
    return failures
