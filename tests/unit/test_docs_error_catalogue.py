"""The error catalogue (docs/hooks/error_catalogue.py, the site's reference/errors.md):
every error class a user can meet has an entry with its cause and its fix, written in the
class's own docstring, and every entry names a class that exists."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from docs.hooks import error_catalogue
from docs.hooks.error_catalogue import entries, error_classes, parse_docstring, render

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = entries()


def test_the_walk_finds_the_errors_of_every_package() -> None:
    """The catalogue is not empty by accident: each layer's known errors are in it."""
    names = {cls.__name__ for cls in error_classes()}
    assert {
        "RotationError",  # rotation_contract
        "ConnectTimeoutError",  # the client's
        "StagingError",  # rotation
        "StragglerError",  # handlers
        "RdsError",
        "StrategyError",  # rotation_tools
        "ClusterError",  # testbed
    } <= names
    assert len(ENTRIES) == len(names)  # one entry per class, no class twice


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_error_class_has_a_cause_and_a_fix(entry: error_catalogue.Entry) -> None:
    assert len(entry.cause.split()) >= 5, f"{entry.module}.{entry.name}: no cause in its docstring"
    assert len(entry.fix.split()) >= 3, (
        f"{entry.module}.{entry.name}: no 'Fix:' paragraph in its docstring"
    )


def test_every_catalogue_entry_names_a_class_that_exists() -> None:
    page = render()
    headings = re.findall(r"^### `(\w+)` \{ #(\w+) \}$", page, re.MULTILINE)
    assert len(headings) == len(ENTRIES)
    by_name = {e.name: e for e in ENTRIES}
    for name, anchor in headings:
        entry = by_name[name]
        cls = getattr(importlib.import_module(entry.module), name)
        assert isinstance(cls, type)
        assert issubclass(cls, BaseException)
        assert anchor == name.lower()


def test_a_docstring_without_a_fix_has_no_fix() -> None:
    """What the per-class test relies on: a missing ``Fix:`` paragraph is seen as missing,
    and numpy sections are part of neither the cause nor the fix."""
    cause, fix = parse_docstring(
        """Something failed.

        Parameters
        ----------
        x:
            Fix: not this one.
        """
    )
    assert (cause, fix) == ("Something failed.", "")
    assert parse_docstring("It broke.\n\nFix: mend it, with :class:`Tool`.") == (
        "It broke.",
        "mend it, with ``Tool``.",
    )


def test_internal_errors_are_private_by_name() -> None:
    """A class left out of the catalogue is one a user never meets: its name or module is
    private (``_PublishError``, ``rotation_client._aws.OutOfTime``)."""
    public = {f"{c.__module__}.{c.__name__}" for c in error_classes()}
    assert "rotation.events._PublishError" not in public
    assert "rotation_client._aws.OutOfTime" not in public


def test_the_cdk_construct_defines_no_exception_class() -> None:
    """rotation_cdk is read from source only (aws-cdk-lib may be absent): it refuses bad
    arguments with ValueError, whose message states the rule. A class of its own would need
    a catalogue entry, which the walk cannot give without importing it."""
    for path in sorted((ROOT / "cdk" / "rotation_cdk").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(b) for b in node.bases]
                assert not any(b.endswith(("Error", "Exception")) for b in bases), (
                    f"{path.name}: {node.name} needs a catalogue entry "
                    "(docs/hooks/error_catalogue.py)"
                )
