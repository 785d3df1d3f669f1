"""The package boundaries, read from the source (``ast``; nothing is imported).

Each of the repository's top-level packages is a row of :data:`PACKAGES`: where it lives
and which of our packages it may import. The direction is one way, down the table:

* ``rotation_contract`` (what both sides share) imports none of ours;
* ``rotation``, the framework, imports only the engine-agnostic part of the contract: no
  ``rotation_contract.pg``, no ``handlers``, nothing application-side;
* ``handlers`` (the PostgreSQL strategies) imports the framework and the contract;
* ``rotation_client`` imports only the contract: an application that installs the client
  loads neither the dispatcher nor Powertools or tenacity;
* the command, the construct and the test bed sit on top.

On the Lambda side only :mod:`rotation.config` and :mod:`handlers.pg_config` read the
environment (their docstrings' promise). No two of our modules import each other, directly
or around a loop. Every import counts, also one inside a function or under
``TYPE_CHECKING``: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Package:
    folder: Path
    # Which of our top-level packages it may import (itself always).
    may_import: frozenset[str]
    # Besides those, what it may not import: a subpackage of an allowed one, or third party.
    forbidden: tuple[str, ...] = ()


_LAMBDA_ONLY = ("aws_lambda_powertools", "tenacity")
PACKAGES: dict[str, Package] = {
    "rotation_contract": Package(
        ROOT / "contract" / "rotation_contract", frozenset(), _LAMBDA_ONLY
    ),
    "rotation": Package(
        ROOT / "rotation", frozenset({"rotation_contract"}), ("rotation_contract.pg",)
    ),
    "handlers": Package(ROOT / "handlers", frozenset({"rotation", "rotation_contract"})),
    "rotation_client": Package(
        ROOT / "client" / "rotation_client", frozenset({"rotation_contract"}), _LAMBDA_ONLY
    ),
    "testbed": Package(
        ROOT / "testbed", frozenset({"rotation", "rotation_contract", "rotation_client"})
    ),
    "rotation_tools": Package(
        ROOT / "tools" / "rotation_tools",
        frozenset({"rotation", "handlers", "rotation_contract", "testbed"}),
    ),
    "rotation_cdk": Package(
        ROOT / "cdk" / "rotation_cdk",
        frozenset({"rotation", "handlers", "rotation_contract", "rotation_tools"}),
    ),
}
OURS = tuple(PACKAGES)
# Outside the distributions: they may import any of ours, and nothing imports them.
NOT_PACKAGED = ("tests", "bench", "examples")

# Allowed to read the environment on the Lambda side: its configuration modules.
LAMBDA_SIDE = ("rotation", "handlers")
ENVIRONMENT_READERS = (ROOT / "rotation" / "config.py", ROOT / "handlers" / "pg_config.py")
_ENVIRONMENT_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


def sources(package: str) -> list[Path]:
    return sorted(PACKAGES[package].folder.rglob("*.py"))


def _module_name(path: Path) -> str:
    home = next((p.folder.parent for p in PACKAGES.values() if p.folder in path.parents), ROOT)
    parts = list(path.relative_to(home).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name a ``from`` import refers to (``from ..store import x`` in
    ``rotation_contract.pg.settings`` is ``rotation.store``)."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    # A module's own package is one level up; a package's __init__ is its own package.
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imported_modules(source: str, importer: str, *, is_package: bool = False) -> Iterator[str]:
    """Every module ``source`` imports: ``import a.b`` gives ``a.b``; ``from a import b``
    gives ``a`` and ``a.b`` (``b`` may be a submodule)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node.module, node.level, importer, is_package)
            yield module
            for alias in node.names:
                yield f"{module}.{alias.name}"


def _within(name: str, packages: Iterable[str]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def forbidden_imports(
    source: str, importer: str, forbidden: Iterable[str], *, is_package: bool = False
) -> list[str]:
    forbidden = tuple(forbidden)
    return sorted(
        {
            name
            for name in imported_modules(source, importer, is_package=is_package)
            if _within(name, forbidden)
        }
    )


def environment_reads(source: str) -> list[str]:
    """``os.environ``, ``os.getenv`` and friends, however ``os`` or the name was imported."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in _ENVIRONMENT_NAMES
        ):
            found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(
                f"{node.lineno}: from os import {alias.name}"
                for alias in node.names
                if alias.name in _ENVIRONMENT_NAMES
            )
    return found


def _violations(paths: Iterable[Path], forbidden: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in paths:
        names = forbidden_imports(
            path.read_text(),
            _module_name(path),
            forbidden,
            is_package=path.name == "__init__.py",
        )
        if names:
            found[str(path.relative_to(ROOT))] = names
    return found


def import_graph(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Which of these modules each of them imports (``from a import b`` counts as ``a.b``
    when that is one of them, else as ``a``)."""
    modules = {_module_name(path): path for path in paths}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = set()
        source = path.read_text()
        is_init = path.name == "__init__.py"
        for imported in imported_modules(source, name, is_package=is_init):
            # ``rotation.errors.TlsError`` is the module ``rotation.errors``.
            module = imported
            while module and module not in modules:
                module = module.rpartition(".")[0]
            # A package's __init__ naming its own modules (re-exports, PEP 562 tables) is
            # the package's face, not a dependency: its modules may import the package.
            if module and module != name and not (is_init and module.startswith(f"{name}.")):
                graph[name].add(module)
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The modules ``start`` imports, directly or not (itself only through a loop)."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other through imports, each sorted."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups = {
        frozenset(other for other in reach[node] if node in reach[other])
        for node in graph
        if node in reach[node]
    }
    return sorted(sorted(group) for group in groups)


# -- the guards ---------------------------------------------------------------------------


def test_every_top_level_package_has_a_row() -> None:
    """A new package must say where it stands: a folder with an ``__init__.py`` at the top
    of the repository or of a distribution's folder is a row of PACKAGES."""
    found = {
        init.parent.name
        for pattern in ("*/__init__.py", "*/*/__init__.py")
        for init in ROOT.glob(pattern)
        if (init.parent.parent == ROOT or (init.parent.parent / "pyproject.toml").is_file())
        and init.parent.name not in NOT_PACKAGED
        and not init.parent.name.startswith(".")
    }
    assert found == set(PACKAGES)


def forbidden_for(package: str) -> list[str]:
    row = PACKAGES[package]
    return [
        *(other for other in OURS if other != package and other not in row.may_import),
        *NOT_PACKAGED,
        *row.forbidden,
    ]


@pytest.mark.parametrize("package", OURS)
def test_a_package_imports_only_what_its_row_allows(package: str) -> None:
    assert _violations(sources(package), forbidden_for(package)) == {}


def test_only_the_configuration_modules_read_the_environment() -> None:
    """``rotation.config`` and ``handlers.pg_config`` on the Lambda side; the contract reads
    none (its settings parse a mapping they are given); the client resolves its own."""
    candidates = [
        *(path for package in LAMBDA_SIDE for path in sources(package)),
        *sources("rotation_contract"),
    ]
    found = {
        str(path.relative_to(ROOT)): reads
        for path in candidates
        if path not in ENVIRONMENT_READERS and (reads := environment_reads(path.read_text()))
    }
    assert found == {}


def test_no_import_cycles() -> None:
    """Deferred imports included: a cycle hidden inside a function is still a cycle."""
    graph = import_graph([path for package in OURS for path in sources(package)])
    assert import_cycles(graph) == []


# -- the guards catch what they are for (planted imports) ----------------------------------


@pytest.mark.parametrize(
    ("source", "importer", "expected"),
    [
        ("import handlers", "rotation.store", ["handlers"]),
        (
            "from handlers.pg_connect import PostgresConnector",
            "rotation.store",
            ["handlers.pg_connect", "handlers.pg_connect.PostgresConnector"],
        ),
        ("from handlers import pg_roles", "rotation.store", ["handlers", "handlers.pg_roles"]),
        ("def f():\n    import rotation_tools.cli\n", "rotation.driver", ["rotation_tools.cli"]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import handlers.rds\n",
            "rotation.store",
            ["handlers.rds"],
        ),
        ("import handlers_of_mine", "rotation.store", []),
        ("from rotation import errors", "rotation.store", []),
        (
            "from rotation_contract.pg.login import classify",
            "rotation.store",
            ["rotation_contract.pg.login", "rotation_contract.pg.login.classify"],
        ),
        ("from rotation_contract.errors import RotationError", "rotation.errors", []),
        ("import rotation_client", "rotation.store", ["rotation_client"]),
    ],
    ids=[
        "import",
        "from-module",
        "from-package",
        "in-function",
        "type-checking",
        "prefix",
        "ok",
        "engine-specific",
        "contract-ok",
        "application-side",
    ],
)
def test_the_framework_guard_catches(source: str, importer: str, expected: list[str]) -> None:
    assert forbidden_imports(source, importer, forbidden_for("rotation")) == expected


@pytest.mark.parametrize(
    ("source", "importer", "is_package", "expected"),
    [
        (
            "from rotation.retry import Deadline",
            "rotation_contract.pg.tls",
            False,
            ["rotation.retry", "rotation.retry.Deadline"],
        ),
        (
            "from rotation import store",
            "rotation_contract.pg.tls",
            False,
            ["rotation", "rotation.store"],
        ),
        ("import tenacity", "rotation_contract.errors", False, ["tenacity"]),
        (
            "from aws_lambda_powertools import Logger",
            "rotation_contract.aws_errors",
            False,
            ["aws_lambda_powertools", "aws_lambda_powertools.Logger"],
        ),
        (
            "from handlers.pg_errors import x",
            "rotation_contract.pg.login",
            False,
            ["handlers.pg_errors", "handlers.pg_errors.x"],
        ),
        (
            "from rotation_client import connect",
            "rotation_contract.pg",
            True,
            ["rotation_client", "rotation_client.connect"],
        ),
        ("from rotation_contract.pg.tls import at_least", "rotation_contract.pg.secret", False, []),
        ("from .tls import at_least", "rotation_contract.pg.secret", False, []),
        ("from .. import errors", "rotation_contract.pg", True, []),
    ],
    ids=[
        "lambda-module",
        "lambda-module-from-package",
        "tenacity",
        "powertools",
        "handlers",
        "client",
        "contract-ok",
        "contract-relative-ok",
        "relative-from-package-init-ok",
    ],
)
def test_the_contract_guard_catches(
    source: str, importer: str, is_package: bool, expected: list[str]
) -> None:
    found = forbidden_imports(
        source, importer, forbidden_for("rotation_contract"), is_package=is_package
    )
    assert found == expected


def test_the_client_guard_refuses_the_lambda_side() -> None:
    assert forbidden_imports(
        "from rotation import Rotator", "rotation_client._aws", forbidden_for("rotation_client")
    ) == [
        "rotation",
        "rotation.Rotator",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os\nos.environ['X']", ["2: os.environ"]),
        ("import os\nos.environ.get('X')", ["2: os.environ"]),
        ("import os\nos.getenv('X')", ["2: os.getenv"]),
        ("from os import environ", ["1: from os import environ"]),
        ("import os\nos.getpid()", []),
    ],
    ids=["subscript", "get", "getenv", "from-os", "other-os"],
)
def test_the_environment_guard_catches(source: str, expected: list[str]) -> None:
    assert environment_reads(source) == expected


def test_the_cycle_guard_catches_a_planted_cycle() -> None:
    graph = {
        "handlers.pg_connect": {"handlers.rds"},
        "handlers.pg_roles": {"handlers.pg_connect"},
        "handlers.rds": set(),
    }
    assert import_cycles(graph) == []
    graph["handlers.rds"].add("handlers.pg_roles")  # a loop through three modules
    assert import_cycles(graph) == [["handlers.pg_connect", "handlers.pg_roles", "handlers.rds"]]


def test_the_architecture_page_draws_this_table() -> None:
    """docs/architecture.md's floors say what each package may import: the same rows."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    block = page.split("```\nfloor 4", 1)[1].split("```", 1)[0]
    drawn: dict[str, frozenset[str]] = {}
    for line in ("floor 4" + block).splitlines():
        if "->" not in line:
            continue
        left, _, right = line.partition("->")
        name = left.split()[-1]
        targets = right.split("(", 1)[0]
        drawn[name] = frozenset(
            word.strip() for word in targets.split(",") if word.strip() and "none" not in word
        )
    assert drawn == {name: row.may_import for name, row in PACKAGES.items()}
