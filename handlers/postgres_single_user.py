"""Lambda entrypoint: PostgreSQL single-user rotation.

Drop-in for AWS's ``SecretsManagerRDSPostgreSQLRotationSingleUser``: same event, same
secret JSON, same environment variables.
Handler: ``handlers.postgres_single_user.lambda_handler``.
"""

from __future__ import annotations

from typing import Any

from handlers.single_user import PostgresSingleUser
from rotation.entrypoint import LambdaEntrypoint
from rotation.verify_event import is_verify_event

__all__ = ["entrypoint", "lambda_handler"]

entrypoint = LambdaEntrypoint(PostgresSingleUser)


def lambda_handler(event: dict[str, object], context: object) -> str | dict[str, Any]:
    """Run one rotation step (see :class:`rotation.entrypoint.LambdaEntrypoint`), or, for a
    verification event (``{"Action": "VerifyCredentials", ...}``), check that the named
    secrets' credentials still log in (:mod:`handlers.verify_lambda`)."""
    if is_verify_event(event):
        from handlers.verify_lambda import handle_verification  # cold start

        return handle_verification(entrypoint, event, context, strategy="single-user")
    return entrypoint(event, context)
