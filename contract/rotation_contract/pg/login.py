"""Telling why a login failed, and what to do about it.

A failed login raises a bare ``psycopg.OperationalError``: ``sqlstate`` is None, ``diag`` is
empty and ``pgresult`` is None, although the server did send a SQLSTATE in its
ErrorResponse (checked with psycopg 3.3 and its bundled libpq 18: libpq keeps the code in a
private field of the failed connection and has no call that returns it, and the error
verbosity that would print it into the message cannot be set before the connection starts).
So this module works from what it does get, in this order:

1. libpq's own report that the server broke the authentication protocol (a SCRAM server
   signature that does not verify, a malformed SCRAM message, a nonce that is not ours, an
   authentication request no PostgreSQL server sends): the server is an impostor
   (:attr:`LoginFailure.IMPOSTOR`), whatever else the message says;
2. the SQLSTATE, when the exception has one (a future driver may pass it on);
3. whether libpq got as far as sending the password (``pgconn.used_password``): a fact of
   the client library, never translated;
4. libpq's own refusal of an authentication method (``require_auth``, ``channel_binding``),
   a client message;
5. the message text, matched against the English texts of PostgreSQL 13 to 18 and libpq.

libpq's own messages (steps 1 and 4) are not translated: the libpq bundled with
psycopg-binary is built without NLS (its library has no gettext binding). Step 5 is the weak
one: a server with ``lc_messages`` set to another language sends translated text. When no
text matches, the classification falls back to step 3 alone, which is what it was before
the finer classes existed: a password that was sent and refused is a refused credential
(:attr:`LoginFailure.REFUSED`), anything else could not reach the server
(:attr:`LoginFailure.UNREACHABLE`, retried). So a translated message costs the precise
advice, never the safety of the decision.

Why an impostor is not a refused credential. A server that refuses a password says so in an
ErrorResponse. One that answers the client's SCRAM proof with a server signature that does
not verify has shown that it does not hold the password's verifier: it is not the database
(a wrong DNS record, a hijacked address, a man in the middle that terminates TLS). Treating
that as "this password is wrong, try the next one" would hand it a SCRAM proof of every
other credential (AWSPENDING, AWSPREVIOUS, the master's), each one material for an offline
guess and, relayed, a login elsewhere. So it stops the login at once: no other credential,
no retry (:class:`~rotation_contract.pg.errors.ImpostorServerError`). A connection that
drops after the proof was sent, without the server's answer, is no refusal either: it is
retried with the same credential as an unreachable server, never answered with another one.

What a client cannot tell apart at all, whatever the language: a wrong password, a role that
does not exist and a role whose ``VALID UNTIL`` has passed. Under password authentication
the server answers all three with "password authentication failed" on purpose (so that
nobody can probe which roles exist); only its own log says which, in the DETAIL line.

This is the one place that makes these calls; it is tested against a real server for every
class it can provoke, and against fake ones. It takes the exception duck-typed, so that
importing it needs no driver.
"""

from __future__ import annotations

import enum
import re

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
    "LoginFailure",
    "auth_method_problem",
    "auth_method_refusal",
    "classify_login",
    "login_error_class",
    "login_failure_reason",
    "login_problem",
    "refused_credential",
]


class LoginFailure(enum.Enum):
    """Why a login failed, as far as a client can tell (see the module docstring)."""

    #: 28P01: the password is wrong, or the role does not exist, or its VALID UNTIL passed.
    WRONG_PASSWORD = "wrong password"  # noqa: S105  # a cause's name, not a password
    #: The password was sent and refused, for a reason whose text is not recognised.
    REFUSED = "refused"
    #: 28000 "role ... does not exist": only methods that do not hide it say so.
    NO_SUCH_ROLE = "no such role"
    #: 28000 "role ... is not permitted to log in": NOLOGIN.
    LOGIN_NOT_ALLOWED = "login not allowed"
    #: 3D000: the secret's ``dbname`` does not exist on the server.
    NO_SUCH_DATABASE = "no such database"
    #: 42501 "permission denied for database": no CONNECT privilege.
    NO_CONNECT_PRIVILEGE = "no CONNECT privilege"
    #: 28000 "no pg_hba.conf entry" / "pg_hba.conf rejects connection".
    HBA_REJECTED = "pg_hba.conf rejection"
    #: 53300: the server's, the role's or the database's connection limit is reached.
    TOO_MANY_CONNECTIONS = "too many connections"
    #: 57P03: starting up, shutting down, in recovery, or a standby not open for logins.
    NOT_ACCEPTING = "not accepting connections"
    #: libpq: the server does not speak TLS although the secret asks for it.
    TLS_UNSUPPORTED = "server without TLS"
    #: libpq: the server's certificate is not signed by a trusted CA.
    TLS_UNTRUSTED = "untrusted certificate"
    #: libpq: the server's certificate is not for the host name in the secret.
    TLS_HOST_NAME = "certificate for another host name"
    #: libpq's ``require_auth`` refused the method the server asked for; nothing was sent.
    AUTH_METHOD = "authentication method refused"
    #: libpq's ``channel_binding=require`` (PGCHANNELBINDING) found no channel binding to do.
    CHANNEL_BINDING = "channel binding unavailable"
    #: The server broke the authentication protocol (a wrong SCRAM server signature...):
    #: not the database. Nothing else is offered to it.
    IMPOSTOR = "impostor server"
    #: PgBouncer found no such user (its auth_query returned no row): what a server says as
    #: a failed password login. A refused credential, so that another one may be tried.
    POOLER_NO_USER = "no such user at the pooler"
    #: A connection pooler (PgBouncer, RDS Proxy) refused a startup parameter the login sent:
    #: the same for every credential, and not a reachability problem.
    POOLER_PARAMETER = "startup parameter refused by a pooler"
    #: Nothing answered (DNS, TCP, timeout, a dropped connection), or nothing recognised.
    UNREACHABLE = "unreachable"

    @property
    def refused_credential(self) -> bool:
        """Whether the server refused this credential, so that another one may log in."""
        return self in (
            LoginFailure.WRONG_PASSWORD,
            LoginFailure.REFUSED,
            LoginFailure.POOLER_NO_USER,
        )

    @property
    def transient(self) -> bool:
        """Whether the server, not the credential, is the cause, so that the same login may
        succeed a moment later: the handlers and the client retry these."""
        return issubclass(login_error_class(self), UnreachableError)


# Which error each cause raises, for the handlers and the client alike; the retry and
# fall-back decisions follow the class (UnreachableError and its subclass are retried; only
# AuthenticationError lets another credential be tried).
_ERROR_CLASS: dict[LoginFailure, type[DatabaseError]] = {
    LoginFailure.WRONG_PASSWORD: AuthenticationError,
    LoginFailure.REFUSED: AuthenticationError,
    LoginFailure.AUTH_METHOD: AuthMethodError,
    LoginFailure.CHANNEL_BINDING: AuthMethodError,
    LoginFailure.IMPOSTOR: ImpostorServerError,
    LoginFailure.NO_SUCH_ROLE: LoginConfigurationError,
    LoginFailure.LOGIN_NOT_ALLOWED: LoginConfigurationError,
    LoginFailure.NO_SUCH_DATABASE: LoginConfigurationError,
    LoginFailure.NO_CONNECT_PRIVILEGE: LoginConfigurationError,
    LoginFailure.HBA_REJECTED: LoginConfigurationError,
    LoginFailure.TOO_MANY_CONNECTIONS: ServerUnavailableError,
    LoginFailure.NOT_ACCEPTING: ServerUnavailableError,
    LoginFailure.TLS_UNSUPPORTED: TlsError,
    LoginFailure.TLS_UNTRUSTED: TlsError,
    LoginFailure.TLS_HOST_NAME: TlsError,
    LoginFailure.POOLER_PARAMETER: LoginConfigurationError,
    LoginFailure.POOLER_NO_USER: AuthenticationError,
    LoginFailure.UNREACHABLE: UnreachableError,
}


def login_error_class(failure: LoginFailure) -> type[DatabaseError]:
    """The error a login that failed for ``failure`` raises."""
    return _ERROR_CLASS[failure]


# SQLSTATEs the server sends at login. 28000 (invalid_authorization_specification) covers
# pg_hba.conf, NOLOGIN and a missing role alike: the text decides between them.
_BY_SQLSTATE = {
    "28P01": LoginFailure.WRONG_PASSWORD,
    "3D000": LoginFailure.NO_SUCH_DATABASE,
    "42501": LoginFailure.NO_CONNECT_PRIVILEGE,
    "53300": LoginFailure.TOO_MANY_CONNECTIONS,
    "57P03": LoginFailure.NOT_ACCEPTING,
}

# The English texts, server's (PostgreSQL 13 to 18) and libpq's, first match wins. Only
# fragments that stay the same across those versions, and none that names an object.
_BY_TEXT: tuple[tuple[re.Pattern[str], LoginFailure], ...] = tuple(
    (re.compile(pattern), failure)
    for pattern, failure in (
        # "password authentication failed for user", and PAM / LDAP / RADIUS / cert / ident
        # variants (RDS IAM logins fail as "PAM authentication failed for user").
        (r"authentication failed for user", LoginFailure.WRONG_PASSWORD),
        (r'role "[^"]*" does not exist', LoginFailure.NO_SUCH_ROLE),
        (r"is not permitted to log in", LoginFailure.LOGIN_NOT_ALLOWED),
        (r'database "[^"]*" does not exist', LoginFailure.NO_SUCH_DATABASE),
        (r"permission denied for database", LoginFailure.NO_CONNECT_PRIVILEGE),
        (r"no pg_hba\.conf entry for|pg_hba\.conf rejects connection", LoginFailure.HBA_REJECTED),
        (
            r"too many clients already|too many connections for "
            r"|remaining connection slots are reserved",
            LoginFailure.TOO_MANY_CONNECTIONS,
        ),
        (
            r"the database system is (starting up|shutting down|in recovery mode"
            r"|not yet accepting connections|not accepting connections)",
            LoginFailure.NOT_ACCEPTING,
        ),
        (r"server does not support SSL", LoginFailure.TLS_UNSUPPORTED),
        (r"certificate verify failed|root certificate file", LoginFailure.TLS_UNTRUSTED),
        (r"does not match host name", LoginFailure.TLS_HOST_NAME),
        # PgBouncer ("unsupported startup parameter: options", also in its log) and RDS
        # Proxy ("RDS Proxy currently doesn't support command-line options").
        (
            r"unsupported startup parameter|doesn't support command-line options",
            LoginFailure.POOLER_PARAMETER,
        ),
        # PgBouncer 1.18, auth_query finding no row for the user (checked against a real
        # PgBouncer in tests/functional/test_pgbouncer.py); sent before any password.
        (r"bouncer config error", LoginFailure.POOLER_NO_USER),
        # Last: a connection that dropped (after the proof was sent or not) without the
        # server's answer. Retried with the same credential, never answered with another.
        (
            r"server closed the connection unexpectedly|could not receive data from server"
            r"|SSL SYSCALL error: EOF detected|SSL error: unexpected eof"
            r"|SSL connection has been closed unexpectedly",
            LoginFailure.UNREACHABLE,
        ),
    )
)

# libpq's messages (PostgreSQL 13 to 18, fe-auth.c, fe-auth-scram.c, fe-connect.c) for a
# server that broke the authentication protocol, and the server's own for a SCRAM exchange
# relayed between two TLS sessions (auth-scram.c: what a man in the middle causes when the
# real server checks the channel binding). No PostgreSQL server causes any of them.
_IMPOSTOR = re.compile(
    "|".join(
        (
            r"incorrect server signature",
            r"could not verify server signature",
            r"malformed SCRAM message",
            r"invalid SCRAM response",
            r"error received from server in SCRAM exchange",
            r"AuthenticationSASLFinal received from server, but SASL authentication was not "
            r"completed",
            r"no client response found after SASL exchange success",
            r"invalid authentication request from server",
            r"received invalid authentication request",
            r"duplicate SASL authentication request",
            r"server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection",
            r"channel binding required, but server authenticated client without channel "
            r"binding",
            r"server requested an unknown authentication type",
            r"authentication method \d+ not supported",
            r"SCRAM channel binding (negotiation error|check failed)",
        )
    )
)
# The same, once the password (its SCRAM proof or md5 hash) was sent: a server that took it
# and then let the client in without proving itself (require_auth's "did not complete"), or
# answered with something other than an authentication message.
_IMPOSTOR_AFTER_PASSWORD = re.compile(
    r"server did not complete authentication"
    r"|expected authentication request from server, but received"
    r"|unexpected message from server during startup"
)
# libpq's channel_binding=require, when the server or the connection cannot bind.
_CHANNEL_BINDING = re.compile(
    r"channel binding required, but SSL not in use"
    r"|channel binding is required, but server did not offer"
    r"|channel binding required but not supported by server's authentication request"
    r"|channel binding is required, but client does not support it"
)

_METHOD_REFUSED = re.compile(r'authentication method requirement "([^"]*)" failed: ([^\n]*)')
# What libpq says the server did -> the require_auth name that would allow it.
_ASKED = (
    ("cleartext password", "password"),
    ("did not complete authentication", "none"),
    ("hashed password", "md5"),
    ("SASL", "scram-sha-256"),
    ("GSSAPI", "gss"),
    ("SSPI", "sspi"),
)


def _used_password(exc: BaseException) -> bool:
    pgconn = getattr(exc, "pgconn", None)
    return bool(pgconn is not None and getattr(pgconn, "used_password", False))


def _impostor(exc: BaseException, used_password: bool) -> bool:
    text = str(exc)
    return bool(_IMPOSTOR.search(text) or (used_password and _IMPOSTOR_AFTER_PASSWORD.search(text)))


def _libpq_verdict(exc: BaseException, used_password: bool) -> LoginFailure | None:
    """What libpq itself decided about the server (steps 1 and 4), if anything."""
    if _impostor(exc, used_password):
        return LoginFailure.IMPOSTOR
    if _CHANNEL_BINDING.search(str(exc)):
        return LoginFailure.CHANNEL_BINDING
    if not used_password and _METHOD_REFUSED.search(str(exc)):
        return LoginFailure.AUTH_METHOD
    return None


def classify_login(exc: BaseException) -> LoginFailure:
    """Why the connection attempt that raised ``exc`` failed (see the module docstring)."""
    used_password = _used_password(exc)
    verdict = _libpq_verdict(exc, used_password)
    if verdict is not None:
        return verdict
    sqlstate = getattr(exc, "sqlstate", None)
    by_code = _BY_SQLSTATE.get(sqlstate) if isinstance(sqlstate, str) else None
    if by_code is not None:
        return by_code
    text = str(exc)
    for pattern, failure in _BY_TEXT:
        if pattern.search(text):
            return failure
    if sqlstate == "28000":
        # Unrecognised (translated) text: before authentication it can only be pg_hba.conf.
        return LoginFailure.LOGIN_NOT_ALLOWED if used_password else LoginFailure.HBA_REJECTED
    return LoginFailure.REFUSED if used_password else LoginFailure.UNREACHABLE


def refused_credential(exc: BaseException) -> bool:
    """Whether a failed connection attempt was the server refusing the credential (so that
    another credential may log in), as opposed to a missing database, pg_hba.conf, a full
    server, TLS or a server that did not answer."""
    return classify_login(exc).refused_credential


def auth_method_refusal(exc: BaseException) -> tuple[str, str] | None:
    """``(allowed methods, what the server asked for)`` when libpq's ``require_auth``
    refused the server's authentication request before sending anything; else None (also
    for an impostor's request, e.g. an authentication code no server sends)."""
    if _used_password(exc) or _impostor(exc, used_password=False):
        return None
    found = _METHOD_REFUSED.search(str(exc))
    if found is None:
        return None
    return found.group(1), found.group(2).strip().rstrip(".")


def auth_method_problem(exc: BaseException, who: str) -> str | None:
    """The message for a login libpq refused by ``require_auth`` (None for any other failure):
    what the server asked for, that nothing was sent, and the fix."""
    refusal = auth_method_refusal(exc)
    if refusal is None:
        return None
    allowed, asked = refusal
    method = next((name for marker, name in _ASKED if marker in asked), None)
    if method == "none":
        what = "let the login in without asking for any password (trust authentication)"
        risk = "a rotation against it proves nothing: it would also succeed against an impostor"
    elif method == "password":
        what = "asked for the password in cleartext"
        risk = "anyone on the path, or an impostor, would read the password"
    else:
        what = f"asked for an authentication method that is not allowed ({asked})"
        risk = "the password would go where it is not meant to"
    allow = f"{allowed},{method}" if method else f"{allowed},<method>"
    return (
        f"the server {what} when logging in as {who}; refused before anything was sent "
        f"(allowed: {allowed}), since {risk}. Fix the server's pg_hba.conf to use "
        f"scram-sha-256 for this user; or, accepting the risk, set PGREQUIREAUTH={allow} "
        "in the environment of what connects (the rotation function, or the application)"
    )


def login_failure_reason(exc: BaseException) -> str:
    """libpq's message on one line, its sentences kept apart (libpq ends a line without a full
    stop: "Connection refused" then "Is the server running ...?"). libpq never echoes the
    password it was given (but the exception's ``pgconn`` holds it: never log its repr)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    sentences = [line if line[-1] in ".?!:;" else f"{line}." for line in lines if line]
    return " ".join(sentences).removeprefix("connection failed: ").rstrip(".")


_NO_OTHER_LOGIN = "the password is not the problem, so no other credential was tried"


def login_problem(failure: LoginFailure, exc: BaseException, who: str) -> str:
    """The message for a failed login: what happened, as ``who``, and the fix.

    ``who`` names the credential and its target (e.g. ``AWSCURRENT (app@db:5432/postgres)``);
    the server's own words follow on one line. Never holds a password.
    """
    reason = login_failure_reason(exc)
    if failure is LoginFailure.AUTH_METHOD:
        return auth_method_problem(exc, who) or f"the server refused {who}: {reason}"
    return _PROBLEMS[failure].format(
        who=who, reason=reason, not_password=_NO_OTHER_LOGIN, host=_host(exc)
    )


def _host(exc: BaseException) -> str:
    """The host the failed attempt went to, as libpq had it (the secret's 'host')."""
    pgconn = getattr(exc, "pgconn", None)
    host = getattr(pgconn, "host", None) if pgconn is not None else None
    if isinstance(host, bytes) and host:
        return host.decode(errors="replace")
    return "the secret's host"


_PROBLEMS: dict[LoginFailure, str] = {
    LoginFailure.IMPOSTOR: (
        "the server at {host} is not the database: it broke the authentication protocol "
        "when logging in as {who} ({reason}). A server that holds the password's verifier "
        "proves it with the SCRAM server signature; this one could not, so whatever answers "
        "at that address is an impostor: a wrong 'host' in the secret, a DNS record or "
        "address that now points elsewhere, or a man in the middle. No other credential was "
        "offered to it and nothing was retried. Check what {host} resolves to from where "
        "this runs and that it is the database's endpoint; keep 'ssl' at verify-full so "
        "that only a server with the database's certificate is talked to. Rotate again "
        "once the host is the database"
    ),
    LoginFailure.CHANNEL_BINDING: (
        "channel binding is required (PGCHANNELBINDING=require) but cannot be done when "
        "logging in as {who}: {reason}. It needs TLS ('ssl' not false) and a server that "
        "offers SCRAM-SHA-256-PLUS (PostgreSQL 11 or later with scram-sha-256 in "
        "pg_hba.conf; not md5, not a pooler without it). Fix the server, or unset "
        "PGCHANNELBINDING: "
        "the default, prefer, binds whenever the server can. Nothing was sent"
    ),
    LoginFailure.WRONG_PASSWORD: (
        "the server refused {who}: {reason}. The password is wrong, or the role does not "
        "exist, or its VALID UNTIL date has passed: the server tells a client only that the "
        "login failed (its log's DETAIL line for this login says which)"
    ),
    LoginFailure.REFUSED: (
        "the server refused {who} after the password was sent: {reason} (a message this "
        "function does not recognise, e.g. translated by the server's lc_messages; the "
        "server's log says more)"
    ),
    LoginFailure.NO_SUCH_ROLE: (
        "the role in the secret does not exist on the server ({who}): {reason}. Create it, "
        "or fix 'username' in the secret; {not_password}"
    ),
    LoginFailure.LOGIN_NOT_ALLOWED: (
        "the role may not log in ({who}): {reason}. Run ALTER ROLE ... LOGIN for it as an "
        "administrator; {not_password}"
    ),
    LoginFailure.NO_SUCH_DATABASE: (
        "the database named in the secret does not exist on the server ({who}): {reason}. "
        "Fix 'dbname' in the secret (absent means 'postgres') or create the database; "
        "{not_password}"
    ),
    LoginFailure.NO_CONNECT_PRIVILEGE: (
        "the role may not connect to the secret's database ({who}): {reason}. Run GRANT "
        "CONNECT ON DATABASE ... TO ... as its owner, or fix 'dbname' in the secret; "
        "{not_password}"
    ),
    LoginFailure.HBA_REJECTED: (
        "the server's pg_hba.conf does not let {who} in: {reason}. Add a line for this user, "
        "database and client address with scram-sha-256 to pg_hba.conf and reload the "
        "server; if the message says 'no encryption' and the server only takes TLS (RDS: "
        'rds.force_ssl), remove "ssl": false from the secret; {not_password}'
    ),
    LoginFailure.TOO_MANY_CONNECTIONS: (
        "the server took no more connections for {who} until the step's retries ran out: "
        "{reason}. Find what holds the connections (pg_stat_activity), or raise the limit "
        "the message names: max_connections for the server, ALTER ROLE ... CONNECTION "
        "LIMIT for a role (-1: none), ALTER DATABASE ... CONNECTION LIMIT for a database"
    ),
    LoginFailure.NOT_ACCEPTING: (
        "the server did not accept logins until the step's retries ran out ({who}): "
        "{reason}. It is starting up, shutting down or recovering: Secrets Manager's "
        "re-attempt will continue once it is up. If it stays so, 'host' may name a standby "
        "that takes no connections (hot_standby = off): point it at a server that does"
    ),
    LoginFailure.TLS_UNSUPPORTED: (
        "the server does not speak TLS, but the login asks for it ({who}): {reason}. An "
        "absent 'ssl' means verify-full. Turn TLS on at the server, or put \"ssl\": false "
        "in the AWSCURRENT version to connect in plaintext deliberately (AWSCURRENT's mode is "
        "the floor: other versions and the master secret are raised to it, so changing "
        "theirs does nothing); not retried, since that cannot change by itself"
    ),
    LoginFailure.TLS_UNTRUSTED: (
        "the server's TLS certificate is not signed by a trusted CA ({who}): {reason}. "
        "Trusted are the Amazon RDS CA bundle shipped in the package and the file named by "
        "PGSSLROOTCERT: point PGSSLROOTCERT at the CA that signed the server's certificate, "
        'or use "ssl": "require" (in AWSCURRENT: the floor for every login) to encrypt '
        "without verifying; not retried"
    ),
    LoginFailure.TLS_HOST_NAME: (
        "the server's TLS certificate is not for the host name in the secret ({who}): "
        "{reason}. Set 'host' to a name the certificate holds (the instance's or cluster's "
        'endpoint), or use "ssl": "verify-ca" for a host reached through a CNAME; '
        "not retried"
    ),
    LoginFailure.POOLER_PARAMETER: (
        "a connection pooler between this and the database refused a startup parameter of "
        "the login as {who}: {reason}. This project's own bounds are set inside each "
        "transaction and pass any pooler; the parameter is the environment's: unset "
        "PGOPTIONS (RDS Proxy takes no command-line options), or for PgBouncer add the "
        "parameter to ignore_startup_parameters in pgbouncer.ini (PGOPTIONS is then "
        "dropped), or point 'host' at the database; {not_password}"
    ),
    LoginFailure.POOLER_NO_USER: (
        "the connection pooler refused {who} before any password was sent: {reason}. "
        "PgBouncer says so when its auth_query finds no such user: the role does not exist "
        "(yet), or the pooler's auth_user cannot look it up (auth_query's function, its "
        "grants, the auth_user's line in auth_file); a database answers a missing role as a "
        "failed password login"
    ),
    LoginFailure.UNREACHABLE: "could not reach the database as {who}: {reason}",
}
