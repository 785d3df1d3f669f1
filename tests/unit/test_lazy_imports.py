"""The lazy-import discipline, by its outcome: what each way in loads before it does any
work, each in a fresh interpreter (this one has long loaded everything).

ruff's TID253 enforces it line by line: pyproject.toml's
``[tool.ruff.lint.flake8-tidy-imports] banned-module-level-imports`` lists what only a
function may import, and ``per-file-ignores`` the modules that are themselves reached
lazily. Here: a Lambda cold start, ``rotation --help`` and ``import rotation_client`` load
none of those modules, nor what each promises besides; and the configuration names modules
and files that exist (a misspelt ban would ban nothing).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from handlers import ENTRYPOINTS

ROOT = Path(__file__).resolve().parents[2]
_RUFF = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"]
BANNED: list[str] = _RUFF["flake8-tidy-imports"]["banned-module-level-imports"]
_OURS = ("rotation", "handlers", "rotation_contract", "rotation_client", "rotation_tools")

_ENTRYPOINTS = sorted({path.rpartition(".")[0] for path in ENTRYPOINTS.values()})
# Each way in: the code it runs, and what it must not load besides BANNED.
WAYS_IN = {
    # The Lambda function's init phase: the entrypoint modules of every strategy.
    "cold-start": (f"import {', '.join(_ENTRYPOINTS)}", ()),
    # The command before it does anything: the parser, no framework (Powertools, tenacity),
    # no AWS SDK, no YAML.
    "rotation-help": (
        """
        import contextlib, io
        from rotation_tools.cli import main
        with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
            main(["--help"])
        """,
        ("rotation", "handlers", "aws_lambda_powertools", "tenacity", "botocore", "yaml"),
    ),
    # An application's import: nothing of the function's side, no AWS SDK until the first
    # read, no asyncio or http.client (the extension's) until used.
    "import-rotation-client": (
        "import rotation_client",
        (
            "rotation",
            "handlers",
            "aws_lambda_powertools",
            "tenacity",
            "botocore",
            "asyncio",
            "http.client",
        ),
    ),
}


def _loaded(code: str) -> list[str]:
    """``sys.modules`` after ``code``, in an interpreter of its own that measures nothing
    (coverage's start-up hook would load modules of its own)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_PROCESS")}
    report = "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + report],
        capture_output=True, text=True, timeout=120, check=False, env=environment, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    modules: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return modules


def _within(module: str, names: tuple[str, ...] | list[str]) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in names)


@pytest.mark.parametrize("way_in", sorted(WAYS_IN))
def test_a_way_in_loads_nothing_it_defers(way_in: str) -> None:
    code, also = WAYS_IN[way_in]
    loaded = _loaded(code)
    assert [m for m in loaded if _within(m, BANNED)] == []
    assert [m for m in loaded if _within(m, also)] == []


def test_the_ways_in_load_what_they_are() -> None:
    """The checks above look at a real import: each loads the package it is about."""
    assert set(_ENTRYPOINTS) <= set(_loaded(WAYS_IN["cold-start"][0]))
    assert "rotation_tools.cli_parser" in _loaded(WAYS_IN["rotation-help"][0])
    assert "rotation_client.credentials" in _loaded(WAYS_IN["import-rotation-client"][0])


def test_every_banned_module_of_ours_exists() -> None:
    ours = [name for name in BANNED if name.split(".")[0] in (*_OURS, "testbed")]
    assert ours
    assert [name for name in ours if importlib.util.find_spec(name) is None] == []


def _expand(pattern: str) -> list[str]:
    """One ``{a,b}`` alternation, as ruff's globs allow."""
    head, brace, rest = pattern.partition("{")
    if not brace:
        return [pattern]
    choices, _, tail = rest.partition("}")
    return [f"{head}{choice}{tail}" for choice in choices.split(",")]


def test_every_file_excused_from_tid253_exists() -> None:
    excused = [p for p, rules in _RUFF["per-file-ignores"].items() if "TID253" in rules]
    assert excused
    for pattern in excused:
        for path in _expand(pattern):
            assert list(ROOT.glob(path)), path
