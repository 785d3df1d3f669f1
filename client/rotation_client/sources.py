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

from rotation_client._aws import MIN_ATTEMPT_S, MIN_READ_S, OutOfTime, bound, new_client, within
from rotation_client._config import DEFAULT_MAX_AGE_S, extension_endpoint
from rotation_client._deadline import SingleFlight, shutting_down_at, watch
from rotation_contract.aws_errors import (
    FailureKind,
    error_code,
    error_message,
    failure_kind,
    http_status,
)
from rotation_contract.errors import (
    SecretAccessError,
    SecretDeletedError,
    SecretFormatError,
    SecretReadTimeoutError,
    SecretsManagerError,
    SecretsManagerUnavailableError,
)
from rotation_contract.secrets_manager import AWSCURRENT, AWSPENDING, AWSPREVIOUS

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "ExtensionSource",
    "SecretSource",
    "SecretsManagerSource",
    "default_source",
    "out_of_time",
    "read_failure",
]


# Secrets Manager's staging labels (the same strings as rotation.secret's, which belongs to
# the Lambda side).


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


def out_of_time(
    secret_id: str, stage: str, what: str, *, budget_s: float, waited_s: float
) -> SecretsManagerError:
    """The error for a read that the caller's time ended after ``waited_s`` of its
    ``budget_s`` seconds; ``what`` says which wait it ended.

    Given at least :data:`~rotation_client._aws.MIN_READ_S`, Secrets Manager (or the way to
    it) had a fair chance: a transient failure of Secrets Manager, remembered and served
    stale for like any other. Cut shorter, it says only that the caller had no time: a
    :class:`~rotation_contract.errors.SecretReadTimeoutError`, which nothing remembers.
    """
    said = f"{what} within the {waited_s:.1f} s the caller had left (of {budget_s:.1f} s)"
    if waited_s >= MIN_READ_S:
        return read_failure("transient", secret_id, stage, said)
    return SecretReadTimeoutError(
        f"reading {stage} of {secret_id} was cut: {said}; the caller's time ran out, which "
        "says nothing of Secrets Manager: give the call more time (ConnectRetry(timeout_s=...) "
        "or timeout_s=)"
    )


def read_failure(kind: FailureKind, secret_id: str, stage: str, detail: str) -> SecretsManagerError:
    """The typed error for a failed read of ``stage`` of ``secret_id``: its class and fix
    follow ``kind`` (:func:`rotation_contract.aws_errors.failure_kind`); ``detail`` says what was
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
    attempts and timeouts are cut to it: :mod:`rotation_client._aws`); a client given here
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
        # Building the client resolves the application's AWS credentials (the container
        # endpoint, a profile's files); signing may refresh them (STS, the container
        # endpoint): neither takes a timeout of ours, so each runs in the background,
        # waited for within the caller's time, one at a time per source.
        self._building: SingleFlight[Any] = SingleFlight("rotation-client-build")
        self._refreshing: SingleFlight[Any] = SingleFlight("rotation-client-credentials")

    @property
    def client(self) -> Any:
        """The boto3 client given, else None until the first read builds one."""
        return self._client

    def _secrets_manager(self, timeout_s: float) -> Any:
        with self._lock:
            client = self._client
            if client is not None and not self._bound:
                bound(client)
                self._bound = True
        if client is not None:
            return client
        try:
            return self._building.run(self._build, timeout_s)
        except TimeoutError:
            raise OutOfTime(
                "the Secrets Manager client was not ready (botocore fetching the "
                "application's AWS credentials)"
            ) from None

    def _build(self) -> Any:
        made = new_client()
        with self._lock:
            if self._client is None:
                self._client, self._bound = made, True
            return self._client

    def _fresh_credentials(self, client: Any, timeout_s: float) -> None:
        """The application's AWS credentials fetched or refreshed, when they must be,
        within ``timeout_s`` (else botocore would do it while signing, unbounded)."""
        get_credentials = getattr(client, "_get_credentials", None)  # botocore's accessor
        found: Any = get_credentials() if callable(get_credentials) else None
        refresh_needed = getattr(found, "refresh_needed", None)
        if not callable(refresh_needed) or not refresh_needed():
            return  # static credentials, or temporary ones far from expiry
        try:
            self._refreshing.run(found.get_frozen_credentials, timeout_s)
        except TimeoutError:
            raise OutOfTime(
                "the application's AWS credentials were not fetched (the container "
                "credentials endpoint, or STS for an assumed role)"
            ) from None

    def get(
        self, secret_id: str, stage: str, *, force: bool = False, timeout_s: float = math.inf
    ) -> str | None:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        cached = None if force else self._cache.get(secret_id, stage)
        if cached is not None:
            return cached
        # The time starts now: building the client on the first read (importing boto3,
        # parsing botocore's models, fetching AWS credentials) counts against it too.
        started = time.monotonic()
        if timeout_s < MIN_ATTEMPT_S:
            # Before anything is built or asked: nothing could come of it in time.
            what = "no time was left to ask Secrets Manager"
            raise out_of_time(secret_id, stage, what, budget_s=timeout_s, waited_s=0.0)

        def left() -> float:
            return timeout_s - (time.monotonic() - started)

        try:
            with within(timeout_s):
                client = self._secrets_manager(left())
                self._fresh_credentials(client, left())
                response = client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except OutOfTime as exc:
            waited = time.monotonic() - started
            raise out_of_time(
                secret_id, stage, exc.what, budget_s=timeout_s, waited_s=waited
            ) from None
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException" and stage != AWSCURRENT:
                return None  # no version carries that label now
            kind = failure_kind(code, http_status(exc), error_message(exc))
            detail = f"{code or http_status(exc)}: {error_message(exc)}".rstrip(": ")
            raise read_failure(kind, secret_id, stage, detail) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            # No answer: unreachable, refused, timed out, a proxy or TLS failure on the
            # way, a connection reset mid-answer (ConnectionError's and HTTPClientError's
            # families). Another moment may do better.
            raise read_failure("transient", secret_id, stage, str(exc)) from exc
        except BotoCoreError as exc:
            # No credentials or region, a bad parameter: the configuration, not the moment.
            raise read_failure("other", secret_id, stage, str(exc)) from exc
        value = _secret_string(response, secret_id, stage)
        self._cache.put(secret_id, stage, value)
        return value


def _secret_string(response: Any, secret_id: str, stage: str) -> str:
    """The ``SecretString`` of a ``GetSecretValue`` answer.

    Raises
    ------
    SecretsManagerUnavailableError
        The answer was cut short: every answer names the secret, and a connection reset
        mid-answer leaves a half body that botocore parses as an empty one.
    SecretFormatError
        The version holds no string (a binary secret).
    """
    value = response.get("SecretString")
    if isinstance(value, str):
        return value
    if "ARN" not in response:
        detail = "Secrets Manager's answer was cut short (it names no secret)"
        raise read_failure("transient", secret_id, stage, detail)
    raise SecretFormatError(f"{stage} of {secret_id} holds no SecretString")


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
        import urllib.parse

        cached = None if force else self._cache.get(secret_id, stage)
        if cached is not None:
            return cached
        query = {"secretId": secret_id, "versionStage": stage}
        if force:
            query["refreshNow"] = "true"
        request = f"/secretsmanager/get?{urllib.parse.urlencode(query)}"
        if timeout_s < _EXTENSION_MIN_S:
            what = "no time was left to ask the secrets extension"
            raise out_of_time(secret_id, stage, what, budget_s=timeout_s, waited_s=0.0)
        started = time.monotonic()
        try:
            document = self._ask(request, timeout_s)
        except _ExtensionAnswer as answer:
            not_found = answer.code == "ResourceNotFoundException" or (
                answer.status == _NOT_FOUND and not answer.code
            )
            if not_found and stage != AWSCURRENT:
                return None  # no version carries that label now (any other 4xx is raised)
            kind = failure_kind(answer.code, answer.status)
            detail = f"the secrets extension answered {answer.status} {answer.code}".rstrip()
            raise read_failure(kind, secret_id, stage, detail) from None
        except OutOfTime as exc:
            waited = time.monotonic() - started
            raise out_of_time(
                secret_id, stage, exc.what, budget_s=timeout_s, waited_s=waited
            ) from None
        except (OSError, ValueError) as exc:
            detail = f"the secrets extension failed: {exc}"
            raise read_failure("transient", secret_id, stage, detail) from exc
        value = document.get("SecretString")
        if not isinstance(value, str):
            raise SecretFormatError(f"{stage} of {secret_id} holds no SecretString")
        self._cache.put(secret_id, stage, value)
        return value

    def _ask(self, path: str, timeout_s: float) -> Any:
        """The extension's JSON answer to ``GET path``, within ``timeout_s`` of wall-clock
        time (the socket is shut down at the deadline: a timeout per ``recv`` would let an
        answer sent a byte at a time run on).

        Raises
        ------
        _ExtensionAnswer
            It answered an HTTP error (its status and the AWS error code it passed on).
        OutOfTime
            No whole answer within ``timeout_s``.
        """
        # Here, not at the top: http.client costs ~20 ms of import (email), which an
        # application outside Lambda never needs.
        import http.client
        import urllib.parse

        parsed = urllib.parse.urlsplit(self.endpoint)
        conn = http.client.HTTPConnection(
            parsed.hostname or "localhost",
            parsed.port,
            timeout=min(_EXTENSION_TIMEOUT_S, timeout_s),
        )
        try:
            with shutting_down_at(min(_EXTENSION_TIMEOUT_S, timeout_s)) as deadline:
                watch(conn)
                try:
                    conn.request(
                        "GET",
                        f"{parsed.path.rstrip('/')}{path}",
                        headers={"X-Aws-Parameters-Secrets-Token": self._token},
                    )
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    if deadline.fired:
                        raise OutOfTime("the secrets extension did not answer") from None
                    raise OSError(str(exc) or type(exc).__name__) from exc
                if deadline.fired:
                    # Ended by the shutdown: cut short, never parsed.
                    raise OutOfTime("the secrets extension did not answer")
        finally:
            conn.close()
        if response.status >= 300:
            raise _ExtensionAnswer(response.status, _extension_error_code(body))
        return json.loads(body)


class _ExtensionAnswer(Exception):  # noqa: N818  # an answer, not a failure of ours
    def __init__(self, status: int, code: str) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code


# The extension answers from its cache or asks Secrets Manager: 5 s already means trouble.
_EXTENSION_TIMEOUT_S = 5.0
_EXTENSION_MIN_S = 0.1
_NOT_FOUND = 404


def _extension_error_code(body: bytes) -> str:
    """The AWS error code the extension passed on in its body, if any (it forwards
    Secrets Manager's answer: as JSON, or as text that starts with the code)."""
    try:
        found = json.loads(body or b"{}")
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        word = text.split(":", 1)[0].split(None, 1)[0] if text else ""
        return word if word.isalnum() and word.endswith(("Exception", "Failure")) else ""
    if not isinstance(found, dict):
        return ""
    code = found.get("__type") or found.get("Code") or found.get("code") or ""
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
