"""The errors of logging in to PostgreSQL with a secret, shared by the rotation function and
the application client.

::

    RotationError (rotation_contract.errors)
    └── DatabaseError           the database could not be reached or refused us
        ├── UnreachableError    no server answered (DNS, TCP, timeout): transient, retried
        │   └── ServerUnavailableError  the server answered but takes no login now
        │                       (starting up, shutting down, full): transient, retried
        ├── AuthenticationError the server answered and refused the credential
        ├── AuthMethodError     the server asked for an authentication method we refuse
        │                       (a cleartext password, or none at all): nothing was sent
        ├── ImpostorServerError the server broke the authentication protocol (a wrong SCRAM
        │                       server signature, a bad SCRAM message): it is not the
        │                       database, so no other credential is offered to it
        ├── LoginConfigurationError  no password could log in here: a missing database,
        │                       pg_hba.conf, NOLOGIN, no CONNECT privilege; not retried
        └── TlsError            TLS cannot be set up as the secret asks: not retried

Which login failure becomes which error is decided in one place,
:mod:`rotation_contract.pg.login`. The rotation function's own PostgreSQL errors (a
read-only host, a lagging replica) are in :mod:`handlers.pg_errors`.
"""

from __future__ import annotations

from rotation_contract.errors import RotationError

__all__ = [
    "AuthMethodError",
    "AuthenticationError",
    "DatabaseError",
    "ImpostorServerError",
    "LoginConfigurationError",
    "ServerUnavailableError",
    "TlsError",
    "UnreachableError",
]


class DatabaseError(RotationError):
    """The database could not be reached, or refused what the step needed to do: a statement
    failed (a missing privilege, another session's lock held past the step's time, the pair's
    advisory lock taken), or, through its subclasses, a login failed.

    Fix: as the message says: it names what failed, psycopg's error class and SQLSTATE, and
    for a lock how to find the session that holds it (``pg_stat_activity``, ``pg_locks``).
    """


class UnreachableError(DatabaseError):
    """No database server answered: DNS, TCP or a timeout, or a connection dropped before the
    server's answer. Retried with backoff within the step's time.

    Fix: check the secret's ``host`` and ``port``, the network path (the database's security
    group must admit the function's, subnet routes, the VPC's DNS resolver), and that the
    server runs.
    """


class ServerUnavailableError(UnreachableError):
    """The server answered but takes no login now: it is starting up, shutting down or recovering
    (SQLSTATE 57P03), or a connection limit is reached (53300): the server's, the role's or the
    database's. Retried, like an unreachable server, until the attempts or the step's time run
    out.

    Fix: none once the server is up. For a connection limit, find what holds the connections
    or raise the limit the message names. A standby with ``hot_standby = off`` stays so.
    """


class AuthenticationError(DatabaseError):
    """The server answered and refused the credential: a wrong password, or, answered exactly
    alike so that nobody can probe for roles, a role that does not exist or whose ``VALID
    UNTIL`` has passed (the server log's DETAIL line says which). A fact to act on, not to
    retry; the client's message lists what each version it tried got.

    Fix: someone changed the password outside rotation: set it back to AWSCURRENT's, or let
    the master repair it (a ``masterarn`` in the secret, the role in ``MASTER_MANAGED_ROLES``,
    then rotate, or ``rotation verify --reconcile``). For a role that expired, see the bounded
    overlap page.
    """


class AuthMethodError(DatabaseError):
    """The server asked for an authentication method the connection does not allow (libpq's
    ``require_auth``): a cleartext password, or no password at all (``trust``). libpq refuses
    before sending anything. Also raised when ``PGCHANNELBINDING=require`` and the login
    cannot be bound (no TLS, md5, a server without SCRAM-SHA-256-PLUS). A server configuration
    problem: retrying cannot help.

    Fix: ``scram-sha-256`` for this user in the server's ``pg_hba.conf``; or, accepting the
    risk, set ``PGREQUIREAUTH`` deliberately (the message gives the value). For channel
    binding: TLS and SCRAM at the server, or unset ``PGCHANNELBINDING``.
    """


class ImpostorServerError(DatabaseError):
    """The server broke the authentication protocol: it could not prove that it knows the
    password's SCRAM verifier (a wrong server signature), or sent SCRAM or authentication
    messages no PostgreSQL server sends. Whatever answers at the host is not the database
    (a wrong DNS record, a hijacked address, a man in the middle), so no other credential is
    offered to it and nothing is retried.

    Fix: check what the secret's ``host`` resolves to from where the function (or the
    application) runs, and that it is the database's endpoint; keep ``ssl`` at
    ``verify-full``. Rotate again once the host is the database.
    """


class LoginConfigurationError(DatabaseError):
    """No password could log in where the secret points: the database does not exist,
    pg_hba.conf rejects the login (or has no line for it), the role is NOLOGIN or lacks
    CONNECT. The same for every credential of the secret, so neither retried nor answered by
    trying another one.

    Fix: as the message says: the secret's ``dbname``, ``GRANT CONNECT ON DATABASE``,
    ``ALTER ROLE ... LOGIN``, or a ``pg_hba.conf`` line for this user and address.
    """


class TlsError(DatabaseError):
    """TLS could not be set up as the secret asks: the server does not speak TLS, or its
    certificate is untrusted or for another host name. Retrying cannot help.

    Fix: for a server without TLS, turn TLS on or set ``"ssl": false`` (a trusted network
    only); for an untrusted certificate, its CA in ``PGSSLROOTCERT`` (or ``"ssl": "require"``
    to encrypt without verifying); for another host name, the endpoint's own name in ``host``,
    or ``"ssl": "verify-ca"`` for a CNAME.
    """
