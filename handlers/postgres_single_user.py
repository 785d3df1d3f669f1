"""Lambda entrypoint: PostgreSQL single-user rotation.

Drop-in for AWS's ``SecretsManagerRDSPostgreSQLRotationSingleUser``: same event, same
secret JSON, same environment variables. Configure the function's handler as
``handlers.postgres_single_user.lambda_handler``.
"""

from __future__ import annotations

from handlers.single_user import PostgresSingleUser
from rotation.clients import secrets_manager_client
from rotation.dispatcher import Rotator
from rotation.store import SecretStore

__all__ = ["build_rotator", "lambda_handler"]

_rotator: Rotator | None = None


def build_rotator(
    store: SecretStore | None = None, strategy: PostgresSingleUser | None = None
) -> Rotator:
    """A rotator with production defaults; pass a store or strategy to inject clients."""
    return Rotator(strategy or PostgresSingleUser(), store or SecretStore(secrets_manager_client()))


def lambda_handler(event: dict[str, object], context: object) -> str:
    """Run one rotation step. The rotator (client, caches) lives as long as the container."""
    global _rotator  # noqa: PLW0603  # one per container, reused across warm invocations
    if _rotator is None:
        _rotator = build_rotator()
    return _rotator.handle(event, context)
