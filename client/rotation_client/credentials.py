"""Credentials for one secret that survive rotation: which labelled version logs in.

One round of a ``connect()`` tries, in this order, each credential at most once:

1. the credential that logged in last, while AWSCURRENT is still what it was then (after a
   single-user rotation's first refused login moved us to AWSPENDING, later connections go
   there first instead of being refused with the stale AWSCURRENT again), else the cached
   AWSCURRENT (the application follows AWSCURRENT as soon as its cache does);
2. the other of those two;
3. AWSCURRENT read past the cache (the secret may have rotated since we cached it);
4. AWSPENDING (the single-user window: the database has the pending password, AWSCURRENT
   has not moved yet), then AWSPREVIOUS.

Every credential but AWSCURRENT itself must log in where AWSCURRENT does: the same host,
port and database, and the same user or its pair's other user (``<user>`` /
``<user>_clone``, multi-user rotation). Any other is never tried, and is logged once (no
value) as a sign the secret was edited: after a migration done by editing the secret, a
refused AWSCURRENT must not move the application back to the old database, and a planted
AWSPENDING must not steer it to another server (the rotation function refuses the same,
:func:`rotation_contract.pg.secret.check_same_target`).

Steps 3 and 4 are *forced refreshes*, which :class:`~rotation_client._versions.
LabelledVersions` makes single-flight and rate-limited per process (herd safety). How a
failed login goes on depends on why it failed (:mod:`rotation_contract.pg.login`):

- the server refused the credential: the next credential, then another round (with what
  may have changed: a refused credential is not tried again within one ``connect()``);
- the server took no login (starting up, too many connections) or did not answer: another
  round after a backoff, within the caller's time (``ConnectRetry.timeout_s``); in the end
  the driver's own ``OperationalError`` is raised, as a pool or framework expects;
- anything about the configuration (TLS, pg_hba.conf, the database, an authentication
  method ``require_auth`` refuses): raised at once, with the classified message and fix.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rotation_client import _login
from rotation_client._aws import MIN_READ_S
from rotation_client._config import DEFAULT_MAX_AGE_S, postgres_settings
from rotation_client._retry import ConnectRetry, RefreshPolicy, check_budget
from rotation_client._versions import LabelledVersions
from rotation_client.sources import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    SecretsManagerSource,
    SecretSource,
    default_source,
)
from rotation_contract.errors import ConnectTimeoutError, SecretFormatError, SecretReadTimeoutError
from rotation_contract.pg.errors import AuthenticationError, AuthMethodError
from rotation_contract.pg.login import (
    auth_method_problem,
    classify_login,
    login_error_class,
    login_failure_reason,
    login_problem,
)
from rotation_contract.pg.resolve import Resolver, system_resolver
from rotation_contract.pg.secret import PostgresSecret, parse_postgres_secret, target_mismatch
from rotation_contract.pg.settings import CHANNEL_BINDINGS, PostgresSettings
from rotation_contract.pg.tls import at_least, resolve_sslmode, tls_parameters

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "FROM_SECRET",
    "LoginAttempt",
    "RotatingCredentials",
    "check_connect_kwargs",
    "check_pool_kwargs",
    "credentials",
]

# Connection keywords an application's ``connect(**kwargs)`` may not override: they carry
# the contract's TLS floor and authentication rules (a caller's sslmode and channel_binding
# may only raise them) and the budget (a caller's connect_timeout may only lower it).
_PROTECTED = frozenset({"sslmode", "require_auth", "channel_binding", "connect_timeout"})
# Connection keywords that name the login. The secret supplies them: a caller's value would
# replace the rotated credential (or where it logs in), and connections would stop following
# rotations, or send the secret's password to another server.
FROM_SECRET = frozenset(
    {"user", "password", "host", "hostaddr", "port", "dbname", "conninfo", "passfile", "service"}
)
# Off-target versions remembered as logged (a bound, not a value: forgetting logs again).
_OFF_TARGET_KEPT = 64


@dataclass(frozen=True)
class _Candidate:
    stage: str
    # Never in a repr: the whole secret value, password included.
    raw: str = field(repr=False)
    secret: PostgresSecret  # its repr leaves the password out

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        s = self.secret
        return (s.host, s.username, s.port, s.dbname, s.password)

    @classmethod
    def parse(cls, stage: str, raw: str) -> _Candidate:
        what = f"the {stage} version"
        try:
            value = json.loads(raw)
        except ValueError:
            # Never quote the value: it is a password.
            raise SecretFormatError(f"{what} is not JSON") from None
        if not isinstance(value, dict):
            raise SecretFormatError(f"{what} is not a JSON object")
        return cls(stage, raw, parse_postgres_secret(value, what))


@dataclass(frozen=True)
class _Working:
    """The credential that logged in last, and the AWSCURRENT value known at that time."""

    candidate: _Candidate
    current_raw: str = field(repr=False)  # a secret value: never in a repr


def check_connect_kwargs(
    extra: Mapping[str, Any], *, allowed: Collection[str] = (), where: str = "connect()"
) -> None:
    """Refuse the connection keywords that would replace the secret's credential, a
    caller's ``require_auth``, and a ``channel_binding`` that would lower the client's
    (``disable``; ``prefer`` and ``require`` are taken).

    ``allowed`` names keys the caller's own configuration may set (Django's ``NAME``,
    ``HOST``, ``PORT``, as its test runner needs); ``where`` names what was called.

    Raises
    ------
    TypeError
        Naming the keyword, why it is refused, and the fix.
    """
    for key in sorted(extra):
        if key in FROM_SECRET and key not in allowed:
            raise TypeError(
                f"{where}: {key}= is refused: the secret supplies the login ({key} included), "
                f"and a value given here would replace the rotated credential, so connections "
                f"would stop following rotations; remove {key}= (change the secret instead)"
            )
        if key == "require_auth":
            raise TypeError(
                f"{where}: require_auth= is refused: the client sets libpq's require_auth "
                "itself (never a cleartext password, never a server that asks for none); "
                "remove it, or, to accept that risk deliberately, set PGREQUIREAUTH in the "
                "environment"
            )
        if key == "channel_binding":
            _check_channel_binding(extra[key], where)


def _check_channel_binding(value: object, where: str) -> None:
    mode = value.strip().lower() if isinstance(value, str) else value
    if mode not in CHANNEL_BINDINGS:
        raise TypeError(
            f"{where}: channel_binding={value!r} is not a libpq channel binding mode; use "
            "'require' (or remove it: the client uses 'prefer')"
        )
    if mode == "disable":
        raise TypeError(
            f"{where}: channel_binding='disable' is refused: it would lower the client's "
            "channel binding ('prefer': SCRAM bound to the TLS session whenever the server "
            "offers it), so a man in the middle holding a certificate the client trusts could "
            "relay the login; remove it (or pass 'require' for more), or, to accept that risk "
            "deliberately, set PGCHANNELBINDING=disable in the environment"
        )


def check_pool_kwargs(pool_kwargs: Mapping[str, Any], *, where: str) -> None:
    """:func:`check_connect_kwargs` for a pool's arguments: its ``conninfo`` (refused
    unless empty) and its ``kwargs`` (each new connection's keywords). A callable
    ``kwargs`` (psycopg_pool calls it for each new connection) is checked on each call,
    where the pool's connection class receives what it returned."""
    if pool_kwargs.get("conninfo"):
        check_connect_kwargs({"conninfo": pool_kwargs["conninfo"]}, where=where)
    kwargs = pool_kwargs.get("kwargs")
    if getattr(kwargs, "__func__", None) is RotatingCredentials.current_parameters:
        raise TypeError(
            f"{where}: kwargs=current_parameters is refused here: this pool already picks "
            "each connection's credentials (with the fallbacks); drop kwargs=, or give "
            "current_parameters to a plain psycopg_pool.ConnectionPool instead"
        )
    if callable(kwargs):
        return
    check_connect_kwargs(kwargs or {}, where=where)


class RotatingCredentials:
    """Connections for one secret, with the credential-picking logic described above.

    Parameters
    ----------
    secret_id:
        Name or ARN.
    source:
        Where values come from (:func:`~rotation_client.default_source` unless given).
    client:
        A boto3 ``secretsmanager`` client to read through, when no ``source`` is given.
    max_age_s:
        How long a read value is cached, when no ``source`` is given.
    settings:
        TLS trust roots, timeouts and ``require_auth`` (``PGSSLROOTCERT``,
        ``PGCONNECT_TIMEOUT``, ``PGREQUIREAUTH``), from the environment unless given.
    retry:
        How long one ``connect()`` keeps trying (:class:`~rotation_client.ConnectRetry`).
    refresh:
        How often this process reads a label past the cache
        (:class:`~rotation_client.RefreshPolicy`).
    clock:
        Monotonic seconds; bounds the retries and paces the refreshes (inject one in tests,
        with ``retry.sleep``).
    resolver:
        Resolves the secret's host name within the time a ``connect()`` has left (the
        system's resolver unless given; see :mod:`rotation_contract.pg.resolve`).
    """

    def __init__(
        self,
        secret_id: str,
        *,
        source: SecretSource | None = None,
        client: Any = None,
        max_age_s: int = DEFAULT_MAX_AGE_S,
        settings: PostgresSettings | None = None,
        retry: ConnectRetry | None = None,
        refresh: RefreshPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.secret_id = secret_id
        self.clock = clock
        self.resolver = resolver
        self.source = source or default_source(max_age_s, client=client)
        self._settings = settings
        self.retry = retry or ConnectRetry()
        self.versions = LabelledVersions(
            secret_id, self.source, clock=clock, policy=refresh or RefreshPolicy()
        )
        self._working: _Working | None = None
        self._lock = threading.Lock()
        # The off-target versions logged already (by their value's hash: no value kept).
        self._off_target: set[tuple[str, int]] = set()

    @property
    def settings(self) -> PostgresSettings:
        if self._settings is None:
            self._settings = postgres_settings()
        return self._settings

    def parameters(self, candidate: _Candidate, extra: Mapping[str, Any]) -> dict[str, Any]:
        """``psycopg.connect`` keyword arguments: the candidate's credential, then the
        caller's ``extra``, which may ask for stronger TLS or channel binding but never for
        weaker, may set a shorter ``connect_timeout`` but not a longer one, and may not
        change ``require_auth`` (``PGREQUIREAUTH`` is the documented override). A
        ``connect()`` cuts the timeout to its time left (:meth:`LoginAttempt.prepare`)."""
        secret = candidate.secret
        sslmode = at_least(resolve_sslmode(extra.get("sslmode", secret.sslmode)), secret.sslmode)
        timeout = self.settings.connect_timeout_s
        asked_timeout = _whole_seconds(extra.get("connect_timeout"))
        if asked_timeout is not None and asked_timeout > 0:
            timeout = min(timeout, asked_timeout)
        params: dict[str, Any] = {
            "host": secret.host,
            "port": secret.port,
            "dbname": secret.dbname,
            "user": secret.username,
            "password": secret.password,
            "connect_timeout": timeout,
            # Never a cleartext password, and never a server that asks for none (see
            # rotation_contract.pg.settings).
            "require_auth": self.settings.require_auth,
            **tls_parameters(sslmode, self.settings),
        }
        asked = extra.get("channel_binding")
        if isinstance(asked, str) and _stronger_binding(asked, params["channel_binding"]):
            params["channel_binding"] = asked.strip().lower()
        params.update((k, v) for k, v in extra.items() if k not in _PROTECTED)
        return params

    def current_parameters(self, **extra: Any) -> dict[str, Any]:
        """``psycopg.connect`` keyword arguments for AWSCURRENT from the cache (usable as a
        pool's callable ``kwargs``, without the fallbacks of :meth:`connect`)."""
        check_connect_kwargs(extra, where="current_parameters()")
        raw = self.versions.read(AWSCURRENT, timeout_s=self.retry.timeout_s)
        if raw is None:
            raise SecretFormatError(f"{self.secret_id} has no AWSCURRENT version")
        return self.parameters(_Candidate.parse(AWSCURRENT, raw), extra)

    def attempt(
        self,
        extra: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
        allowed: Collection[str] = (),
    ) -> LoginAttempt:
        """The state of one ``connect()``, for integrations that open connections their own
        way (an async driver, a framework's backend); :meth:`connect` shows the loop.

        Raises
        ------
        TypeError
            ``extra`` would replace the secret's credential (see
            :func:`check_connect_kwargs`; ``allowed`` as there).
        """
        check_connect_kwargs(extra, allowed=allowed)
        return LoginAttempt(self, extra, timeout_s=timeout_s)

    def connect(
        self,
        connect: Callable[..., psycopg.Connection[Any]] | None = None,
        *,
        timeout_s: float | None = None,
        **extra: Any,
    ) -> psycopg.Connection[Any]:
        """A connection with whichever labelled credential the database accepts.

        ``connect`` opens one connection from keyword arguments (``psycopg.connect`` unless
        given); ``timeout_s`` replaces ``retry.timeout_s`` for this call; ``extra`` goes to
        ``connect`` after the credential's own arguments.

        Raises
        ------
        AuthenticationError
            When no labelled version logs in after the retries (the message lists what
            each version got from the server; never a password).
        TlsError, LoginConfigurationError, AuthMethodError
            At once, for a cause that no other credential or retry can fix.
        psycopg.OperationalError
            The server took no login or did not answer until the time ran out.
        TypeError
            ``extra`` would replace the secret's credential (``user``, ``password``,
            ``host``, ``dbname``...) or set ``require_auth`` (see
            :func:`check_connect_kwargs`).
        """
        return self.connect_with(connect, extra, timeout_s=timeout_s)

    def connect_with(
        self,
        connect: Callable[..., psycopg.Connection[Any]] | None,
        extra: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
        allowed: Collection[str] = (),
    ) -> psycopg.Connection[Any]:
        """:meth:`connect`, with ``extra`` as a mapping and ``allowed`` naming the
        connection keywords the caller's own configuration may set (see
        :func:`check_connect_kwargs`)."""
        if isinstance(connect, str):
            # A positional conninfo string, as psycopg.connect takes one.
            check_connect_kwargs({"conninfo": connect})
        if connect is None:
            import psycopg

            connect = psycopg.connect
        attempt = self.attempt(extra, timeout_s=timeout_s, allowed=allowed)
        while True:
            params = attempt.next_parameters()
            if params is None:
                self.retry.sleep(attempt.next_wait())  # raises when out of rounds or time
                continue
            error: BaseException | None = None
            try:
                conn = attempt.login(connect, params)
            except Exception as exc:  # failed() says what must not go on
                error = attempt.failed(exc)
            else:
                attempt.succeeded()
                return conn
            # Raised here, outside the except block: raised inside it, our error's
            # __context__ would be the driver's, whose ``pgconn`` holds the password.
            if error is not None:
                raise error

    # -- what the attempts share -----------------------------------------------------------

    def _first_choices(self, current: _Candidate | None) -> list[_Candidate]:
        with self._lock:
            working = self._working
        if working is None:
            return [current] if current is not None else []
        candidate, current_then = working.candidate, working.current_raw
        if current is None:
            return [candidate]
        if current.raw in (current_then, candidate.raw):
            return [candidate, current]  # AWSCURRENT has not moved since it logged in
        return [current, candidate]

    def _worked(self, candidate: _Candidate, current_raw: str | None) -> None:
        with self._lock:
            self._working = _Working(candidate, current_raw or candidate.raw)

    def _refused(self, candidate: _Candidate) -> None:
        with self._lock:
            if self._working is not None and self._working.candidate.raw == candidate.raw:
                self._working = None

    def _on_target(self, current: _Candidate | None, candidate: _Candidate) -> bool:
        """Whether ``candidate`` logs in where ``current`` (AWSCURRENT) does; an off-target
        one is logged once per value, and never tried."""
        if current is None:
            return False  # no AWSCURRENT to compare with: no fallback either
        if candidate.raw == current.raw:
            return True
        field_name = target_mismatch(current.secret, candidate.secret, users="pair")
        if field_name is None:
            return True
        with self._lock:
            seen = (candidate.stage, hash(candidate.raw))
            if seen in self._off_target:
                return False
            if len(self._off_target) >= _OFF_TARGET_KEPT:
                self._off_target.clear()
            self._off_target.add(seen)
        # Here, not at import: importing the client touches no logger. Names only.
        logging.getLogger(__name__).warning(
            "%s: %s names another %s than AWSCURRENT: it is never tried (a sign the secret "
            "was edited by hand, or a version planted; fix or remove that version)",
            self.secret_id,
            "an earlier AWSCURRENT" if candidate.stage == AWSCURRENT else candidate.stage,
            field_name,
        )
        return False


class LoginAttempt:
    """One ``connect()`` in progress: which credential next, and what a failure means.

    Driven by a loop (see :meth:`RotatingCredentials.connect`): :meth:`next_parameters`
    gives the next credential's connection arguments, or None when the round is over;
    the caller reports :meth:`failed` or :meth:`succeeded`, and between rounds waits
    :meth:`next_wait` seconds (which raises when it is time to give up). Reading the
    secret may call Secrets Manager: an async caller runs :meth:`next_parameters` in a
    thread.
    """

    def __init__(
        self,
        credentials: RotatingCredentials,
        extra: Mapping[str, Any],
        *,
        timeout_s: float | None = None,
    ) -> None:
        self._creds = credentials
        self._extra = extra
        self._clock = credentials.clock
        self._retry = credentials.retry
        budget = self._retry.timeout_s if timeout_s is None else timeout_s
        check_budget(budget, "timeout_s", where=f"connect() of {credentials.secret_id}")
        self._budget = budget
        self._deadline = self._clock() + budget
        # Time spent reading Secrets Manager, for the message when the budget runs out.
        self._reading_s = 0.0
        self._refused_rounds = 0
        self._rounds = 0
        # What the server refused in this connect(), kept across rounds: a refused password
        # stays refused (nobody sets a password back), so a later round does not knock with
        # it again; what each label got, for the final error.
        self._refused_keys: set[tuple[str, str, int, str, str]] = set()
        self._refused: dict[str, str] = {}
        self._transient: Exception | None = None
        self._candidates: Iterator[_Candidate] | None = None
        self._trying: _Candidate | None = None
        self._current_raw: str | None = None

    def time_left(self) -> float:
        return max(self._deadline - self._clock(), 0.0)

    def next_parameters(self) -> dict[str, Any] | None:
        """The next credential's ``connect`` arguments; None when this round is over."""
        if self._candidates is None:
            self._rounds += 1
            self._transient = None
            self._candidates = self._round()
        started = self._clock()
        error: Exception | None = None
        try:
            self._trying = next(self._candidates, None)
        except SecretReadTimeoutError as exc:
            self._candidates = iter(())
            error = self._ran_out_reading(exc)
        finally:
            self._reading_s += self._clock() - started
        if error is not None:
            raise error
        if self._trying is None:
            return None
        return self._creds.parameters(self._trying, self._extra)

    def prepare(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
        """``params`` made ready for one login within the time left: the host name
        resolved (``hostaddr``, with ``host`` kept for verify-full) and ``connect_timeout``
        cut so that psycopg's own bound ends in time. Also the seconds to wait for the login
        at most, when psycopg's bound cannot end in time (its 2 s minimum) and the caller
        must bound it (:func:`~rotation_client._login.call_within`, ``asyncio.wait_for``);
        None when psycopg's bound suffices. Blocking (the resolver): an async caller runs it
        in a thread.

        Raises
        ------
        ConnectTimeoutError
            Too little time was left to start a login, or the resolver did not answer in
            the time left.
        psycopg.OperationalError
            The name did not resolve, or the resolver did not answer within the connect
            timeout (as psycopg says it, for :meth:`failed`: another round may do better).
        """
        import psycopg

        ready = dict(params)
        left = self._time_to_log_in()
        configured = int(ready["connect_timeout"])
        dns_s = min(float(configured), left)
        try:
            ready.update(_login.addresses(ready, timeout_s=dns_s, resolver=self._creds.resolver))
        except TimeoutError:
            if dns_s >= left:
                raise self._out_of_time(
                    f"the DNS resolver did not answer for {ready['host']!r} in the "
                    f"{left:.1f} s left"
                ) from None
            raise psycopg.OperationalError(
                f"failed to resolve host {ready['host']!r}: the DNS resolver did not answer "
                f"within {dns_s:.1f} s (the connect timeout)"
            ) from None
        except OSError as exc:
            # psycopg's own words for it, so that it is classified as before.
            raise psycopg.OperationalError(
                f"failed to resolve host {ready['host']!r}: {exc}"
            ) from None
        left = self._time_to_log_in()
        fitting = _login.fitting_timeout(configured, left, _login.attempts(ready))
        if fitting is not None:
            ready["connect_timeout"] = fitting
            return ready, None
        # The abandoned login (if it comes to that) ends on this timeout on its own.
        ready["connect_timeout"] = _login.MIN_CONNECT_TIMEOUT_S
        return ready, left

    def login(
        self, connect: Callable[..., psycopg.Connection[Any]], params: Mapping[str, Any]
    ) -> psycopg.Connection[Any]:
        """``connect(**params)`` for the credential from :meth:`next_parameters`, ended
        within the time left (see :meth:`prepare`).

        Raises
        ------
        ConnectTimeoutError
            No login could be started or finished in the time left.
        """
        ready, wait_s = self.prepare(params)
        if wait_s is None:
            return connect(**ready)
        try:
            return _login.call_within(lambda: connect(**ready), wait_s, discard=_login.close_late)
        except TimeoutError:
            raise self.login_timed_out(ready, wait_s) from None

    def login_timed_out(self, params: Mapping[str, Any], waited_s: float) -> ConnectTimeoutError:
        """The error for a login cut after ``waited_s`` seconds (the time that was left)."""
        where = f"{params.get('host')}:{params.get('port')}"
        return self._out_of_time(
            f"the server at {where} did not finish the login in the {waited_s:.1f} s left"
        )

    def _time_to_log_in(self) -> float:
        left = self.time_left()
        if left < _login.MIN_LOGIN_S:
            raise self._out_of_time(f"{left:.2f} s was left, too little to start a login")
        return left

    def _out_of_time(self, what: str) -> ConnectTimeoutError:
        stage = self._trying.stage if self._trying is not None else "a credential"
        return ConnectTimeoutError(
            f"connect() of {self._creds.secret_id} ran out of its budget of "
            f"{self._budget:.1f} s before the login as {stage} could finish: {what} "
            f"(Secrets Manager reads took {self._reading_s:.1f} s of it, over {self._rounds} "
            "round(s) of logins). Give connect() more time (ConnectRetry(timeout_s=...) or "
            "timeout_s=), or find what is slow: Secrets Manager (its endpoint, the network "
            "path to it), the DNS resolver, or the database server"
        )

    def _ran_out_reading(self, exc: SecretReadTimeoutError) -> Exception:
        """The error for a connect() whose time ran out while it read the secret: what the
        server refused so far (an AuthenticationError listing it), else the timeout."""
        if not self._refused:
            return self._out_of_time(f"reading the secret was cut ({exc.problem})")
        return AuthenticationError(
            f"no labelled version of {self._creds.secret_id} logs in ({self._refusals()}); "
            f"the budget of {self._budget:.1f} s ran out after {self._rounds} round(s), while "
            "the secret was read again. If a rotation is under way, a later connect() gets "
            "the new password; if not, the secret's password does not match the database: "
            "fix the secret (or the role's password)"
        )

    def _round(self) -> Iterator[_Candidate]:
        versions = self._creds.versions
        tried_keys = set(self._refused_keys)
        tried_raw: set[str] = set()
        # The TLS floor: no version is tried with weaker TLS than the newest AWSCURRENT read,
        # and none that logs in elsewhere than it (the target).
        floor = "disable"
        reference: _Candidate | None = None

        def current(raw: str | None) -> _Candidate | None:
            nonlocal floor, reference
            if raw is None:
                return None
            found = _Candidate.parse(AWSCURRENT, raw)
            floor, self._current_raw, reference = found.secret.sslmode, raw, found
            return found

        def labelled(stage: str) -> _Candidate | None:
            # Another thread's read of the label is waited for within the caller's time.
            raw = versions.refresh(stage, tried_raw, timeout_s=self.time_left())
            if stage == AWSCURRENT:
                return current(raw)
            return None if raw is None else _Candidate.parse(stage, raw)

        cached = versions.read(AWSCURRENT, timeout_s=self.time_left())
        first = self._creds._first_choices(current(cached))
        sources: list[Callable[[], _Candidate | None]] = [
            *((lambda c=c: c) for c in first),
            *((lambda s=s: labelled(s)) for s in (AWSCURRENT, AWSPENDING, AWSPREVIOUS)),
        ]
        for source in sources:
            found = source()
            if found is None:
                continue
            tried_raw.add(found.raw)
            if not self._creds._on_target(reference, found):
                continue
            candidate = _Candidate(found.stage, found.raw, found.secret.with_tls_floor(floor))
            if candidate.key in tried_keys:
                continue
            tried_keys.add(candidate.key)
            yield candidate

    def failed(self, exc: Exception) -> BaseException | None:
        """The credential from :meth:`next_parameters` did not log in: None to go on, or
        the error to raise.

        The caller raises it *after* its ``except`` block: raised inside it, the error's
        ``__context__`` would be the driver's error, whose ``pgconn`` holds the password.
        """
        import psycopg

        candidate = self._trying
        assert candidate is not None  # noqa: S101  # failed() follows next_parameters()
        if not isinstance(exc, psycopg.OperationalError):
            return exc  # a bad keyword argument, a bug: not a login failure
        who = f"{candidate.stage} of {self._creds.secret_id}"
        problem = auth_method_problem(exc, who)
        if problem is not None:
            return _unchained(AuthMethodError(problem))
        failure = classify_login(exc)
        if failure.refused_credential:
            self._creds._refused(candidate)
            self._refused_keys.add(candidate.key)
            self._refused[candidate.stage] = login_failure_reason(exc)
            return None
        if failure.transient:
            # The server, not the credential: another credential cannot help now.
            self._transient = exc
            self._candidates = iter(())
            return None
        # A configuration cause: the same for every credential of the secret, so raised at
        # once.
        return _unchained(login_error_class(failure)(login_problem(failure, exc, who)))

    def succeeded(self) -> None:
        """The credential from :meth:`next_parameters` logged in: later connections start
        with it while AWSCURRENT stays what it is now."""
        assert self._trying is not None  # noqa: S101
        self._creds._worked(self._trying, self._current_raw)

    def next_wait(self) -> float:
        """Seconds to wait before the next round.

        Raises
        ------
        AuthenticationError
            Every credential was refused, in ``retry.rounds`` rounds or until the time ran
            out.
        psycopg.OperationalError
            The last round's failure, when the server took no login until the time ran out.
        """
        self._candidates = None
        transient = self._transient
        if transient is None:
            self._refused_rounds += 1
        wait = self._retry.wait_before(self._rounds + 1)
        # After the wait, a round needs time for a read of the secret and a login.
        out_of_time = wait + MIN_READ_S + _login.MIN_LOGIN_S >= self.time_left()
        if transient is not None and out_of_time:
            raise transient
        if transient is None and (out_of_time or self._refused_rounds >= self._retry.rounds):
            # Not chained: the message already says what each version got, and the driver's
            # errors hold the attempted passwords in their ``pgconn``.
            ran_out = (
                f"; the budget of {self._budget:.1f} s left no time for another round"
                if self._refused_rounds < self._retry.rounds
                else ""
            )
            raise AuthenticationError(
                f"no labelled version of {self._creds.secret_id} logs in after "
                f"{self._rounds} rounds ({self._refusals()}){ran_out}. If a rotation is "
                "under way, a later connect() gets the new password; if not, the secret's "
                "password does not match the database: fix the secret (or the role's "
                "password)"
            ) from None
        return wait

    def _refusals(self) -> str:
        said = "; ".join(f"{stage}: {reason}" for stage, reason in self._refused.items())
        return said or "no version found"


def _whole_seconds(value: object) -> int | None:
    """A ``connect_timeout`` as psycopg reads it (``int(float(value))``); None when absent
    or unreadable (psycopg then raises its own error for it)."""
    if value is None:
        return None
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _stronger_binding(asked: str, current: str) -> bool:
    """Whether channel binding mode ``asked`` is stronger than ``current`` (libpq's modes,
    weakest first: ``disable``, ``prefer``, ``require``)."""
    mode = asked.strip().lower()
    if mode not in CHANNEL_BINDINGS:
        return False
    return CHANNEL_BINDINGS.index(mode) > CHANNEL_BINDINGS.index(current)


def _unchained(error: Exception) -> Exception:
    """``error`` marked to show no chained error: the driver's errors hold the attempted
    password in their ``pgconn``, and the message already says what the server said."""
    error.__cause__ = None
    error.__suppress_context__ = True
    return error


# The process-wide credentials: one per secret and secret store, the least recently used
# dropped past _REGISTRY_SIZE (a pool or engine keeps its own object alive; a later call
# then makes a new one). The key names the store by what it is, not by the Python object
# that reaches it (see _store_key): an application that builds a boto3 client per call
# gets one entry, not one per client.
_REGISTRY_SIZE = 256
_registry: OrderedDict[tuple[str, tuple[Any, ...]], tuple[RotatingCredentials, dict[str, Any]]] = (
    OrderedDict()
)
_registry_lock = threading.Lock()
# What an option not given at first amounts to, for comparing a later call's.
_DEFAULTS: dict[str, Any] = {"max_age_s": DEFAULT_MAX_AGE_S}


def _client_identity(client: Any) -> tuple[Any, ...] | None:
    """A boto3 client's store: its endpoint, region and access key id (another account or
    principal may see another secret under the same name). None when not readable."""
    meta = getattr(client, "meta", None)
    get_credentials = getattr(client, "_get_credentials", None)  # botocore's own accessor
    if meta is None or not callable(get_credentials):
        return None
    try:
        found = get_credentials()
    except Exception:  # a provider that fails now fails on the first read
        return None
    if found is None:
        return ("client", meta.endpoint_url, meta.region_name, None)
    if not callable(getattr(found, "refresh_needed", None)):
        # Static credentials: the access key is a plain attribute.
        return ("client", meta.endpoint_url, meta.region_name, found.access_key)
    # Temporary credentials (a role from the container endpoint, STS, a profile): reading
    # ``access_key`` would fetch or refresh them here, outside any budget. The key known
    # already (without a fetch) names the principal; none yet (a role assumed on first
    # use): the credentials object itself, held by the entry so its id is not reused.
    known = getattr(found, "_access_key", None)
    if isinstance(known, str) and known:
        return ("client", meta.endpoint_url, meta.region_name, known)
    return ("client-credentials", meta.endpoint_url, meta.region_name, id(found), found)


def _store_key(options: Mapping[str, Any]) -> tuple[Any, ...]:
    """What names the secret store of ``options``: a boto3 client by its identity (also
    inside a :class:`SecretsManagerSource` given one); any other object by itself, held by
    the registry entry so that its id cannot be reused while it is a key."""
    source, client = options.get("source"), options.get("client")
    if source is None and client is None:
        return ("default",)
    if source is not None:
        # Our own source class only: a subclass may read elsewhere than its client says.
        inner = source.client if type(source) is SecretsManagerSource else None
        found = None if inner is None else _client_identity(inner)
        store: tuple[Any, ...] = ("source", id(source)) if found is None else found
        max_age = getattr(source, "max_age_s", None)
        return (*store, "max_age", max_age) if found is not None else store
    found = _client_identity(client)
    return ("client-object", id(client)) if found is None else found


def registry_size() -> int:
    """How many process-wide credentials objects are held (for tests and diagnostics)."""
    with _registry_lock:
        return len(_registry)


def credentials(secret_id: str, **options: Any) -> RotatingCredentials:
    """The process-wide :class:`RotatingCredentials` for ``secret_id`` in one secret store
    (made on first use, with ``options``).

    A different store (another endpoint, region, or principal: a boto3 client with other
    credentials) gets its own object, since it may hold another secret of the same name.
    For the same store, later calls get the same object, whichever client or source object
    reaches it, so that every integration shares one cache and one single-flight refresh;
    reads go through the client the object was made with. At most 256 objects are held
    (the least recently used is dropped), so a process that builds a client per call does
    not grow.

    Raises
    ------
    TypeError
        A later call for the same secret and store asks for other options (a different
        ``max_age_s``, ``retry``...) than the object was made with: they could not apply.
    """
    key = (secret_id, _store_key(options))
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            made = RotatingCredentials(secret_id, **options)
            _registry[key] = (made, dict(options))
            if len(_registry) > _REGISTRY_SIZE:
                _registry.popitem(last=False)
            return made
        _registry.move_to_end(key)
        made, first = found
        for name, value in sorted(options.items()):
            if name in {"source", "client"}:
                continue
            before = first.get(name, _DEFAULTS.get(name))
            if value != before:
                raise TypeError(
                    f"credentials({secret_id!r}): {name}={value!r} differs from the "
                    f"process-wide credentials already made for this secret and store, with "
                    f"{name}={before!r}; give every use of one secret the same {name} (or "
                    "pass credentials_= a RotatingCredentials of your own)"
                )
        return made
