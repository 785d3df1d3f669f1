"""The CDK construct's tests: stacks synthesized offline with aws_cdk.assertions.

They need the ``cdk`` extra and Node.js (jsii runs aws-cdk-lib there); ``make cdk`` installs
the extra and runs them. Without aws-cdk-lib installed, every module here is skipped.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# jsii prints a banner about the machine's Node.js 20 (end of life) on every start.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
# The artifact is built once per machine (pip fetches wheels the first time) under build/,
# which `make clean` removes, instead of the user's cache.
os.environ.setdefault("ROTATION_CDK_CACHE", str(ROOT / "build" / "cdk-cache"))

PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "111122223333",
    "AWS::URLSuffix": "amazonaws.com",
}


def evaluate(value: Any) -> Any:
    """Resolve the pseudo parameters and Fn::Join in a synthesized value, for comparisons."""
    if isinstance(value, list):
        return [evaluate(v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref" and arg in PSEUDO:
            return PSEUDO[arg]
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(evaluate(p)) for p in parts)
    if isinstance(value, dict):
        return {k: evaluate(v) for k, v in value.items()}
    return value


if importlib.util.find_spec("aws_cdk") is None:
    collect_ignore_glob = ["test_*.py"]

    def pytest_terminal_summary(terminalreporter: Any) -> None:
        terminalreporter.write_line(
            "tests/cdk not collected: aws-cdk-lib is not installed (`make cdk` installs the "
            "cdk extra and runs them)"
        )
