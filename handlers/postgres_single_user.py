"""Lambda entrypoint: PostgreSQL single-user rotation.

Drop-in for AWS's ``SecretsManagerRDSPostgreSQLRotationSingleUser``: same event, same
secret JSON, same environment variables.
Handler: ``handlers.postgres_single_user.lambda_handler``.
"""

from __future__ import annotations

from handlers.single_user import PostgresSingleUser
from rotation.entrypoint import LambdaEntrypoint

__all__ = ["entrypoint", "lambda_handler"]

entrypoint = LambdaEntrypoint(PostgresSingleUser)


def lambda_handler(event: dict[str, object], context: object) -> str:
    """Run one rotation step (see :class:`rotation.entrypoint.LambdaEntrypoint`)."""
    return entrypoint(event, context)
