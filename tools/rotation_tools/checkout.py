"""The repository checkout the command runs from, when it does (an editable install).

``template.yaml`` and ``events/`` are the repository's files, not the tools' wheel's: the
commands that print ``sam``-style lines point at them when the command runs from a
checkout, and fall back to relative paths (the current directory) otherwise.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHECKOUT"]

# tools/rotation_tools/checkout.py -> the repository's root, if this file sits in one.
CHECKOUT = Path(__file__).resolve().parents[2]
