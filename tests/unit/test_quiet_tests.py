"""The tests print nothing of their own: pytest's output is not interrupted by lines from a
test (a measurement belongs in an assertion's message or the benchmark report)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_test_prints_or_disables_capture() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{path.relative_to(TESTS)}:{node.lineno} print()")
            elif name == "disabled":
                found.append(f"{path.relative_to(TESTS)}:{node.lineno} capsys.disabled()")
    assert found == []
