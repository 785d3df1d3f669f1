"""The demo and the tests leave nothing in the temp directory: no cluster directory, no
trust store, nothing else (pytest's own tmp_path directories aside: they live under the
--basetemp given here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fix_tmpdir import private_tmpdir_env, processes_naming

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_leaves_nothing_in_the_temp_directory() -> None:
    with private_tmpdir_env() as (tmpdir, env):
        result = subprocess.run(
            [sys.executable, "-m", "rotation_tools", "demo"],
            capture_output=True, text=True, timeout=300, env=env, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert list(tmpdir.iterdir()) == []
        assert processes_naming(str(tmpdir)) == {}


def test_a_test_session_leaves_nothing_in_the_temp_directory(tmp_path: Path) -> None:
    """A session with the shared cluster, moto, in-process rotations (whose trust store
    combines PGSSLROOTCERT with the RDS bundle) and the command as a subprocess."""
    with private_tmpdir_env() as (tmpdir, env):
        env.pop("AWS_ENDPOINT_URL", None)  # the inner session starts its own moto
        env.pop("PGSSLROOTCERT", None)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
             f"--basetemp={tmp_path / 'basetemp'}",
             "tests/functional/test_single_user.py::"
             "test_full_rotation_changes_the_password_and_moves_the_labels",
             "tests/functional/test_cli.py::test_rotate_works_without_rotation_configured"],
            capture_output=True, text=True, timeout=600, env=env, cwd=ROOT, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 passed" in result.stdout
        assert list(tmpdir.iterdir()) == []
        assert processes_naming(str(tmpdir)) == {}
    assert os.environ.get("TMPDIR") != str(tmpdir)
