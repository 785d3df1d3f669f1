"""Where an application's secret values come from: Secrets Manager through boto3, or the
AWS Parameters and Secrets Lambda Extension inside a Lambda function; each value cached for
``max_age_s`` seconds on an injectable clock, each read bounded by the caller's time
(``timeout_s``), each failure typed by its cause (:func:`read_failure`)."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from rotation.aws_errors import FailureKind, error_code, error_message, failure_kind, http_status
from rotation.client._aws import OutOfTime, bound, new_client, within
from rotation.client._config import DEFAULT_MAX_AGE_S, extension_endpoint
from rotation.errors import (
    SecretAccessError,
    SecretDeletedError,
    SecretFormatError,
    SecretsManagerError,
    SecretsManagerUnavailableError,
)

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "ExtensionSource",
    "SecretSource",
    "SecretsManagerSource",
    "default_source",
    "read_failure",
]


# Secrets Manager's staging labels (the same strings as rotation.secret's, which belongs to
# the Lambda side).
AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"


class SecretSource(Protocol):
    """Where secret values come from. ``None`` when no version carries ``stage``.

    A source's ``get`` may also take ``timeout_s`` (keyword, seconds: the caller's time
    left), as this module's do; it is then given one, and must return or raise within it.
    A source whose ``get`` does not take it is called without: its reads are bounded only
    by itself.
    """

    def get(self, secret_id: str, stage: str, *, force: bool = False) -> str | None: ...


# What each kind of failure means, and what fixes it (the secret and stage are prefixed).
_FIX: dict[FailureKind, tuple[type[SecretsManagerError], str]] = {
    "transient": (
        SecretsManagerUnavailableError,
        "transient (a value read before, if any, is served meanwhile); if it lasts, check the "
        "network path to Secrets Manager (VPC endpoint or NAT, security groups, proxy) and "
        "the account's API quotas",
    ),
    "access-denied": (
        SecretAccessError,
        "the application's AWS credentials need secretsmanager:GetSecretValue on this secret "
        "(its IAM policy, and the secret's resource policy if it has one)",
    ),
    "kms": (
        SecretAccessError,
        "the secret's KMS key is disabled, pending deletion, or not usable by the application: "
        "enable the key, and grant the application's role kms:Decrypt in the key policy",
    ),
    "credentials": (
        SecretAccessError,
        "Secrets Manager refused the application's AWS credentials (unknown or expired): check "
        "its role, profile or environment",
    ),
    "not-found": (
        SecretDeletedError,
        "no such secret in this account and region: check the name or ARN, the region and the "
        "endpoint, or whether it was deleted",
    ),
    "deleted": (
        SecretDeletedError,
        "the secret is scheduled for deletion: restore it (aws secretsmanager restore-secret) "
        "or point the application at the secret that replaces it",
    ),
    "other": (SecretsManagerError, ""),
}


def read_failure(kind: FailureKind, secret_id: str, stage: str, detail: str) -> SecretsManagerError:
    """The typed error for a failed read of ``stage`` of ``secret_id``: its class and fix
    follow ``kind`` (:func:`rotation.aws_errors.failure_kind`); ``detail`` says what was
    answered (AWS messages name resources and actions, never secret values)."""
    error, fix = _FIX[kind]
    said = f"reading {stage} of {secret_id} failed: {detail}"
    return error(f"{said}; {fix}" if fix else said)


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
    Each read, retries included, ends within the caller's ``timeout_s`` (the client's
    attempts and timeouts are cut to it: :mod:`rotation.client._aws`); a client given here
    gets the same bound, which applies only to the reads made through this source.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        max_age_s: int = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._bound = False
        self.max_age_s = max_age_s
        self._cache = _ValueCache(max_age_s, clock)
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 client given, else None until the first read builds one."""
        return self._client

    def _secrets_manager(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = new_client()
            elif not self._bound:
                bound(self._client)
            self._bound = True
            return self._client

    def get(
        self, secret_id: str, stage: str, *, force: bool = False, timeout_s: float = math.inf
    ) -> str | None:
        from botocore.exceptions import (  # noqa: PLC0415
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        cached = None if force else self._cache.get(secret_id, stage)
        if cached is not None:
            return cached
        try:
            # The time starts now: building the client on the first read (importing boto3,
            # parsing botocore's models) counts against it too.
            with within(timeout_s):
                client = self._secrets_manager()
                response = client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except OutOfTime:
            raise read_failure(
                "transient",
                secret_id,
                stage,
                f"Secrets Manager did not answer within the caller's time ({timeout_s:.1f} s)",
            ) from None
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException" and stage != AWSCURRENT:
                return None  # no version carries that label now
            kind = failure_kind(code, http_status(exc), error_message(exc))
            detail = f"{code or http_status(exc)}: {error_message(exc)}".rstrip(": ")
            raise read_failure(kind, secret_id, stage, detail) from exc
        except (
            EndpointConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
            ConnectionClosedError,
        ) as exc:
            raise read_failure("transient", secret_id, stage, str(exc)) from exc
        except BotoCoreError as exc:
            # No credentials or region, a bad parameter: the configuration, not the moment.
            raise read_failure("other", secret_id, stage, str(exc)) from exc
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

    def get(
        self, secret_id: str, stage: str, *, force: bool = False, timeout_s: float = math.inf
    ) -> str | None:
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
        if timeout_s < _EXTENSION_MIN_S:
            raise read_failure(
                "transient", secret_id, stage, "no time was left to ask the secrets extension"
            )
        try:
            timeout = min(_EXTENSION_TIMEOUT_S, timeout_s)
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 404) and stage != AWSCURRENT:
                return None
            code = _extension_error_code(exc)
            kind = failure_kind(code, exc.code)
            detail = f"the secrets extension answered {exc.code} {code}".rstrip()
            raise read_failure(kind, secret_id, stage, detail) from exc
        except (OSError, ValueError) as exc:
            detail = f"the secrets extension failed: {exc}"
            raise read_failure("transient", secret_id, stage, detail) from exc
        value = document.get("SecretString")
        if not isinstance(value, str):
            raise SecretFormatError(f"{stage} of {secret_id} holds no SecretString")
        self._cache.put(secret_id, stage, value)
        return value


# The extension answers from its cache or asks Secrets Manager: 5 s already means trouble.
_EXTENSION_TIMEOUT_S = 5.0
_EXTENSION_MIN_S = 0.1


def _extension_error_code(exc: Any) -> str:
    """The AWS error code the extension passed on in its body, if any (it forwards
    Secrets Manager's answer)."""
    try:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return ""
    if not isinstance(body, dict):
        return ""
    code = body.get("__type") or body.get("Code") or body.get("code") or ""
    return str(code).rpartition("#")[2]


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
