"""What `make` installs: the demo only the `local` extra, the tests the rest (also after the
demo ran); a stamp that no longer holds is remade (a broken venv heals); and the install says
nothing that is not a problem, shown in a throwaway venv: no test changes the environment it
runs in."""

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
    """The project's install commands (not pip's own upgrade)."""
    return [line for line in commands.splitlines() if " pip install " in line and " -e " in line]


def _editables(line: str) -> list[str]:
    """What an install command installs editable, in order (``-e PATH``)."""
    words = shlex.split(line)
    return [words[i + 1] for i, word in enumerate(words) if word == "-e"]


def _groups(line: str) -> list[str]:
    words = shlex.split(line)
    return [words[i + 1] for i, word in enumerate(words) if word == "--group"]


# What the demo runs on: the function's distributions, the command with its `local` extra
# (moto's server) and the client (the sandbox's example), each editable from its folder.
DEMO = ["./contract", ".", "./tools[local]", "./client"]


def _installs_demo_only(line: str) -> bool:
    return _editables(line) == DEMO and _groups(line) == []


def _installs_dev(line: str) -> bool:
    editables = _editables(line)
    return (
        editables[:3] == DEMO[:3]
        and "./client[pool,sqlalchemy,django]" in editables
        and "dev" in _groups(line)
    )


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _installed_venv(venv: Path) -> None:
    """A venv make sees as installed: its python is this test's interpreter (which has the
    project, editable from this checkout, and every extra), its console script exists."""
    (venv / "bin").mkdir(parents=True)
    _script(venv / "bin" / "python", f'exec {shlex.quote(sys.executable)} "$@"')
    _script(venv / "bin" / "rotation", "exit 0")


def test_demo_installs_only_the_local_extra_and_test_installs_the_rest(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    demo = _installs(_make_dry_run("demo", venv))
    assert len(demo) == 1, demo
    assert _installs_demo_only(demo[0]), demo
    assert any(_installs_dev(line) for line in _installs(_make_dry_run("test", venv)))
    # After the demo installed its part, `make test` still installs the dev group ...
    _installed_venv(venv)
    (venv / ".installed-local").touch()
    assert _installs(_make_dry_run("demo", venv)) == []
    assert any(_installs_dev(line) for line in _installs(_make_dry_run("test", venv)))
    # ... and after that, neither installs anything.
    (venv / ".installed-dev").touch()
    assert _installs(_make_dry_run("test", venv)) == []
    assert _installs(_make_dry_run("demo", venv)) == []


@pytest.mark.parametrize("broken", ["no-console-script", "no-package"])
def test_a_stamp_that_no_longer_holds_is_remade(tmp_path: Path, broken: str) -> None:
    """Issue 26: after pip uninstalled the editable install behind make's back, the stamps
    still said "installed" and `make demo` failed on a missing .venv/bin/rotation. Now the
    next `make` installs again."""
    venv = tmp_path / "venv"
    _installed_venv(venv)
    for stamp in (".installed-local", ".installed-dev"):
        (venv / stamp).touch()
    assert _installs(_make_dry_run("demo", venv)) == []
    if broken == "no-console-script":
        (venv / "bin" / "rotation").unlink()
    else:  # the interpreter no longer finds the project
        _script(venv / "bin" / "python", f'exec {shlex.quote(sys.executable)} -I -S "$@"')
    assert any(_installs_demo_only(line) for line in _installs(_make_dry_run("demo", venv)))
    assert any(_installs_dev(line) for line in _installs(_make_dry_run("test", venv)))


def test_every_install_is_of_the_distributions_folders(tmp_path: Path) -> None:
    """Each editable install names a folder of this checkout with a pyproject.toml (one
    distribution each), and `make cdk` adds the construct's with its test group."""
    venv = tmp_path / "venv"
    for target in ("demo", "test", "cdk"):
        lines = _installs(_make_dry_run(target, venv))
        assert lines, target
        for line in lines:
            for editable in _editables(line):
                folder = ROOT / editable.partition("[")[0]
                assert (folder / "pyproject.toml").is_file(), (target, editable)
    cdk = _installs(_make_dry_run("cdk", venv))
    assert any("./cdk" in _editables(line) and "cdk-test" in _groups(line) for line in cdk)


def test_make_clean_leaves_nothing_it_or_the_tools_made(tmp_path: Path) -> None:
    """In a scratch directory, with the Makefile's own paths."""
    directories = [
        ".venv",
        ".sam-venv",
        ".checkov-venv",
        "build",
        ".aws-sam",
        ".hypothesis",
        "pg_secrets_rotation.egg-info",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
    ]
    files = [".coverage", ".coverage.host.1"]  # fmt: skip
    for name in directories:
        (tmp_path / name / "inside").mkdir(parents=True)
    for name in files:
        (tmp_path / name).write_text("")
    (tmp_path / "keep.txt").write_text("not made by make")
    subprocess.run(
        ["make", "--no-print-directory", "-s", "-f", str(ROOT / "Makefile"), "clean"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def _throwaway_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", str(venv)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return venv


def test_the_install_shows_no_warning_that_is_not_a_problem(tmp_path: Path) -> None:
    """Runs pip as the Makefile does (its PIP variable) with the demo's editable installs,
    in a throwaway venv (pip uninstalls an editable install of the project before it
    installs one: in the venv running the tests, that would break it): no build backend
    warning about editable installs is shown (setuptools' BuildBackendWarning was)."""
    bindir = _throwaway_venv(tmp_path) / "bin"
    printed = subprocess.run(  # $(info): the values as written, quotes and all
        ["make", "--no-print-directory", "-s", "-C", str(ROOT), f"BIN={bindir}",
         "--eval", "print-pip: ; @:$(info $(PIP))$(info $(LOCAL_INSTALL))", "print-pip"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    pip_line, install_line = printed.stdout.strip().splitlines()
    pip = shlex.split(pip_line)
    assert pip[0] == str(bindir / "python")
    assert pip[-2:] == ["-m", "pip"]
    result = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", *shlex.split(install_line)],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "BuildBackendWarning" not in output
    assert "RuntimeDirWarning" not in output
    assert (bindir / "rotation").is_file()  # what it installed, it installed there


def test_the_install_test_leaves_the_running_venv_working(tmp_path: Path) -> None:
    """Issue 26: `make test` ran the install test, which uninstalled the project from the
    venv running it; `make demo` then failed on a missing .venv/bin/rotation. Runs that test
    (in a pytest of its own, with this interpreter), then this venv's `rotation --version`."""
    rotation = Path(sys.executable).parent / "rotation"
    before = subprocess.run(
        [str(rotation), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    install_test = f"{Path(__file__)}::test_the_install_shows_no_warning_that_is_not_a_problem"
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "inner"), install_test],
        capture_output=True, text=True, timeout=900, check=False, cwd=ROOT,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "1 passed" in ran.stdout
    after = subprocess.run(
        [str(rotation), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert after.returncode == 0, after.stderr
    assert after.stdout == before
