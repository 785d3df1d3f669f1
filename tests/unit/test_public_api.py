"""The package's public names are re-exported, explicitly and in order (httpx's guard)."""

from __future__ import annotations

import pathlib

import rotation


def test_all_is_sorted_and_complete() -> None:
    assert rotation.__all__ == sorted(rotation.__all__)
    for name in rotation.__all__:
        assert hasattr(rotation, name), name


def test_rotation_does_not_import_handlers() -> None:
    """The dependency direction is one way: handlers import rotation, never the reverse."""
    package = pathlib.Path(rotation.__file__).parent
    for module in package.rglob("*.py"):
        text = module.read_text()
        assert "import handlers" not in text, module
        assert "from handlers" not in text, module
