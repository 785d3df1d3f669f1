"""The combined CA bundle lives where only this process can write, and nowhere after it.

``verify-full`` is only as good as the root file libpq reads. These tests play the other
user on a shared host: they plant a CA at the name the bundle used to have in the shared
temp directory, and check that neither a rotation nor a connection trusts it, and that a
process leaves no bundle behind.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import psycopg
import pytest

from handlers.pg_connect import PostgresConnector
from rotation.retry import Deadline
from rotation_contract.pg import tls
from rotation_contract.pg.secret import parse_postgres_secret
from rotation_contract.pg.settings import RDS_CA_BUNDLE, PostgresSettings
from rotation_contract.pg.tls import tls_parameters
from testbed.tls import TestCertificates as Certificates  # not a test class
from testbed.tls import make_certificates
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


def _old_predictable_path(shared_tmp: Path, extra_root: Path) -> Path:
    """Where the bundle used to be, computable by anyone who can read both inputs."""
    content = RDS_CA_BUNDLE.read_bytes().rstrip(b"\n") + b"\n" + extra_root.read_bytes()
    return shared_tmp / f"rotation-roots-{hashlib.sha256(content).hexdigest()[:16]}.pem"


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp directory standing in for the host's shared one, and a process that has not
    written its bundle yet (as a freshly started CLI or application)."""
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setattr(tls, "_directory", None, raising=False)
    return shared


@pytest.fixture
def attacker(tmp_path: Path) -> Certificates:
    """Another user's CA and a certificate it signed for 127.0.0.1."""
    return make_certificates(tmp_path / "attacker")


def _plant(shared_tmp: Path, attacker: Certificates) -> Path:
    """The attack: the other user's CA at the old bundle path, before we run."""
    extra_root = Path(os.environ["PGSSLROOTCERT"])  # the test bed's CA (see tests.fix_postgres)
    planted = _old_predictable_path(shared_tmp, extra_root)
    planted.write_bytes(attacker.ca_cert.read_bytes())
    # Also the old scratch name, which the old code wrote through and then renamed.
    planted.with_suffix(".tmp").write_bytes(attacker.ca_cert.read_bytes())
    return planted


def test_a_bundle_planted_at_the_old_path_is_ignored(
    bed: Bed, shared_tmp: Path, attacker: Certificates
) -> None:
    planted = _plant(shared_tmp, attacker)
    arn, user, first = bed.user_secret()  # no "ssl" key: verify-full
    run = bed.driver(bed.rotator()).rotate(arn)
    assert run.succeeded  # verify-full held against the test bed's real CA throughout
    assert bed.logs_in(bed.value(arn))
    assert not bed.logs_in({"username": user, "password": first})
    assert planted.read_bytes() == attacker.ca_cert.read_bytes()  # untouched, and unused
    used = Path(tls_parameters("verify-full", PostgresSettings.from_env(os.environ))["sslrootcert"])
    assert used != planted
    if tls._IN_MEMORY:  # a sealed memory file: nothing in the shared directory at all
        assert os.readlink(used).startswith("/memfd:rotation-roots-")
        assert sorted(shared_tmp.iterdir()) == sorted([planted, planted.with_suffix(".tmp")])
    else:
        assert used.parent.parent == shared_tmp
        assert stat.S_IMODE(used.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(used.stat().st_mode) == 0o600
    assert bed.pg.certificates is not None
    assert used.read_bytes().endswith(bed.pg.certificates.ca_cert.read_bytes())


class _Impostor:
    """A loopback server that answers SSLRequest with a certificate from ``certificates``
    and records whether anything got past the handshake (the startup packet would)."""

    def __init__(self, certificates: Certificates) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates.server_cert, certificates.server_key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handshake_done = False
        self.received_after_handshake = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            while True:
                header = conn.recv(8)
                if len(header) < 8:
                    return
                _, code = struct.unpack("!ii", header)
                if code == _GSSENC_REQUEST:
                    conn.sendall(b"N")
                    continue
                if code != _SSL_REQUEST:
                    return
                conn.sendall(b"S")
                break
            try:
                with self.context.wrap_socket(conn, server_side=True) as secured:
                    self.handshake_done = True
                    self.received_after_handshake = secured.recv(4096)
            except (ssl.SSLError, OSError):
                return

    def close(self) -> None:
        self.thread.join(timeout=15)
        self.listener.close()


def _impostor_login(sslrootcert: str | None, certificates: Certificates) -> _Impostor:
    """Log in with verify-full to an impostor; ``None``: with the connector's own roots."""
    impostor = _Impostor(certificates)
    secret = parse_postgres_secret(
        {
            "engine": "postgres",
            "host": "127.0.0.1",
            "port": impostor.port,
            "username": "app",
            "password": "would-be-stolen-123",
        }
    )
    params = PostgresConnector(PostgresSettings.from_env(os.environ)).parameters(
        secret, Deadline.in_seconds(30)
    )
    if sslrootcert is not None:
        params["sslrootcert"] = sslrootcert
    try:
        psycopg.connect(**params).close()
    except psycopg.OperationalError:
        pass
    finally:
        impostor.close()
    return impostor


def test_a_planted_ca_does_not_let_an_impostor_through(
    pg: Any, shared_tmp: Path, attacker: Certificates
) -> None:
    """The threat itself: with the other user's CA planted, a server holding a certificate
    from that CA is still refused before the password could be sent."""
    planted = _plant(shared_tmp, attacker)
    # The control: a client that did trust the planted file would get through the
    # handshake and send its startup packet (user name; the password would follow).
    trusting = _impostor_login(str(planted), attacker)
    assert trusting.handshake_done
    assert b"user\x00app\x00" in trusting.received_after_handshake
    ours = _impostor_login(None, attacker)
    assert not ours.handshake_done
    assert ours.received_after_handshake == b""


_CLIENT_RUN = textwrap.dedent(
    """
    import json, os, stat, sys
    from pathlib import Path

    from rotation_contract.pg import tls
    tls._IN_MEMORY = tls._IN_MEMORY and sys.argv[2] == "memory"
    from rotation_client import connect
    from rotation_contract.pg.settings import PostgresSettings
    from rotation_contract.pg.tls import tls_parameters

    with connect(sys.argv[1], autocommit=True) as conn:
        conn.execute("SELECT 1")
    settings = PostgresSettings.from_env(os.environ)
    bundle = Path(tls_parameters("verify-full", settings)["sslrootcert"])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a pre-forking server's worker: its own directory, removed at its exit
        child = tls_parameters("verify-full", settings)["sslrootcert"]
        os.write(write, child.encode())
        sys.exit(0)
    os.waitpid(pid, 0)
    child = Path(os.read(read, 4096).decode())
    print(json.dumps({
        "bundle": str(bundle),
        "memfd": os.readlink(bundle) if bundle.parent == Path("/proc/self/fd") else None,
        "directory_mode": stat.S_IMODE(bundle.parent.stat().st_mode),
        "file_mode": stat.S_IMODE(bundle.stat().st_mode),
        "child_bundle": str(child),
        "child_left_it": child.parent.exists(),
        "parent_still_has_it": bundle.is_file(),
    }))
    """
)


@pytest.mark.skipif(not tls._IN_MEMORY, reason="memory files are Linux's")
def test_a_process_keeps_its_bundle_in_memory_and_nothing_on_disk(bed: Bed, tmp_path: Path) -> None:
    arn, _, _ = bed.user_secret()
    scratch = tmp_path / "tmpdir"
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _CLIENT_RUN, arn, "memory"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(scratch)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["memfd"].startswith("/memfd:rotation-roots-")
    assert report["child_bundle"] == report["bundle"]  # a forked child shares it, sealed
    assert list(scratch.iterdir()) == []


def test_a_process_uses_its_own_directory_and_leaves_nothing_behind(
    bed: Bed, tmp_path: Path
) -> None:
    """Without memory files (macOS, or a kernel that refuses them)."""
    arn, _, _ = bed.user_secret()
    seen = []
    for run in range(2):
        scratch = tmp_path / f"tmpdir-{run}"
        scratch.mkdir()
        result = subprocess.run(
            [sys.executable, "-c", _CLIENT_RUN, arn, "directory"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TMPDIR": str(scratch)},
            check=False,
        )
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        bundle, child = Path(report["bundle"]), Path(report["child_bundle"])
        assert bundle.parent.parent == scratch
        assert report["memfd"] is None
        assert bundle.parent.name.startswith("rotation-roots-")
        assert report["directory_mode"] == 0o700
        assert report["file_mode"] == 0o600
        assert child.parent != bundle.parent  # the forked child made its own
        assert not report["child_left_it"]  # and removed it at its exit...
        assert report["parent_still_has_it"]  # ...without touching its parent's
        assert list(scratch.iterdir()) == []  # the process removed its own at exit
        seen.append(bundle.parent)
    assert seen[0] != seen[1]


@pytest.fixture
def traversable_tmp() -> Iterator[Path]:
    """A temp directory the demo's unprivileged PostgreSQL user can enter (pytest's own
    tmp_path sits under a 0700 directory, see TESTBED.md)."""
    path = Path(tempfile.mkdtemp(prefix="demo-tmpdir-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_demo_leaves_no_bundle_behind(traversable_tmp: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rotation_tools", "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "TMPDIR": str(traversable_tmp)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert list(traversable_tmp.iterdir()) == []


def _login_and_exit_at_once(value: dict[str, Any], mode: str, report: Connection) -> None:
    """A multiprocessing worker: a verify-full login (the combined bundle), then ``os._exit``
    as multiprocessing's fork workers and billiard's end: no exit handler runs."""
    if mode == "directory":
        tls._IN_MEMORY = False
    settings = PostgresSettings.from_env(os.environ)
    secret = parse_postgres_secret(value)
    connector = PostgresConnector(settings)
    with connector.connect(secret, Deadline.in_seconds(30), who="AWSCURRENT", floor="verify-full"):
        pass
    report.send(tls_parameters("verify-full", settings)["sslrootcert"])
    os._exit(0)


def _run_worker(start_method: str, value: dict[str, Any], mode: str) -> Path:
    # Any: typeshed gives a context chosen by a str no Process attribute.
    context: Any = multiprocessing.get_context(start_method)
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(target=_login_and_exit_at_once, args=(value, mode, send))
    worker.start()
    worker.join(timeout=60)
    assert worker.exitcode == 0
    assert receive.poll(5)
    return Path(receive.recv())


@pytest.fixture
def fresh_bundles(shared_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No bundle made yet in this process (a forked worker then makes its own), and the
    shared temp directory also for spawned workers (they read TMPDIR)."""
    monkeypatch.setattr(tls, "_memory", {})
    monkeypatch.setattr(tls, "_made", [])
    monkeypatch.setenv("TMPDIR", str(shared_tmp))
    yield shared_tmp
    tls._remove_directories()


@pytest.mark.skipif(not tls._IN_MEMORY, reason="memory files are Linux's")
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_worker_that_ends_with_os_exit_leaves_no_bundle(
    bed: Bed, fresh_bundles: Path, start_method: str
) -> None:
    user, password = bed.make_user()
    value = bed.pg.secret_value(user, password)
    used = _run_worker(start_method, value, "memory")
    assert used.parent == Path("/proc/self/fd")
    assert list(fresh_bundles.iterdir()) == []


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_directory_left_by_a_worker_that_ended_with_os_exit_is_removed_by_the_next(
    bed: Bed, fresh_bundles: Path, start_method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without memory files: the worker could not remove its directory (no exit handler
    runs under os._exit); the next process of the same user that makes one does."""
    user, password = bed.make_user()
    value = bed.pg.secret_value(user, password)
    left = _run_worker(start_method, value, "directory").parent
    assert left.parent == fresh_bundles
    assert left.name.startswith("rotation-roots-")
    monkeypatch.setattr(tls, "_IN_MEMORY", False)
    monkeypatch.setattr(tls, "_directory", None)
    ours = Path(tls_parameters("verify-full", PostgresSettings.from_env(os.environ))["sslrootcert"])
    assert not left.exists()
    assert list(fresh_bundles.iterdir()) == [ours.parent]
    tls._remove_directories()
    assert list(fresh_bundles.iterdir()) == []
