"""A throwaway PgBouncer in front of a throwaway cluster, for the tests and the benchmark.

Debian's ``pgbouncer`` package (``apt-get install -y pgbouncer``), run as an ordinary
process (as ``postgres`` when run as root, like the cluster): ``auth_type =
scram-sha-256``, ``auth_user`` + ``auth_query`` over a ``SECURITY DEFINER`` function on
``pg_shadow`` (the verifiers come from the server at each login, so a rotated password
needs no reload), and an ``auth_file`` holding only the ``auth_user``'s line. Clients
connect in plaintext (``client_tls_sslmode = disable``): the pooler is on loopback here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from rotation_tools.testbed.pgcluster import PostgresCluster, _unprivileged_user, free_port

__all__ = ["AUTH_USER", "PgBouncer", "find_pgbouncer", "running_pgbouncer"]

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
