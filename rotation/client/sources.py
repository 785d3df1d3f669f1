"""Where an application's secret values come from: Secrets Manager through boto3, or the
AWS Parameters and Secrets Lambda Extension inside a Lambda function; each value cached for
``max_age_s`` seconds on an injectable clock."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from rotation.aws_errors import error_code, error_message
from rotation.client._config import (
    DEFAULT_MAX_AGE_S,
    extension_endpoint,
    secrets_manager_endpoint,
)
from rotation.errors import SecretFormatError, SecretsManagerError

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "ExtensionSource",
    "SecretSource",
    "SecretsManagerSource",
    "default_source",
]


# Secrets Manager's staging labels (the same strings as rotation.secret's, which belongs to
# the Lambda side).
AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"

# Per attempt: Secrets Manager answers in tens of milliseconds, so 5 s to connect and 15 s
# to answer already mean something is wrong (the handlers use the same bounds).
_CONNECT_TIMEOUT_S = 5.0
_READ_TIMEOUT_S = 15.0


class SecretSource(Protocol):
    """Where secret values come from. ``None`` when no version carries ``stage``."""

    def get(self, secret_id: str, stage: str, *, force: bool = False) -> str | None: ...


class _ValueCache:
    """Values per (secret, stage) for ``max_age_s`` seconds on an injectable clock."""

    def __init__(self, max_age_s: float, clock: Callable[[], float]) -> None:
        self.max_age_s = max_age_s
        self.clock = clock
        self._entries: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, secret_id: str, stage: str) -> str | None:
        with self._lock:
            entry = self._entries.get((secret_id, stage))
        if entry is None or self.clock() - entry[0] >= self.max_age_s:
            return None
        return entry[1]

    def put(self, secret_id: str, stage: str, value: str) -> None:
        with self._lock:
            self._entries[(secret_id, stage)] = (self.clock(), value)


class SecretsManagerSource:
    """``GetSecretValue`` by stage, each value cached for ``max_age_s`` seconds.

    ``clock`` (monotonic seconds) is injectable so that tests can age the cache without
    sleeping. Unless one is given, the client is made on first use, as the handlers make
    theirs: ``SECRETS_MANAGER_ENDPOINT``, else boto3's own resolution
    (``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL``, the regional endpoint),
    with botocore's standard retries (3 attempts) for throttling and transient faults.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        max_age_s: int = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.max_age_s = max_age_s
        self._cache = _ValueCache(max_age_s, clock)
        self._lock = threading.Lock()

    def _secrets_manager(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = _new_client()
            return self._client

    def get(self, secret_id: str, stage: str, *, force: bool = False) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        cached = None if force else self._cache.get(secret_id, stage)
        if cached is not None:
            return cached
        try:
            response = self._secrets_manager().get_secret_value(
                SecretId=secret_id, VersionStage=stage
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException" and stage != AWSCURRENT:
                return None  # no version carries that label now
            # AWS error messages name resources and actions, never secret values.
            message = error_message(exc)
            raise SecretsManagerError(
                f"reading {stage} of {secret_id} failed: {code}: {message}".rstrip(": ")
            ) from exc
        except BotoCoreError as exc:
            raise SecretsManagerError(f"reading {stage} of {secret_id} failed: {exc}") from exc
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise SecretFormatError(f"{stage} of {secret_id} holds no SecretString")
        self._cache.put(secret_id, stage, value)
        return value


class ExtensionSource:
    """The AWS Parameters and Secrets Lambda Extension's local HTTP endpoint.

    The extension caches too; ``force`` asks it to refresh (``refreshNow=true``).
    """

    def __init__(
        self,
        endpoint: str,
        session_token: str,
        *,
        max_age_s: int = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._token = session_token
        self.max_age_s = max_age_s
        self._cache = _ValueCache(max_age_s, clock)

    def get(self, secret_id: str, stage: str, *, force: bool = False) -> str | None:
        # Here, not at the top: urllib.request costs ~20 ms of import (http.client, email),
        # which an application outside Lambda never needs.
        import urllib.error  # noqa: PLC0415
        import urllib.parse  # noqa: PLC0415
        import urllib.request  # noqa: PLC0415

        cached = None if force else self._cache.get(secret_id, stage)
        if cached is not None:
            return cached
        query = {"secretId": secret_id, "versionStage": stage}
        if force:
            query["refreshNow"] = "true"
        request = urllib.request.Request(  # noqa: S310  # a loopback http URL we built
            f"{self.endpoint}/secretsmanager/get?{urllib.parse.urlencode(query)}",
            headers={"X-Aws-Parameters-Secrets-Token": self._token},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 404) and stage != AWSCURRENT:
                return None
            raise SecretsManagerError(
                f"the secrets extension answered {exc.code} for {stage} of {secret_id}"
            ) from exc
        except (OSError, ValueError) as exc:
            raise SecretsManagerError(f"the secrets extension failed: {exc}") from exc
        value = document.get("SecretString")
        if not isinstance(value, str):
            raise SecretFormatError(f"{stage} of {secret_id} holds no SecretString")
        self._cache.put(secret_id, stage, value)
        return value


def _new_client() -> Any:
    # boto3 only here, on first use: importing the client stays light, and inside Lambda
    # the extension path never loads it. A session of its own: boto3's default session is
    # not safe to build clients from in several threads at once.
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        # total_max_attempts, not max_attempts: the latter counts retries.
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=_CONNECT_TIMEOUT_S,
        read_timeout=_READ_TIMEOUT_S,
    )
    return boto3.session.Session().client(
        "secretsmanager", endpoint_url=secrets_manager_endpoint(), config=config
    )


def default_source(max_age_s: int = DEFAULT_MAX_AGE_S, *, client: Any = None) -> SecretSource:
    """The extension when it listens (inside a Lambda that has it), else boto3; ``client``
    (a boto3 ``secretsmanager`` client) always means boto3, through that client."""
    if client is not None:
        return SecretsManagerSource(client, max_age_s=max_age_s)
    found = extension_endpoint()
    if found is not None:
        url, token, (host, port) = found
        try:
            socket.create_connection((host, port), timeout=0.2).close()
        except OSError:
            pass
        else:
            return ExtensionSource(url, token, max_age_s=max_age_s)
    return SecretsManagerSource(max_age_s=max_age_s)
