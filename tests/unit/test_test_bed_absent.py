"""An installed ``rotation`` command without the repository's test bed (which no wheel
ships) says where to run the demo, instead of failing on an import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rotation_tools.cli_parser import EXIT_FAILED

# The command as a wheel installs it: everything but the repository's `testbed`, which
# None in sys.modules makes unimportable (Python's own way to block a module; the checkout's
# root also holds rotation and handlers, so it cannot simply leave the path).
# tests/functional/test_distributions.py runs the installed wheels themselves.
_WITHOUT_THE_BED = """
import sys
sys.modules["testbed"] = None
import importlib.util
assert importlib.util.find_spec("testbed") is None, "the test bed is still importable"
from rotation_tools.cli import main
sys.exit(main([sys.argv[1]]))
"""


@pytest.mark.parametrize("command", ["demo", "sandbox"])
def test_demo_without_the_test_bed_says_to_run_it_from_a_checkout(
    command: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_THE_BED, command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_FAILED, done.stderr
    assert f"`rotation {command}` runs on the repository's test bed" in done.stderr
    assert "make demo" in done.stderr
    assert "Traceback" not in done.stderr
