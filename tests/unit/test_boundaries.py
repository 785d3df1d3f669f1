"""The package boundaries, read from the source (``ast``; nothing is imported).

* ``rotation`` is the framework: it imports neither ``handlers`` (the PostgreSQL
  strategies import the framework, never the reverse) nor the tooling.
* The contract the application client ships with (``rotation/pg``, ``rotation/errors.py``,
  ``rotation/aws_errors.py``, ``rotation/aws_calls.py``) imports nothing of the Lambda
  side: an application that installs the client must not load the dispatcher, Powertools
  or tenacity.
* On the Lambda side only :mod:`rotation.config` reads the environment (its docstring's
  promise); the client resolves its own.
* No two of our modules import each other, directly or around a loop (such a cycle once
  forced ``handlers.pg_connect`` to hand out ``handlers.pg_roles`` as an untyped module).

Every import counts, also one inside a function or under ``TYPE_CHECKING``: a deferred
import is still a dependency, and a type-only one still ties the packages together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK = ROOT / "rotation"

# What the application client ships with besides its own package.
CONTRACT = sorted(
    [
        *(FRAMEWORK / "pg").rglob("*.py"),
        FRAMEWORK / "errors.py",
        FRAMEWORK / "aws_errors.py",
        FRAMEWORK / "aws_calls.py",
    ]
)
LAMBDA_SIDE = tuple(
    f"rotation.{name}"
    for name in (
        "clients",
        "config",
        "conformance",
        "dispatcher",
        "driver",
        "entrypoint",
        "observability",
        "retry",
        "scrub",
        "store",
        "strategy",
    )
)
NOT_FRAMEWORK = ("handlers", "rotation_tools", "rotation_cdk")
# Besides these, the names the package ``rotation`` exports load their modules lazily (PEP
# 562), so ``from rotation import X`` may load any of them: the contract names its modules.
CONTRACT_FORBIDDEN = (*LAMBDA_SIDE, *NOT_FRAMEWORK, "aws_lambda_powertools", "tenacity")
PACKAGE_ITSELF = "rotation"

# Allowed to read the environment: the Lambda side's one place, and the client's side.
ENVIRONMENT_READERS = (FRAMEWORK / "config.py", FRAMEWORK / "client.py", FRAMEWORK / "client")
_ENVIRONMENT_NAMES = frozenset({"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute name a ``from`` import refers to (``from ..store import x`` in
    ``rotation.pg.settings`` is ``rotation.store``)."""
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


def package_imports(source: str, importer: str, *, is_package: bool = False) -> list[str]:
    """Names imported from the package ``rotation`` itself (``from rotation import X``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = _resolve(node.module, node.level, importer, is_package)
            if module == PACKAGE_ITSELF:
                found.extend(f"{module}.{alias.name}" for alias in node.names)
    return found


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


def test_the_framework_imports_neither_handlers_nor_the_tooling() -> None:
    """The dependency direction is one way: handlers and tools import rotation, never the
    reverse."""
    assert _violations(sorted(FRAMEWORK.rglob("*.py")), NOT_FRAMEWORK) == {}


def test_the_clients_contract_imports_nothing_of_the_lambda_side() -> None:
    assert CONTRACT, "the contract's modules moved: update CONTRACT"
    assert _violations(CONTRACT, CONTRACT_FORBIDDEN) == {}
    through_the_package = {
        str(path.relative_to(ROOT)): names
        for path in CONTRACT
        if (
            names := package_imports(
                path.read_text(), _module_name(path), is_package=path.name == "__init__.py"
            )
        )
    }
    assert through_the_package == {}


def test_only_the_one_place_reads_the_environment() -> None:
    """``rotation.config`` on the Lambda side (the client has its own)."""
    sources = [*FRAMEWORK.rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]
    found = {
        str(path.relative_to(ROOT)): reads
        for path in sorted(sources)
        if not any(path == reader or reader in path.parents for reader in ENVIRONMENT_READERS)
        and (reads := environment_reads(path.read_text()))
    }
    assert found == {}


def test_no_import_cycles() -> None:
    """Deferred imports included: a cycle hidden inside a function is still a cycle."""
    packages = ("rotation", "handlers", "rotation_tools")
    graph = import_graph(sorted(p for name in packages for p in (ROOT / name).rglob("*.py")))
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
    ],
    ids=["import", "from-module", "from-package", "in-function", "type-checking", "prefix", "ok"],
)
def test_the_framework_guard_catches(source: str, importer: str, expected: list[str]) -> None:
    assert forbidden_imports(source, importer, NOT_FRAMEWORK) == expected


@pytest.mark.parametrize(
    ("source", "importer", "is_package", "expected"),
    [
        (
            "from rotation.retry import Deadline",
            "rotation.pg.tls",
            False,
            ["rotation.retry", "rotation.retry.Deadline"],
        ),
        ("from rotation import store", "rotation.pg.tls", False, ["rotation.store"]),
        (
            "from ..observability import logger",
            "rotation.pg.tls",
            False,
            ["rotation.observability", "rotation.observability.logger"],
        ),
        ("from .. import config", "rotation.pg", True, ["rotation.config"]),
        ("import tenacity", "rotation.errors", False, ["tenacity"]),
        (
            "from aws_lambda_powertools import Logger",
            "rotation.aws_errors",
            False,
            ["aws_lambda_powertools", "aws_lambda_powertools.Logger"],
        ),
        (
            "from handlers.pg_errors import x",
            "rotation.pg.login",
            False,
            ["handlers.pg_errors", "handlers.pg_errors.x"],
        ),
        ("from rotation.pg.tls import at_least", "rotation.pg.secret", False, []),
        ("from .tls import at_least", "rotation.pg.secret", False, []),
        ("from rotation.errors import TlsError", "rotation.pg.tls", False, []),
    ],
    ids=[
        "lambda-module",
        "lambda-module-from-package",
        "relative",
        "relative-from-package-init",
        "tenacity",
        "powertools",
        "handlers",
        "contract-ok",
        "contract-relative-ok",
        "errors-ok",
    ],
)
def test_the_contract_guard_catches(
    source: str, importer: str, is_package: bool, expected: list[str]
) -> None:
    assert forbidden_imports(source, importer, CONTRACT_FORBIDDEN, is_package=is_package) == (
        expected
    )


def test_the_contract_guard_catches_a_lazy_name_of_the_package() -> None:
    assert package_imports("from rotation import Rotator", "rotation.pg.tls") == [
        "rotation.Rotator"
    ]
    assert package_imports("from rotation.errors import TlsError", "rotation.pg.tls") == []


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
