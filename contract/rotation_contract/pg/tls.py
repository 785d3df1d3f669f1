"""TLS settings for a PostgreSQL connection, per the outside contract.

``"ssl": true`` and a missing ``ssl`` key both mean ``verify-full``; ``false`` means a
plain connection; a libpq sslmode name is used as given. Unlike the AWS reference, there
is never a fallback to plaintext when TLS fails.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from rotation_contract.errors import SecretFormatError
from rotation_contract.pg.settings import PostgresSettings

__all__ = ["SSLMODES", "SSLMODE_ORDER", "at_least", "resolve_sslmode", "tls_parameters"]

# libpq's sslmodes, weakest first: the contract's order for the TLS floor.
SSLMODE_ORDER = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SSLMODES = frozenset(SSLMODE_ORDER)
_VERIFYING = frozenset({"verify-ca", "verify-full"})
_bundle_lock = threading.Lock()


def resolve_sslmode(ssl: object, what: str = "the secret") -> str:
    """Map the secret's ``ssl`` value to a libpq sslmode.

    Raises
    ------
    SecretFormatError
        An ``ssl`` value that is neither a boolean, "true"/"false", nor an sslmode name.
    """
    if ssl is None or ssl is True:
        return "verify-full"
    if ssl is False:
        return "disable"
    if isinstance(ssl, str):
        lowered = ssl.strip().lower()
        if lowered == "true":
            return "verify-full"
        if lowered == "false":
            return "disable"
        if lowered in SSLMODES:
            return lowered
    raise SecretFormatError(
        f"{what}'s 'ssl' must be true, false or a libpq sslmode name "
        f"({', '.join(sorted(SSLMODES))}), got {ssl!r}"
    )


def at_least(sslmode: str, floor: str) -> str:
    """``sslmode`` raised to ``floor`` when it is weaker (the contract's TLS floor).

    A version or master secret may ask for more than AWSCURRENT's mode, never for less:
    an AWSPREVIOUS written before TLS was turned on must not send ``ALTER ROLE`` in clear.
    """
    if SSLMODE_ORDER.index(sslmode) < SSLMODE_ORDER.index(floor):
        return floor
    return sslmode


def _combined_bundle(settings: PostgresSettings) -> Path:
    """The RDS bundle plus ``PGSSLROOTCERT`` in one file, since libpq takes one root file.

    The file decides whom ``verify-full`` trusts, so only this process may write it, and it
    must not outlive the process, however the process ends. On Linux (Lambda included) it
    is a sealed memory file (``memfd_create``) that libpq reads as ``/proc/self/fd/<n>``:
    nothing on disk, nothing another user can plant or replace, and the kernel frees it
    when the last process holding it ends, also one that ends with ``os._exit`` (a
    multiprocessing or billiard worker) or is killed. A forked child shares it read-only.

    Elsewhere (macOS), it is a file in a directory made fresh for the process (``mkdtemp``:
    a random name that starts with the process id, mode 0700) in the temp directory. A file
    anywhere else, above all at a predictable name in the shared temp directory, is never
    read: on a shared host another user could have planted a CA there. The process removes
    its directory at exit; one whose process ended without exit handlers is removed by the
    next process of the same user that makes one.

    One file per content (the RDS bundle with each distinct ``PGSSLROOTCERT``), written once
    per process and reused by later connections (a warm Lambda container writes it once).
    """
    if settings.extra_root_cert is None:
        return settings.rds_ca_bundle
    content = settings.rds_ca_bundle.read_bytes().rstrip(b"\n") + b"\n"
    content += settings.extra_root_cert.read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:16]
    with _bundle_lock:
        if _IN_MEMORY:
            found = _memory_bundle(digest, content)
            if found is not None:
                return found
        return _private_bundle(f"roots-{digest}.pem", content)


def _memory_files_supported() -> bool:
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "memfd_create")
        and os.path.isdir("/proc/self/fd")
    )


# Whether bundles live in memory files (see _combined_bundle); the tests turn it off to
# exercise the directories.
_IN_MEMORY = _memory_files_supported()
# This process's memory files by content digest: (descriptor, (device, inode)). Inherited by
# a forked child, whose copies of the descriptors point at the same sealed files.
_memory: dict[str, tuple[int, tuple[int, int]]] = {}
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


def _memory_bundle(digest: str, content: bytes) -> Path | None:
    """``content`` in a sealed memory file, as a path libpq can open; None when the kernel
    refuses one (a sandbox that forbids memfd_create), and the directory is used instead.
    Call with the lock held."""
    known = _memory.get(digest)
    if known is not None:
        fd, identity = known
        try:
            info = os.fstat(fd)
        except OSError:
            info = None
        # Still ours: something in the process may have closed the descriptor and reused
        # its number for another file, which must not become our trust store.
        if info is not None and (info.st_dev, info.st_ino) == identity:
            return Path(f"/proc/self/fd/{fd}")
    try:
        fd = os.memfd_create(f"rotation-roots-{digest}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return None
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        import fcntl  # Linux only, like this branch

        seals = 0
        for name in _SEALS:
            seals |= getattr(fcntl, name, 0)
        # Nothing in the process (nor anyone who opens /proc/<pid>/fd/<n>) can change it.
        fcntl.fcntl(fd, getattr(fcntl, "F_ADD_SEALS", 1033), seals)
    except OSError:
        os.close(fd)
        return None
    info = os.fstat(fd)
    _memory[digest] = (fd, (info.st_dev, info.st_ino))
    return Path(f"/proc/self/fd/{fd}")


@dataclass
class _BundleDirectory:
    """This process's private directory and the bundle files it wrote there."""

    pid: int
    path: Path
    identity: tuple[int, int, int]
    files: dict[str, tuple[int, int, int]] = field(default_factory=dict)


# The current process's directory; a forked child sees its parent's and makes its own.
_directory: _BundleDirectory | None = None
# Every directory made (process id, path, identity): removed at exit by the process that
# made it only, so a forked child (a pre-forking server's worker) never removes its
# parent's files, and only while it is still the directory made, never one that another
# user put at that path after a temp cleaner removed ours.
_made: list[tuple[int, Path, tuple[int, int, int]]] = []
_cleanup_registered = False


def _identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, owner) of ``path`` itself (no symlink followed), or None if absent."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino, info.st_uid


def _private_bundle(name: str, content: bytes) -> Path:
    """``content`` as ``name`` in this process's private directory. Call with the lock held.

    A file is reused only while it is the very file this process wrote (same inode, our
    owner) in the very directory it made: a temp cleaner that removed the directory, or
    anything that replaced it, gets a fresh directory instead of trust.
    """
    global _directory  # noqa: PLW0603  # per-process state, guarded by _bundle_lock
    current = _directory
    if current is not None and current.pid == os.getpid() and _intact(current):
        if name in current.files:
            return current.path / name
    else:
        current = _directory = _new_directory()
    try:
        current.files[name] = _write_new(current.path / name, content)
    except OSError:
        # Our own directory misbehaves (removed under us between the check and the write):
        # start over once in a fresh one rather than write anywhere less private.
        current = _directory = _new_directory()
        current.files[name] = _write_new(current.path / name, content)
    return current.path / name


def _intact(directory: _BundleDirectory) -> bool:
    if _identity(directory.path) != directory.identity:
        return False
    return all(
        _identity(directory.path / name) == identity for name, identity in directory.files.items()
    )


def _new_directory() -> _BundleDirectory:
    global _cleanup_registered  # noqa: PLW0603  # guarded by _bundle_lock
    _remove_stale(Path(tempfile.gettempdir()))
    # mkdtemp: a name nobody can predict, created exclusively, mode 0700. The process id
    # in front tells a later process whether the maker is still running.
    path = Path(tempfile.mkdtemp(prefix=f"rotation-roots-{os.getpid()}-"))
    identity = _identity(path)
    if identity is None:  # removed the instant it was made: nothing sane to fall back to
        raise FileNotFoundError(path)
    _made.append((os.getpid(), path, identity))
    if not _cleanup_registered:
        # Registered in Lambda too, on purpose, with no special case: a warm container's
        # process keeps the directory across invocations (atexit runs only when the
        # process ends), and when Lambda retires an execution environment it does not run
        # atexit at all, which is harmless: that /tmp belongs to the function alone and
        # goes with the environment. Everywhere else (the CLI, the demo, the tests, an
        # application using the client) the process leaves nothing behind.
        atexit.register(_remove_directories)
        _cleanup_registered = True
    return _BundleDirectory(pid=os.getpid(), path=path, identity=identity)


def _write_new(path: Path, content: bytes) -> tuple[int, int, int]:
    """Create ``path`` exclusively (never open an existing file), mode 0600, and fill it.

    The path is handed to libpq only after this returns, so no reader sees a partial file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    identity = _identity(path)
    if identity is None:
        raise FileNotFoundError(path)
    return identity


_STALE_NAME = re.compile(r"rotation-roots-(\d+)-")


def _remove_stale(temp_dir: Path) -> None:
    """Remove our user's bundle directories whose process is gone (it ended without running
    exit handlers: ``os._exit``, a signal). Another user's, a live process's and anything
    that is not a plain directory are left alone."""
    try:
        entries = list(os.scandir(temp_dir))
    except OSError:
        return
    for entry in entries:
        found = _STALE_NAME.match(entry.name)
        if found is None:
            continue
        pid = int(found.group(1))
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_dir(follow_symlinks=False) or info.st_uid != os.geteuid():
            continue
        if pid == os.getpid() or _running(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, and belongs to someone else
        return True
    return True


def _remove_directories() -> None:
    pid = os.getpid()
    for owner, path, identity in _made:
        if owner == pid and _identity(path) == identity:
            shutil.rmtree(path, ignore_errors=True)


def tls_parameters(sslmode: str, settings: PostgresSettings) -> dict[str, str]:
    """libpq keyword arguments for an sslmode from :func:`resolve_sslmode`, and SCRAM's
    channel binding to the TLS session (``settings.channel_binding``)."""
    params = {"sslmode": sslmode, "channel_binding": settings.channel_binding}
    if sslmode in _VERIFYING:
        # Only where verification is asked for: with sslmode=require, a root file makes
        # libpq verify the CA too, which would break servers the user chose not to verify.
        params["sslrootcert"] = str(_combined_bundle(settings))
    return params
