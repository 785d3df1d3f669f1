"""Opening PostgreSQL connections for the strategies: TLS, authentication, timeouts, retries.

Two invariants of the contract hold here, for every login of a rotation:

* the TLS floor: no login uses weaker TLS than AWSCURRENT's mode (``floor``, required on
  every call, so that no strategy can forget it);
* no cleartext password: libpq's ``require_auth`` (default ``scram-sha-256,md5``,
  ``PGREQUIREAUTH`` overrides) refuses a server asking for a cleartext password or for none
  at all, before anything is sent: an
  :class:`~rotation_contract.pg.errors.AuthMethodError`, never retried.

Why a login failed is decided in :mod:`rotation_contract.pg.login`. A refused credential is an
:class:`AuthenticationError`, a fact to act on: never retried. A server that breaks the
authentication protocol (a SCRAM server signature that does not verify) is an impostor: an
:class:`~rotation_contract.pg.errors.ImpostorServerError`, raised at once by
:meth:`PostgresConnector.try_login` too, so that no other credential is offered to it. A
missing database, pg_hba.conf or TLS that cannot be set up are the same for every
credential: never retried either. A server that could not be reached, or that answered but
takes no login now (starting up, shutting down, full), is an :class:`UnreachableError`,
retried with backoff until the attempts or the step's time run out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from handlers.pg_bounds import bound
from handlers.pg_config import postgres_settings
from rotation.errors import DeadlineError
from rotation.observability import logger
from rotation.retry import Deadline, RetryPolicy, call_with_retries
from rotation_contract.pg.errors import AuthenticationError, DatabaseError, UnreachableError
from rotation_contract.pg.login import classify_login, login_error_class, login_problem
from rotation_contract.pg.resolve import Resolver, needs_resolution, resolve, system_resolver
from rotation_contract.pg.secret import MasterSecret, PostgresSecret
from rotation_contract.pg.settings import MIN_CONNECT_TIMEOUT_S, PostgresSettings
from rotation_contract.pg.tls import tls_parameters

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "APPLICATION_NAME",
    "ConnectFn",
    "PostgresConnector",
    "classify_login_failure",
    "session_options",
]

ConnectFn = Callable[..., "psycopg.Connection[Any]"]
APPLICATION_NAME = "secrets-rotation"
# Held by handlers.master only: the master's credential logs in through its session, whose
# every transaction pins search_path (tests/unit/test_authority_boundary.py checks the source).
_MASTER_SEAL = object()


def classify_login_failure(exc: psycopg.OperationalError, who: str) -> DatabaseError:
    """Turn a failed connection attempt into the error for its cause (see
    :mod:`rotation_contract.pg.login`), with a message that names the fix."""
    failure = classify_login(exc)
    return login_error_class(failure)(login_problem(failure, exc, who))


def session_options(host: str, deadline: Deadline, settings: PostgresSettings) -> dict[str, str]:
    """libpq ``options`` for the startup packet: ``PGOPTIONS`` when the operator set it, and
    nothing of ours.

    The step's bounds (``statement_timeout``, ``lock_timeout``) are set inside each
    transaction instead (:mod:`handlers.pg_bounds`): PgBouncer and RDS Proxy refuse an
    ``options`` startup parameter ("unsupported startup parameter: options"; "RDS Proxy
    currently doesn't support command-line options"), and a pooler in transaction pooling
    would hand a session-level setting to its next client. ``PGOPTIONS`` is the operator's:
    behind such a pooler, unset it (the login error says so).
    """
    del host, deadline  # the bounds are per transaction now; kept for the callers
    return {"options": settings.options} if settings.options else {}


class PostgresConnector:
    """Opens connections for the strategies.

    Parameters
    ----------
    settings:
        TLS roots and timeouts; by default from the environment, through the Lambda side's
        one place for it (:func:`handlers.pg_config.postgres_settings`).
    connect:
        ``psycopg.connect`` (the default) or anything with its signature; inject one to count
        connections. psycopg itself is imported on the first connection, not with this
        module: createSecret and finishSecret never need it, and it costs ~100 ms.
    retry_policy:
        How unreachable servers are retried (always bounded by the step's deadline).
    resolver:
        Resolves the secret's host name (the system's resolver unless given; inject one
        that never answers to test the bound). See :mod:`rotation_contract.pg.resolve`.
    """

    def __init__(
        self,
        settings: PostgresSettings | None = None,
        *,
        connect: ConnectFn | None = None,
        retry_policy: RetryPolicy | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._settings = settings
        self._connect = connect
        self.retry_policy = retry_policy or RetryPolicy()
        self._resolver = resolver

    @property
    def settings(self) -> PostgresSettings:
        # Resolved on first use, not at import: a bad setting fails a step with context.
        if self._settings is None:
            self._settings = postgres_settings()
        return self._settings

    def parameters(self, secret: PostgresSecret, deadline: Deadline) -> dict[str, Any]:
        """``psycopg.connect`` keyword arguments for ``secret``."""
        timeout = min(self.settings.connect_timeout_s, int(deadline.remaining()))
        return {
            "host": secret.host,
            "port": secret.port,
            "dbname": secret.dbname,
            "user": secret.username,
            "password": secret.password,
            "connect_timeout": max(timeout, MIN_CONNECT_TIMEOUT_S),
            "application_name": APPLICATION_NAME,
            "require_auth": self.settings.require_auth,
            **tls_parameters(secret.sslmode, self.settings),
            **session_options(secret.host, deadline, self.settings),
        }

    def connect(
        self,
        secret: PostgresSecret,
        deadline: Deadline,
        *,
        who: str,
        floor: str,
        _master: object = None,
    ) -> psycopg.Connection[Any]:
        """Log in as ``secret``; ``who`` names the credential in messages (e.g. "AWSCURRENT").

        ``floor`` is AWSCURRENT's sslmode: a credential asking for weaker TLS is raised to it.

        Raises
        ------
        AuthenticationError
            At once, when the server refuses the credential.
        AuthMethodError
            At once, when the server asks for a method ``require_auth`` does not allow.
        ImpostorServerError
            At once, when the server breaks the authentication protocol: not the database.
        LoginConfigurationError
            At once, when no password could log in there (a missing database, pg_hba.conf).
        TlsError
            At once, when TLS cannot be set up as the secret asks.
        UnreachableError
            When no attempt reached the server (its name included: DNS resolution is bounded
            by the deadline too), or the server took no login (starting up, shutting down,
            full: :class:`~rotation_contract.pg.errors.ServerUnavailableError`), before the
            retries or the deadline ran out.
        DeadlineError
            When the step had no time left for an attempt.
        """
        import psycopg  # see the class docstring

        if isinstance(secret, MasterSecret) and _master is not _MASTER_SEAL:
            raise TypeError(
                "the master's credential logs in through handlers.master.open_master only "
                "(its session pins search_path in every transaction)"
            )
        raised = secret.with_tls_floor(floor)
        if raised is not secret:
            logger.warning(
                "a credential asked for weaker TLS than AWSCURRENT's; raised to the floor",
                extra={"credential": who, "asked": secret.sslmode, "used": raised.sslmode},
            )
            secret = raised
        connect = self._connect or psycopg.connect
        description = f"{who} ({secret.username}@{secret.host}:{secret.port}/{secret.dbname})"

        def attempt() -> psycopg.Connection[Any]:
            if deadline.remaining() <= 0:
                raise DeadlineError(f"no time was left in the step to log in as {description}")
            # Per attempt: the connect timeout shrinks with the time the step has left.
            params = self.parameters(secret, deadline)
            params.update(self.addresses(secret, deadline, description))
            try:
                conn = connect(**params)
            except psycopg.OperationalError as exc:
                raise classify_login_failure(exc, description) from exc
            # Each transaction starts with the step's bounds (see handlers.pg_bounds).
            return bound(conn, deadline)

        return call_with_retries(
            attempt,
            retry_on=UnreachableError,
            deadline=deadline,
            policy=self.retry_policy,
            what=f"connecting as {who}",
        )

    def addresses(self, secret: PostgresSecret, deadline: Deadline, who: str) -> dict[str, str]:
        """``host`` and ``hostaddr`` for libpq, the host name resolved within the time left
        (at most the connect timeout); empty when the host is an address already.

        Raises
        ------
        UnreachableError
            The name did not resolve, or the resolver did not answer in time (retried, like
            an unreachable server, while the step has time).
        """
        if not needs_resolution(secret.host):
            return {}
        timeout = min(float(self.settings.connect_timeout_s), deadline.remaining())
        try:
            found = resolve(secret.host, secret.port, timeout_s=timeout, resolver=self._resolver)
        except TimeoutError:
            raise UnreachableError(
                f"could not resolve the host name {secret.host!r} for {who}: the DNS resolver "
                f"did not answer within {timeout:.1f} s (the connect timeout, cut to the time "
                "the step had left). Check the function's DNS: the VPC's DNS resolution and "
                "DNS hostnames settings, Route 53 Resolver rules and endpoints, security "
                "groups and network ACLs for port 53"
            ) from None
        except OSError as exc:
            raise UnreachableError(
                f"could not resolve the host name {secret.host!r} for {who}: {exc}. Check "
                "'host' in the secret (the instance's or cluster's endpoint) and the "
                "function's DNS (a private hosted zone must be associated with its VPC)"
            ) from None
        # One host entry per address: psycopg tries each in turn, as it would have after
        # resolving itself, and libpq checks the certificate against the name.
        return {"host": ",".join([secret.host] * len(found)), "hostaddr": ",".join(found)}

    def try_login(
        self, secret: PostgresSecret, deadline: Deadline, *, who: str, floor: str
    ) -> psycopg.Connection[Any] | AuthenticationError:
        """Like :meth:`connect`, but a refused credential is returned, not raised.

        Only a refusal: an impostor
        (:class:`~rotation_contract.pg.errors.ImpostorServerError`) and every other failure are
        raised, so that a caller trying credentials in turn stops at once.
        """
        try:
            return self.connect(secret, deadline, who=who, floor=floor)
        except AuthenticationError as refused:
            return refused
