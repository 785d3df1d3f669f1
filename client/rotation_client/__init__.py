"""The application side: PostgreSQL connections from a rotated secret, that survive rotation.

Rotation is only half the job: the application must keep connecting while its password
changes. :func:`connect` reads the secret once and caches it (``max_age``); on an
authentication failure it re-reads past the cache and, for the single-user window in which
the database already has the AWSPENDING password but AWSCURRENT has not moved yet, also
tries AWSPENDING and then AWSPREVIOUS, retrying with backoff; a server that takes no login
for a moment is retried within the caller's time; a configuration problem (TLS, pg_hba.conf,
an authentication method) is raised at once. Within a process, connections that fail at
the same moment share one read of the secret (see :class:`RefreshPolicy`).

Importing this package loads none of the rotation function's side (no dispatcher, no
Powertools, no tenacity, not even boto3 until a secret is first read through it), and
touches no logger.

In a Lambda function with the AWS Parameters and Secrets Lambda Extension, secrets are read
through it (``localhost:2773``); everywhere else through boto3.

Modules: :mod:`~rotation_client.sources` (where values come from, and their cache),
:mod:`~rotation_client.credentials` (which labelled version logs in), ``_versions`` (one
process's view of a secret's labels: single-flight, rate-limited refreshes), ``_retry``
(the client's retry and refresh policies), ``_connect`` (connections and pools),
``_aws`` (the boto3 client it builds, and every read bounded by the caller's time),
``_config`` (the environment, read in one place).

Example
-------
>>> from rotation_client import connect
>>> with connect("myapp/prod/db", autocommit=True) as conn:
...     conn.execute("SELECT 1")

With a pool (``pip install psycopg-pool``)::

    from rotation_client import make_pool
    pool = make_pool("myapp/prod/db", min_size=2, max_size=10)

The errors an application catches are re-exported here, from their home in the shared
``rotation_contract`` (the rotation function raises the same classes):
``rotation_client.AuthenticationError`` is ``rotation_contract.pg.errors.AuthenticationError``.
"""

from __future__ import annotations

from rotation_client._async import connect_async, make_async_pool
from rotation_client._config import DEFAULT_MAX_AGE_S
from rotation_client._connect import connect, make_pool
from rotation_client._retry import ConnectRetry, RefreshPolicy
from rotation_client.credentials import LoginAttempt, RotatingCredentials, credentials
from rotation_client.sources import (
    ExtensionSource,
    SecretsManagerSource,
    SecretSource,
    default_source,
)
from rotation_contract.errors import (
    ConfigurationError,
    ConnectTimeoutError,
    DeadlineError,
    RotationError,
    SecretAccessError,
    SecretDeletedError,
    SecretFormatError,
    SecretReadTimeoutError,
    SecretsManagerError,
    SecretsManagerUnavailableError,
)
from rotation_contract.pg.errors import (
    AuthenticationError,
    AuthMethodError,
    DatabaseError,
    ImpostorServerError,
    LoginConfigurationError,
    ServerUnavailableError,
    TlsError,
    UnreachableError,
)

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "AuthMethodError",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectRetry",
    "ConnectTimeoutError",
    "DatabaseError",
    "DeadlineError",
    "ExtensionSource",
    "ImpostorServerError",
    "LoginAttempt",
    "LoginConfigurationError",
    "RefreshPolicy",
    "RotatingCredentials",
    "RotationError",
    "SecretAccessError",
    "SecretDeletedError",
    "SecretFormatError",
    "SecretReadTimeoutError",
    "SecretSource",
    "SecretsManagerError",
    "SecretsManagerSource",
    "SecretsManagerUnavailableError",
    "ServerUnavailableError",
    "TlsError",
    "UnreachableError",
    "connect",
    "connect_async",
    "credentials",
    "default_source",
    "make_async_pool",
    "make_pool",
]
