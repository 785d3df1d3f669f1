"""PostgreSQL rotation strategies and the Lambda entrypoints that wire them to the framework.

The one registry of strategy names: each name, and the Lambda handler that runs it. The
``rotation`` command, the IAM policy, the CDK construct and ``handlers.verify`` read it here;
``template.yaml``'s functions are checked against it by the tests. Importing this package
loads no strategy: the entrypoints are named, not imported.
"""

from __future__ import annotations

__all__ = ["ENTRYPOINTS", "STRATEGIES"]

# The strategy's name (the secret's RotationStrategy, `--strategy`, the construct's
# `strategy`) and its Lambda handler.
ENTRYPOINTS: dict[str, str] = {
    "single-user": "handlers.postgres_single_user.lambda_handler",
    "multi-user": "handlers.postgres_multi_user.lambda_handler",
}
STRATEGIES: tuple[str, ...] = tuple(ENTRYPOINTS)
