"""Where the demo's test bed comes from: the repository, never a wheel.

``rotation demo`` and ``rotation sandbox`` run on the repository's ``testbed`` package (a
throwaway PostgreSQL with TLS, an embedded Secrets Manager). It ships in no distribution:
it starts servers and writes certificates, which nothing installed from a wheel should do.
So an installed ``rotation`` command says where to run them instead of failing on an
import.
"""

from __future__ import annotations

import importlib.util

__all__ = ["TestBedMissingError", "require_test_bed"]


class TestBedMissingError(RuntimeError):
    """``rotation demo`` or ``rotation sandbox`` ran where the repository's test bed is not
    importable (the command installed from a wheel). Fix: run it from a checkout of the
    repository: ``make demo``."""

    __test__ = False  # not a pytest test class, despite its name


def require_test_bed(command: str) -> None:
    """Raise :class:`TestBedMissingError` unless the ``testbed`` package is importable."""
    if importlib.util.find_spec("testbed") is None:
        raise TestBedMissingError(
            f"`rotation {command}` runs on the repository's test bed (a throwaway PostgreSQL "
            "and an embedded Secrets Manager), which no wheel ships. Run it from a checkout "
            "of the repository: `make demo` installs what it needs and runs the demo"
        )
