"""Every cross-reference in the docstrings names something (docs/hooks/references.py);
``make docs`` fails on one that does not (the hook warns, the build is strict)."""

from __future__ import annotations

from pathlib import Path

import pytest

from docs.hooks.references import ROOT, Reference, _resolves, references, unresolved


def test_every_docstring_reference_resolves() -> None:
    assert [str(reference) for reference in unresolved()] == []


def test_the_docstrings_are_read() -> None:
    found = list(references())
    assert len(found) > 300  # every package's docstrings, not an empty walk
    assert {r.module.split(".")[0] for r in found} >= {
        "rotation",
        "handlers",
        "rotation_contract",
        "rotation_client",
        "rotation_tools",
    }


_HERE = ROOT / "handlers" / "pg_connect.py"


@pytest.mark.parametrize(
    ("target", "owner", "resolves"),
    [
        ("rotation_contract.pg.errors.AuthMethodError", None, True),
        ("rotation_contract.pg.errors.NoSuchError", None, False),
        ("PostgresConnector.connect", None, True),  # the module's own
        ("connect", "PostgresConnector", True),  # the enclosing class's
        ("connect", None, False),
        ("pg_sql", None, True),  # a module of the package by its own name
        ("NoSuchClass", None, False),
        ("ValueError", None, True),
        ("psycopg.Connection", None, True),
    ],
)
def test_the_resolver_judges_as_a_reader(target: str, owner: str | None, resolves: bool) -> None:
    reference = Reference("handlers.pg_connect", _HERE, 1, "class", target, owner)
    assert _resolves(reference) is resolves


def test_make_docs_is_strict() -> None:
    """``--quiet`` would turn MkDocs' strict mode off (it exits 0 on warnings then)."""
    recipe = Path(ROOT / "Makefile").read_text().split("\ndocs:", 1)[1].split("\n\n", 1)[0]
    assert "mkdocs build --strict" in recipe
    assert "--quiet" not in recipe


def test_the_references_resolve_without_the_constructs_dependencies() -> None:
    """``make docs`` runs before anything installs aws-cdk-lib (CI): the construct's
    modules are then read from their source, not imported."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['aws_cdk'] = None; sys.modules['constructs'] = None; "
        "from docs.hooks.references import unresolved; "
        "print('\\n'.join(str(r) for r in unresolved()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
