"""What `make` installs: the demo only the `local` extra, the tests the rest (also after the
demo ran); and the install says nothing that is not a problem."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]


def _make_dry_run(target: str, venv: Path) -> str:
    """The commands `make TARGET` would run with its virtualenv at ``venv``."""
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(ROOT), f"VENV={venv}", target],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout


def _installs(commands: str) -> list[str]:
    return [line for line in commands.splitlines() if " pip install " in line]


def test_demo_installs_only_the_local_extra_and_test_installs_the_rest(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    demo = _installs(_make_dry_run("demo", venv))
    assert any("-e '.[local]'" in line for line in demo), demo
    assert not any("[dev]" in line or "[test]" in line for line in demo), demo
    assert any("-e '.[dev]'" in line for line in _installs(_make_dry_run("test", venv)))
    # After the demo installed its part, `make test` still installs the test extras ...
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / ".installed-local").touch()
    assert _installs(_make_dry_run("demo", venv)) == []
    assert any("-e '.[dev]'" in line for line in _installs(_make_dry_run("test", venv)))
    # ... and after that, neither installs anything.
    (venv / ".installed-dev").touch()
    assert _installs(_make_dry_run("test", venv)) == []
    assert _installs(_make_dry_run("demo", venv)) == []


def test_the_install_shows_no_warning_that_is_not_a_problem(tmp_path: Path) -> None:
    """Runs pip as the Makefile does (its PIP variable) on this project, into a prefix of
    its own: setuptools' BuildBackendWarning about editable installs is not shown."""
    bindir = Path(sys.executable).parent
    printed = subprocess.run(  # $(info): the value as written, quotes and all
        ["make", "--no-print-directory", "-s", "-C", str(ROOT), f"BIN={bindir}",
         "--eval", "print-pip: ; @:$(info $(PIP))", "print-pip"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    pip = shlex.split(printed.stdout.strip())
    assert pip[-2:] == ["-m", "pip"]
    result = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--prefix", str(tmp_path / "prefix"),
         "-e", str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "BuildBackendWarning" not in output
    assert "RuntimeDirWarning" not in output
