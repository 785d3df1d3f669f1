"""The combined CA bundle's file: private, written once, never taken from anyone else.

On Linux it is a sealed memory file; elsewhere (and where the kernel refuses one) a file in
a private directory. Both are tested here, the directories with memory files turned off.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

import pytest

from rotation_contract.pg import tls
from rotation_contract.pg.settings import PostgresSettings
from rotation_contract.pg.tls import tls_parameters

_CORP = b"-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n"
_OTHER = b"-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n"


@pytest.fixture
def fresh_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The module's state as in a process that has written no bundle, on a platform without
    memory files; the temp dir's path."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setattr(tls, "_directory", None)
    monkeypatch.setattr(tls, "_made", [])
    monkeypatch.setattr(tls, "_IN_MEMORY", False)
    return shared


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memfd is Linux's")


@pytest.fixture
def in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A process that has written no bundle, with memory files; the temp dir's path."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setattr(tls, "_memory", {})
    monkeypatch.setattr(tls, "_IN_MEMORY", True)
    return shared


@linux_only
def test_on_linux_the_bundle_is_a_sealed_memory_file(in_memory: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    bundle = _bundle(settings)
    assert bundle.parent == Path("/proc/self/fd")
    assert bundle.read_bytes().endswith(_CORP)
    assert os.readlink(bundle).startswith("/memfd:rotation-roots-")
    fd = int(bundle.name)
    seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    for seal in (fcntl.F_SEAL_WRITE, fcntl.F_SEAL_GROW, fcntl.F_SEAL_SHRINK, fcntl.F_SEAL_SEAL):
        assert seals & seal
    with pytest.raises(PermissionError):
        os.write(fd, b"another CA")
    with pytest.raises(PermissionError), bundle.open("r+b") as opened:
        opened.write(b"another CA")
    assert _bundle(settings) == bundle  # written once
    assert list(in_memory.iterdir()) == []  # nothing on disk


@linux_only
def test_a_descriptor_number_reused_for_another_file_is_not_trusted(
    in_memory: Path, tmp_path: Path
) -> None:
    """Something in the process closed our descriptor and opened another file, which got
    the same number: that file must not become the trust store."""
    settings = _settings(tmp_path)
    first = _bundle(settings)
    fd = int(first.name)
    os.close(fd)
    other = tmp_path / "other.pem"
    other.write_bytes(_OTHER)
    reused = os.open(other, os.O_RDONLY)
    try:
        assert reused == fd
        second = _bundle(settings)
        assert second.read_bytes().endswith(_CORP)
        assert second != first
    finally:
        os.close(reused)


@linux_only
def test_where_the_kernel_refuses_memory_files_the_directory_is_used(
    in_memory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_: object) -> int:
        raise PermissionError("memfd_create is not allowed here")

    monkeypatch.setattr(tls, "_directory", None)
    monkeypatch.setattr(tls, "_made", [])
    monkeypatch.setattr(os, "memfd_create", refused)
    bundle = _bundle(_settings(tmp_path))
    assert bundle.parent.parent == in_memory
    assert bundle.read_bytes().endswith(_CORP)
    tls._remove_directories()


def test_a_directory_left_by_a_process_that_is_gone_is_removed(
    fresh_process: Path, tmp_path: Path
) -> None:
    """A worker that ended with os._exit ran no exit handler: the next process that makes
    a directory removes the worker's. A live process's, another name and a file stay."""
    gone = fresh_process / "rotation-roots-999999999-abcd"
    gone.mkdir(mode=0o700)
    (gone / "roots-x.pem").write_bytes(_OTHER)
    alive = fresh_process / f"rotation-roots-{os.getppid()}-abcd"
    alive.mkdir(mode=0o700)
    unrelated = fresh_process / "rotation-roots-other"
    unrelated.mkdir()
    a_file = fresh_process / "rotation-roots-999999998-file"
    a_file.write_bytes(b"")
    ours = _bundle(_settings(tmp_path)).parent
    assert not gone.exists()
    assert alive.exists()
    assert unrelated.exists()
    assert a_file.exists()
    assert ours.name.startswith(f"rotation-roots-{os.getpid()}-")


def _settings(tmp_path: Path, content: bytes = _CORP, name: str = "corp.pem") -> PostgresSettings:
    extra = tmp_path / name
    extra.write_bytes(content)
    return PostgresSettings.from_env({"PGSSLROOTCERT": str(extra)})


def _bundle(settings: PostgresSettings) -> Path:
    return Path(tls_parameters("verify-full", settings)["sslrootcert"])


def test_the_bundle_is_private_and_written_once(fresh_process: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = _bundle(settings)
    written = first.stat()
    assert first.parent.parent == fresh_process
    assert stat.S_IMODE(first.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.st_mode) == 0o600
    again = _bundle(settings)
    assert again == first
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_each_extra_root_gets_its_own_file_in_the_same_directory(
    fresh_process: Path, tmp_path: Path
) -> None:
    corp = _bundle(_settings(tmp_path))
    other = _bundle(_settings(tmp_path, _OTHER, "other.pem"))
    assert corp != other
    assert corp.parent == other.parent
    assert corp.read_bytes().endswith(_CORP)
    assert other.read_bytes().endswith(_OTHER)


def test_a_removed_bundle_is_rewritten_in_a_fresh_directory(
    fresh_process: Path, tmp_path: Path
) -> None:
    """A temp cleaner took our directory: write the bundle again, somewhere new."""
    settings = _settings(tmp_path)
    first = _bundle(settings)
    shutil.rmtree(first.parent)
    second = _bundle(settings)
    assert second.parent != first.parent
    assert stat.S_IMODE(second.parent.stat().st_mode) == 0o700
    assert second.read_bytes().endswith(_CORP)


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root")
@pytest.mark.parametrize("what", ["directory", "file"])
def test_a_bundle_path_taken_over_by_another_user_is_not_trusted(
    fresh_process: Path, tmp_path: Path, what: str
) -> None:
    """After a temp cleaner, another user recreates our path with their CA in it."""
    settings = _settings(tmp_path)
    first = _bundle(settings)
    nobody = 65534
    if what == "directory":
        shutil.rmtree(first.parent)
        first.parent.mkdir()
        os.chown(first.parent, nobody, nobody)
    else:
        first.unlink()
    first.write_bytes(_OTHER)
    os.chown(first, nobody, nobody)
    second = _bundle(settings)
    assert second.parent != first.parent
    assert second.read_bytes().endswith(_CORP)


def test_at_exit_a_process_removes_only_its_own_directories(
    fresh_process: Path, tmp_path: Path
) -> None:
    ours = _bundle(_settings(tmp_path)).parent
    parents = fresh_process / "parent-process-dir"
    parents.mkdir()
    identity = tls._identity(parents)
    assert identity is not None
    tls._made.append((os.getpid() + 1, parents, identity))  # made before a fork, by the parent
    tls._remove_directories()
    assert not ours.exists()
    assert parents.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file owned by another user needs root")
def test_at_exit_a_directory_someone_else_put_at_our_path_is_left_alone(
    fresh_process: Path, tmp_path: Path
) -> None:
    ours = _bundle(_settings(tmp_path)).parent
    shutil.rmtree(ours)
    ours.mkdir()
    os.chown(ours, 65534, 65534)
    tls._remove_directories()
    assert ours.exists()


def test_without_an_extra_root_the_shipped_bundle_is_used_as_is(fresh_process: Path) -> None:
    assert _bundle(PostgresSettings()) == PostgresSettings().rds_ca_bundle
    assert list(fresh_process.iterdir()) == []
