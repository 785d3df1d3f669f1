"""The application side's configuration, resolved in one place.

Every environment variable the client reads is named here once, and only this module reads
``os.environ`` (the Lambda side has its own, :mod:`rotation.config`; the client does not
import it, so that an application loads none of the Lambda side).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from rotation_contract.errors import ConfigurationError
from rotation_contract.pg.settings import PostgresSettings
from rotation_contract.secrets_manager import ENV_ENDPOINT, endpoint_from

__all__ = [
    "DEFAULT_EXTENSION_PORT",
    "DEFAULT_MAX_AGE_S",
    "ENV_ENDPOINT",
    "ENV_EXTENSION_PORT",
    "ENV_LAMBDA_FUNCTION",
    "ENV_SESSION_TOKEN",
    "extension_endpoint",
    "postgres_settings",
    "secrets_manager_endpoint",
]

# How long a secret value is cached (Powertools' parameters utility uses the same default).
DEFAULT_MAX_AGE_S = 300

ENV_LAMBDA_FUNCTION = "AWS_LAMBDA_FUNCTION_NAME"
ENV_SESSION_TOKEN = "AWS_SESSION_TOKEN"  # noqa: S105  # a variable name
ENV_EXTENSION_PORT = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
DEFAULT_EXTENSION_PORT = 2773


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def extension_endpoint(
    env: Mapping[str, str] | None = None,
) -> tuple[str, str, tuple[str, int]] | None:
    """The AWS Parameters and Secrets Lambda Extension's URL, the session token it wants,
    and its address, when running inside a Lambda function; else None.

    Raises
    ------
    ConfigurationError
        ``PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`` is not a port number.
    """
    env = _environ(env)
    if ENV_LAMBDA_FUNCTION not in env or ENV_SESSION_TOKEN not in env:
        return None
    raw = env.get(ENV_EXTENSION_PORT, str(DEFAULT_EXTENSION_PORT))
    try:
        port = int(raw)
    except ValueError as exc:
        raise ConfigurationError(
            f"{ENV_EXTENSION_PORT} must be a port number, got {raw!r}"
        ) from exc
    return f"http://localhost:{port}", env[ENV_SESSION_TOKEN], ("localhost", port)


def secrets_manager_endpoint(env: Mapping[str, str] | None = None) -> str | None:
    """``SECRETS_MANAGER_ENDPOINT``, or None to let boto3 resolve the endpoint (which
    includes ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and ``AWS_ENDPOINT_URL``)."""
    return endpoint_from(_environ(env))


def postgres_settings(env: Mapping[str, str] | None = None) -> PostgresSettings:
    """libpq's settings the contract honours (``PGSSLROOTCERT``, ``PGCONNECT_TIMEOUT``,
    ``PGREQUIREAUTH``, ``PGOPTIONS``), read by the shared :mod:`rotation_contract.pg.settings`."""
    return PostgresSettings.from_env(_environ(env))
