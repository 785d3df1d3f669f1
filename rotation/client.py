"""The application side: PostgreSQL connections from a rotated secret, that survive rotation.

Rotation is only half the job: the application must keep connecting while its password
changes. :func:`connect` reads the secret once and caches it (``max_age``); on an
authentication failure it re-reads past the cache and, for the single-user window in which
the database already has the AWSPENDING password but AWSCURRENT has not moved yet, also
tries AWSPENDING and then AWSPREVIOUS, retrying with backoff. Every other error is raised
at once, unchanged.

In a Lambda function with the AWS Parameters and Secrets Lambda Extension, secrets are read
through it (``localhost:2773``); everywhere else through boto3.

Example
-------
>>> from rotation.client import connect
>>> with connect("myapp/prod/db", autocommit=True) as conn:
...     conn.execute("SELECT 1")

With a pool (``pip install psycopg-pool``)::

    from rotation.client import make_pool
    pool = make_pool("myapp/prod/db", min_size=2, max_size=10)
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rotation.config import extension_endpoint
from rotation.errors import (
    AuthenticationError,
    AuthMethodError,
    SecretFormatError,
    SecretsManagerError,
)
from rotation.pg.login import auth_method_problem, login_failure_reason, refused_credential
from rotation.pg.secret import PostgresSecret, parse_postgres_secret
from rotation.pg.settings import PostgresSettings
from rotation.pg.tls import at_least, resolve_sslmode, tls_parameters
from rotation.retry import Deadline, RetryPolicy, call_with_retries
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretVersion

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "ExtensionSource",
    "RotatingCredentials",
    "SecretSource",
    "SecretsManagerSource",
    "connect",
    "credentials",
    "default_source",
    "make_pool",
]

DEFAULT_MAX_AGE_S = 300
# How long an application waits, at most, for credentials that log in: long enough to span a
# single-user rotation's set-to-finish window, short enough to surface a real problem.
DEFAULT_RETRY = RetryPolicy(attempts=4, initial_wait_s=0.2, max_wait_s=2.0, jitter_s=0.1)


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
    sleeping. The client is made on first use (botocore's standard retries; see
    :func:`rotation.clients.secrets_manager_client`) unless one is given.
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
                from rotation.clients import secrets_manager_client  # noqa: PLC0415

                self._client = secrets_manager_client(retries=True)
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
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException" and stage != AWSCURRENT:
                return None  # no version carries that label now
            # AWS error messages name resources and actions, never secret values.
            message = exc.response.get("Error", {}).get("Message", "")
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


def default_source(max_age_s: int = DEFAULT_MAX_AGE_S) -> SecretSource:
    """The extension when it listens (inside a Lambda that has it), else boto3."""
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


@dataclass(frozen=True)
class _Candidate:
    stage: str
    secret: PostgresSecret

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        s = self.secret
        return (s.host, s.username, s.port, s.dbname, s.password)


# Connection keywords an application's ``connect(**kwargs)`` may not override: they carry
# the contract's TLS floor and authentication rules.
_PROTECTED = frozenset({"sslmode", "require_auth"})


class _AllRefusedError(Exception):
    """Internal: every labelled credential was refused this round; worth another round."""


class RotatingCredentials:
    """Connections for one secret, with the credential-picking logic described above.

    Parameters
    ----------
    secret_id:
        Name or ARN.
    source:
        Where values come from (:func:`default_source` unless given).
    settings:
        TLS trust roots and timeouts (``PGSSLROOTCERT``, ``PGCONNECT_TIMEOUT``).
    retry:
        How long to keep trying when every labelled credential is refused.
    clock:
        Monotonic seconds; bounds the retries (inject one in tests, with ``retry.sleep``).
    """

    def __init__(
        self,
        secret_id: str,
        *,
        source: SecretSource | None = None,
        settings: PostgresSettings | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self.clock = clock
        self.source = source or default_source()
        self._settings = settings
        self.retry = retry
        self._preferred: _Candidate | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> PostgresSettings:
        if self._settings is None:
            self._settings = PostgresSettings.from_env(os.environ)
        return self._settings

    def _candidate(self, stage: str, *, force: bool) -> _Candidate | None:
        raw = self.source.get(self.secret_id, stage, force=force)
        if raw is None:
            return None
        value = SecretVersion("", "", raw, stage).json()
        return _Candidate(stage, parse_postgres_secret(value, f"the {stage} version"))

    def parameters(self, candidate: _Candidate, extra: Mapping[str, Any]) -> dict[str, Any]:
        """``psycopg.connect`` keyword arguments: the candidate's credential, then the
        caller's ``extra``, which may ask for stronger TLS but never for weaker, and may not
        change ``require_auth`` (``PGREQUIREAUTH`` is the documented override)."""
        secret = candidate.secret
        sslmode = at_least(resolve_sslmode(extra.get("sslmode", secret.sslmode)), secret.sslmode)
        params: dict[str, Any] = {
            "host": secret.host,
            "port": secret.port,
            "dbname": secret.dbname,
            "user": secret.username,
            "password": secret.password,
            "connect_timeout": self.settings.connect_timeout_s,
            # Never a cleartext password, and never a server that asks for none (see
            # rotation.pg.settings).
            "require_auth": self.settings.require_auth,
            **tls_parameters(sslmode, self.settings),
        }
        params.update((k, v) for k, v in extra.items() if k not in _PROTECTED)
        return params

    def current_parameters(self, **extra: Any) -> dict[str, Any]:
        """``psycopg.connect`` keyword arguments for AWSCURRENT from the cache (usable as a
        pool's callable ``kwargs``, without the fallbacks of :meth:`connect`)."""
        candidate = self._candidate(AWSCURRENT, force=False)
        assert candidate is not None  # noqa: S101  # AWSCURRENT always exists
        return self.parameters(candidate, extra)

    def _round(
        self, connect: Callable[..., psycopg.Connection[Any]], extra: Mapping[str, Any]
    ) -> psycopg.Connection[Any]:
        refused: list[str] = []
        tried: set[tuple[str, str, int, str, str]] = set()
        # The TLS floor: no version is tried with weaker TLS than the newest AWSCURRENT read.
        floor = {"mode": "disable"}

        def current(*, force: bool) -> _Candidate | None:
            found = self._candidate(AWSCURRENT, force=force)
            if found is not None:
                floor["mode"] = found.secret.sslmode
            return found

        def candidates() -> Any:
            # The cached AWSCURRENT first: no API call within max_age, and the application
            # follows AWSCURRENT as soon as its cache does.
            yield current(force=False)
            # Then what worked last (e.g. AWSPENDING a moment ago, in the single-user window).
            yield self._preferred
            # Refused: the secret may have rotated since we cached it.
            yield current(force=True)
            # The single-user window: the database has AWSPENDING, AWSCURRENT not moved yet.
            yield self._candidate(AWSPENDING, force=True)
            yield self._candidate(AWSPREVIOUS, force=True)

        for found in candidates():
            if found is None:
                continue
            candidate = _Candidate(found.stage, found.secret.with_tls_floor(floor["mode"]))
            if candidate.key in tried:
                continue
            tried.add(candidate.key)
            try:
                conn = connect(**self.parameters(candidate, extra))
            except Exception as exc:
                problem = auth_method_problem(exc, f"{candidate.stage} of {self.secret_id}")
                if problem is not None:
                    # Not chained: the driver's error holds the password in its ``pgconn``.
                    raise AuthMethodError(problem) from None
                if not refused_credential(exc):
                    raise  # unreachable, TLS, anything else: unchanged
                refused.append(f"{candidate.stage}: {login_failure_reason(exc)}")
                continue
            with self._lock:
                self._preferred = candidate
            return conn
        raise _AllRefusedError("; ".join(refused))

    def connect(
        self, connect: Callable[..., psycopg.Connection[Any]] | None = None, **extra: Any
    ) -> psycopg.Connection[Any]:
        """A connection with whichever labelled credential the database accepts.

        Raises
        ------
        AuthenticationError
            When no labelled version logs in after the retries (the message lists what
            each version got from the server; never a password).
        """
        if connect is None:
            import psycopg  # noqa: PLC0415

            connect = psycopg.connect
        rounds = {"n": 0}

        def attempt() -> psycopg.Connection[Any]:
            rounds["n"] += 1
            return self._round(connect, extra)

        try:
            return call_with_retries(
                attempt,
                retry_on=_AllRefusedError,
                deadline=Deadline.in_seconds(60, clock=self.clock),
                policy=self.retry,
                what=f"connecting with {self.secret_id}",
            )
        except _AllRefusedError as exc:
            # Not chained: the message already says what each version got, and the driver's
            # errors hold the attempted passwords in their ``pgconn``.
            raise AuthenticationError(
                f"no labelled version of {self.secret_id} logs in after {rounds['n']} "
                f"rounds ({exc})"
            ) from None


_registry: dict[str, RotatingCredentials] = {}
_registry_lock = threading.Lock()


def credentials(secret_id: str, **options: Any) -> RotatingCredentials:
    """The process-wide :class:`RotatingCredentials` for ``secret_id`` (made on first use)."""
    with _registry_lock:
        if secret_id not in _registry:
            _registry[secret_id] = RotatingCredentials(secret_id, **options)
        return _registry[secret_id]


def connect(secret_id: str, **connect_kwargs: Any) -> psycopg.Connection[Any]:
    """A psycopg connection for the secret; extra keyword arguments go to ``psycopg.connect``."""
    return credentials(secret_id).connect(**connect_kwargs)


def make_pool(
    secret_id: str, *, credentials_: RotatingCredentials | None = None, **pool_kwargs: Any
) -> psycopg_pool.ConnectionPool[Any]:
    """A ``psycopg_pool.ConnectionPool`` whose new connections pick credentials like
    :func:`connect`, so the pool follows rotations without restarting the application."""
    import psycopg  # noqa: PLC0415
    import psycopg_pool  # noqa: PLC0415

    source = credentials_ or credentials(secret_id)

    class RotatingConnection(psycopg.Connection[Any]):
        rotating: ClassVar[RotatingCredentials] = source

        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> RotatingConnection:
            base = super().connect

            def open_with(**params: Any) -> psycopg.Connection[Any]:
                return base(conninfo, **params)

            return cls.rotating.connect(open_with, **kwargs)  # type: ignore[return-value]

    return psycopg_pool.ConnectionPool(connection_class=RotatingConnection, **pool_kwargs)
