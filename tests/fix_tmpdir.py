"""A temp directory of its own for a command under test, and the processes naming it: to
prove that a command leaves no file and no process behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def private_tmpdir_env() -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh directory and an environment whose TMPDIR is it.

    It is made under the system's temp directory, not pytest's ``tmp_path``: as root the
    PostgreSQL binaries run as another user, who must be able to traverse its parents
    (pytest's base directory is mode 0700).
    """
    tmpdir = Path(tempfile.mkdtemp(prefix="rotation-test-tmpdir-"))
    tmpdir.chmod(0o755)
    try:
        yield tmpdir, {**os.environ, "TMPDIR": str(tmpdir)}
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def processes_naming(text: str) -> dict[int, str]:
    """``{pid: command line}`` of every process (zombies aside) whose command line holds
    ``text``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if text in command:
            found[int(entry.name)] = command
    return found
