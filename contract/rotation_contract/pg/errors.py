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
    """The database could not be reached, or refused what the step needed to do."""


class UnreachableError(DatabaseError):
    """No database server answered: DNS, TCP or timeout. Worth retrying."""


class ServerUnavailableError(UnreachableError):
    """The server answered but takes no login now: it is starting up, shutting down or
    recovering (SQLSTATE 57P03), or a connection limit is reached (53300). Retried, like an
    unreachable server, until the attempts or the step's time run out."""


class AuthenticationError(DatabaseError):
    """The server answered and refused the credential. A fact to act on, not to retry."""


class AuthMethodError(DatabaseError):
    """The server asked for an authentication method the connection does not allow (libpq's
    ``require_auth``): a cleartext password, or no password at all (``trust``). libpq refuses
    before sending anything. A server configuration problem: retrying cannot help."""


class ImpostorServerError(DatabaseError):
    """The server broke the authentication protocol: it could not prove that it knows the
    password's SCRAM verifier (a wrong server signature), or sent SCRAM or authentication
    messages no PostgreSQL server sends. Whatever answers at the host is not the database
    (a wrong DNS record, a hijacked address, a man in the middle), so no other credential is
    offered to it and nothing is retried."""


class LoginConfigurationError(DatabaseError):
    """No password could log in where the secret points: the database does not exist,
    pg_hba.conf rejects the login, the role is NOLOGIN or lacks CONNECT. The same for every
    credential of the secret, so neither retried nor answered by trying another one."""


class TlsError(DatabaseError):
    """TLS could not be set up as the secret asks: the server does not speak TLS, or its
    certificate is untrusted or for another host name. Retrying cannot help."""
