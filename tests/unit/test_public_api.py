"""The package's public names are re-exported, explicitly and in order (httpx's guard)."""

from __future__ import annotations

import rotation


def test_all_is_sorted_and_complete() -> None:
    assert rotation.__all__ == sorted(rotation.__all__)
    for name in rotation.__all__:
        assert hasattr(rotation, name), name
