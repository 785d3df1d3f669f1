"""Credentials for one secret that survive rotation: which labelled version logs in.

:class:`RotatingCredentials` reads the secret through a :class:`~rotation.client.sources.
SecretSource` (cached for ``max_age``); on an authentication failure it re-reads past the
cache and, for the single-user window in which the database already has the AWSPENDING
password but AWSCURRENT has not moved yet, also tries AWSPENDING and then AWSPREVIOUS,
retrying with backoff. Every other error is raised at once, unchanged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rotation.client._config import postgres_settings
from rotation.client.sources import SecretSource, default_source
from rotation.errors import AuthenticationError, AuthMethodError
from rotation.pg.login import auth_method_problem, login_failure_reason, refused_credential
from rotation.pg.secret import PostgresSecret, parse_postgres_secret
from rotation.pg.settings import PostgresSettings
from rotation.pg.tls import at_least, resolve_sslmode, tls_parameters
from rotation.retry import Deadline, RetryPolicy, call_with_retries
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretVersion

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEFAULT_RETRY", "RotatingCredentials", "credentials"]

# How long an application waits, at most, for credentials that log in: long enough to span a
# single-user rotation's set-to-finish window, short enough to surface a real problem.
DEFAULT_RETRY = RetryPolicy(attempts=4, initial_wait_s=0.2, max_wait_s=2.0, jitter_s=0.1)


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
            self._settings = postgres_settings()
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
