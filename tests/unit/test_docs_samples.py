"""Examples are code: every sample of the site and the README longer than a few lines is a
file under examples/ (checked by ruff and mypy, run by tests/docs), included into its page
by pymdownx.snippets; and every example is shown somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
# A few lines: a command or two, a short call. Anything longer is an example file.
MAX_INLINE_LINES = 8
# Code blocks: a language other than `text` (a block without one is a diagram or output).
_FENCE = re.compile(r"^```(?!text\b)[\w-]+[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.MULTILINE)


def _blocks(path: Path) -> list[str]:
    return _FENCE.findall(path.read_text())


@pytest.mark.parametrize(
    "path", [*PAGES, ROOT / "README.md"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_long_sample_is_written_inline(path: Path) -> None:
    for block in _blocks(path):
        if _SNIPPET.fullmatch(block.strip()):
            continue
        assert block.count("\n") <= MAX_INLINE_LINES, (
            f"{path.relative_to(ROOT)}: a {block.count(chr(10))}-line sample; make it a file "
            f'under examples/ and include it (--8<-- "...")'
        )


def test_every_example_is_included_by_a_page() -> None:
    included = {name for page in PAGES for name in _SNIPPET.findall(page.read_text())}
    examples = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "examples").rglob("*")
        if path.is_file() and path.name != "__init__.py" and "__pycache__" not in path.parts
    }
    assert examples <= included, f"not shown on any page: {sorted(examples - included)}"
