"""Lambda entrypoint: PostgreSQL multi-user (alternating users) rotation.

Drop-in for AWS's ``SecretsManagerRDSPostgreSQLRotationMultiUser``: same event, same secret
JSON (with ``masterarn``), same environment variables.
Handler: ``handlers.postgres_multi_user.lambda_handler``.
"""

from __future__ import annotations

from handlers.multi_user import PostgresMultiUser
from rotation.entrypoint import LambdaEntrypoint

__all__ = ["entrypoint", "lambda_handler"]

entrypoint = LambdaEntrypoint(PostgresMultiUser)


def lambda_handler(event: dict[str, object], context: object) -> str:
    """Run one rotation step (see :class:`rotation.entrypoint.LambdaEntrypoint`)."""
    return entrypoint(event, context)
