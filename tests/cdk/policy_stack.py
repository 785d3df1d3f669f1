"""Synthesize the construct for policy-as-code (``make policy`` runs checkov on the output).

Two stacks: single-user with the defaults, and multi-user with every option on (KMS key,
isolated VPC with endpoints, failure alarm, verification schedule, event bus, dashboard).
The function's code is inline: checkov judges resources, not the artifact, and this needs
no PyPI.

Usage: ``python -m tests.cdk.policy_stack --out build/cdk-policy``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# Before aws_cdk loads: quiets jsii's banner about the machine's Node.js.
import tests.cdk.conftest  # noqa: F401

if TYPE_CHECKING:
    from tests.cdk.stacks import Built

CODE = "def handler(event, context):\n    return None\n"


def stacks() -> dict[str, Built]:
    from aws_cdk import aws_lambda as lambda_

    from tests.cdk.stacks import build

    code = lambda_.Code.from_inline(CODE)
    return {
        "single-user": build(with_key=True, code=code),
        "multi-user-everything": build(
            strategy="multi-user",
            with_key=True,
            vpc="isolated",
            with_bus=True,
            failure_alarm=True,
            verification_schedule="rate(1 hour)",
            code=lambda_.Code.from_inline(CODE),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, built in stacks().items():
        path = args.out / f"{name}.template.json"
        path.write_text(json.dumps(built.json(), indent=1))
        sys.stdout.write(f"{path}\n")


if __name__ == "__main__":
    main()
