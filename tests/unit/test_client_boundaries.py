"""What the application client's files may import, read from their source: every import,
also the ones inside functions that an import-time check never runs (tests/functional/
test_client_imports.py checks what importing actually loads)."""

from __future__ import annotations

import ast
import pathlib
import sys

import pytest

import rotation

PACKAGE = pathlib.Path(rotation.__file__).parent
# The files the client's distribution ships (client/pyproject.toml).
SHIPPED = [
    PACKAGE / "__init__.py",
    PACKAGE / "errors.py",
    PACKAGE / "aws_errors.py",
    PACKAGE / "aws_calls.py",
    *sorted((PACKAGE / "client").rglob("*.py")),
    *sorted((PACKAGE / "pg").rglob("*.py")),
]
ALLOWED_ROTATION = (
    "rotation.client",
    "rotation.pg",
    "rotation.errors",
    "rotation.aws_errors",
    "rotation.aws_calls",
)
ALLOWED_THIRD_PARTY = {"psycopg", "psycopg_pool", "boto3", "botocore", "sqlalchemy", "django"}


def _imports(path: pathlib.Path) -> list[tuple[str, bool]]:
    """Every module ``path`` imports, and whether only for type checking."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in typing_only) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in typing_only))
    return found


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_a_shipped_file_imports_only_what_ships_with_it(path: pathlib.Path) -> None:
    if path == PACKAGE / "__init__.py":
        # The package's lazy names point at the Lambda side, loaded only when asked for
        # (PEP 562): only for type checking at import time.
        assert all(
            typing_only for module, typing_only in _imports(path) if module.startswith("rotation")
        )
        return
    for module, typing_only in _imports(path):
        top = module.split(".")[0]
        if top == "rotation":
            assert module == "rotation" or module.startswith(ALLOWED_ROTATION), (path, module)
        elif not typing_only:
            assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (path, module)
