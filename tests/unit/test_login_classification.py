"""rotation_contract.pg.login on the texts a real server cannot be made to send here.

The functional tests (test_login_failures.py) provoke every class the test bed can produce
against a real server. What it cannot produce is covered here, with stand-ins shaped like
psycopg's exception (a message, ``sqlstate``, ``pgconn.used_password``): the messages of
other PostgreSQL versions and of moments too short to catch (starting up, crash recovery),
a server whose ``lc_messages`` translates them, and a driver that does pass the SQLSTATE on.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from handlers.pg_connect import classify_login_failure
from rotation_contract.pg.errors import (
    AuthenticationError,
    AuthMethodError,
    ImpostorServerError,
    LoginConfigurationError,
    ServerUnavailableError,
    TlsError,
    UnreachableError,
)
from rotation_contract.pg.login import (
    LoginFailure,
    classify_login,
    login_problem,
    refused_credential,
)

WHERE = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '


@dataclass
class _PgConn:
    used_password: bool
    host: bytes = b"127.0.0.1"


class FailedLoginError(Exception):
    """Shaped like ``psycopg.OperationalError`` from a failed connection attempt."""

    def __init__(
        self,
        text: str,
        *,
        used_password: bool,
        sqlstate: str | None = None,
        host: bytes = b"127.0.0.1",
    ) -> None:
        super().__init__(WHERE + text)
        self.sqlstate = sqlstate
        self.pgconn = _PgConn(used_password, host)


CASES = [
    # (server or libpq text, password sent?, expected)
    ('FATAL:  password authentication failed for user "app"', True, "WRONG_PASSWORD"),
    ('FATAL:  PAM authentication failed for user "app"', True, "WRONG_PASSWORD"),
    ('FATAL:  role "app" does not exist', False, "NO_SUCH_ROLE"),
    ('FATAL:  role "app" is not permitted to log in', True, "LOGIN_NOT_ALLOWED"),
    ('FATAL:  database "appdb" does not exist', True, "NO_SUCH_DATABASE"),
    ('FATAL:  permission denied for database "appdb"', True, "NO_CONNECT_PRIVILEGE"),
    (
        'FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "app", database "x", no encryption',
        False,
        "HBA_REJECTED",
    ),
    (
        'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "app", '
        'database "postgres", SSL encryption',
        False,
        "HBA_REJECTED",
    ),
    ("FATAL:  sorry, too many clients already", False, "TOO_MANY_CONNECTIONS"),
    ('FATAL:  too many connections for role "app"', True, "TOO_MANY_CONNECTIONS"),
    ('FATAL:  too many connections for database "appdb"', True, "TOO_MANY_CONNECTIONS"),
    (
        "FATAL:  remaining connection slots are reserved for non-replication superuser connections",
        False,
        "TOO_MANY_CONNECTIONS",
    ),
    (
        "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute",
        False,
        "TOO_MANY_CONNECTIONS",
    ),
    ("FATAL:  the database system is starting up", False, "NOT_ACCEPTING"),
    ("FATAL:  the database system is shutting down", False, "NOT_ACCEPTING"),
    ("FATAL:  the database system is in recovery mode", False, "NOT_ACCEPTING"),
    ("FATAL:  the database system is not yet accepting connections", False, "NOT_ACCEPTING"),
    ("FATAL:  the database system is not accepting connections", False, "NOT_ACCEPTING"),
    ("server does not support SSL, but SSL was required", False, "TLS_UNSUPPORTED"),
    ("SSL error: certificate verify failed", False, "TLS_UNTRUSTED"),
    ('root certificate file "/x/root.crt" does not exist', False, "TLS_UNTRUSTED"),
    (
        'server certificate for "db.internal" does not match host name "db.example.com"',
        False,
        "TLS_HOST_NAME",
    ),
    (
        'authentication method requirement "scram-sha-256,md5" failed: server requested '
        "a cleartext password",
        False,
        "AUTH_METHOD",
    ),
    ("Connection refused\n\tIs the server running on that host?", False, "UNREACHABLE"),
    (
        'could not translate host name "db" to address: Name or service not known',
        False,
        "UNREACHABLE",
    ),
    ("server closed the connection unexpectedly", False, "UNREACHABLE"),
    # Dropped after the SCRAM proof went out: the same credential again, never another one.
    (
        "server closed the connection unexpectedly\n\tThis probably means the server "
        "terminated abnormally\n\tbefore or while processing the request.",
        True,
        "UNREACHABLE",
    ),
    ("SSL SYSCALL error: EOF detected", True, "UNREACHABLE"),
    ("SSL error: unexpected eof while reading", True, "UNREACHABLE"),
    # PGCHANNELBINDING=require where no binding can be done: nothing was sent.
    ("channel binding required, but SSL not in use", False, "CHANNEL_BINDING"),
    (
        "channel binding is required, but server did not offer an authentication method "
        "that supports channel binding",
        False,
        "CHANNEL_BINDING",
    ),
    (
        "channel binding required but not supported by server's authentication request",
        False,
        "CHANNEL_BINDING",
    ),
    *(
        # libpq's words (fe-auth-scram.c, fe-auth.c, fe-connect.c, PostgreSQL 13 to 18) for a
        # server that broke the authentication protocol, and the real server's (auth-scram.c)
        # for a SCRAM exchange relayed from another TLS session.
        (text, used_password, "IMPOSTOR")
        for text, used_password in (
            ("incorrect server signature", True),
            ("could not verify server signature: out of memory", True),
            ("malformed SCRAM message (invalid server signature)", True),
            ('malformed SCRAM message (attribute "r" expected)', True),
            ("malformed SCRAM message (garbage at end of server-first-message)", True),
            ("malformed SCRAM message (invalid iteration count)", True),
            ("malformed SCRAM message (length mismatch)", True),
            ("invalid SCRAM response (nonce mismatch)", True),
            ("error received from server in SCRAM exchange: invalid-proof", True),
            (
                "AuthenticationSASLFinal received from server, but SASL authentication was "
                "not completed",
                True,
            ),
            (
                "fe_sendauth: invalid authentication request from server: AUTH_REQ_SASL_CONT "
                "without AUTH_REQ_SASL",
                False,
            ),
            ("received invalid authentication request", False),
            ("duplicate SASL authentication request", True),
            ("server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection", False),
            (
                "channel binding required, but server authenticated client without channel binding",
                True,
            ),
            (
                'authentication method requirement "scram-sha-256,md5" failed: server '
                "requested an unknown authentication type",
                False,
            ),
            ("authentication method 99 not supported", False),
            ("FATAL:  SCRAM channel binding negotiation error", True),
            ("FATAL:  SCRAM channel binding check failed", True),
            # It took the proof, then let the client in without proving itself.
            (
                'authentication method requirement "scram-sha-256,md5" failed: server did '
                "not complete authentication",
                True,
            ),
            ("expected authentication request from server, but received H", True),
        )
    ),
    # Before any password: a port that does not speak PostgreSQL (an HTTP proxy), or trust.
    ("expected authentication request from server, but received H", False, "UNREACHABLE"),
    # A pooler refusing a startup parameter (PgBouncer 1.18's words, as tests/functional/
    # test_pgbouncer.py gets them; RDS Proxy's): a configuration, not an unreachable server.
    ("FATAL:  unsupported startup parameter: options", False, "POOLER_PARAMETER"),
    ("FATAL:  bouncer config error", False, "POOLER_NO_USER"),
    (
        "FATAL:  Feature not supported: RDS Proxy currently doesn't support command-line options.",
        False,
        "POOLER_PARAMETER",
    ),
    (
        'authentication method requirement "scram-sha-256,md5" failed: server did not '
        "complete authentication",
        False,
        "AUTH_METHOD",
    ),
]


@pytest.mark.parametrize(
    ("text", "used_password", "expected"), CASES, ids=[c[2] + ":" + c[0][:40] for c in CASES]
)
def test_each_english_text_has_its_class(text: str, used_password: bool, expected: str) -> None:
    assert (
        classify_login(FailedLoginError(text, used_password=used_password))
        is LoginFailure[expected]
    )


# The same three messages from a server with lc_messages = 'de_DE' (PostgreSQL's own
# German translations): no English text to match.
GERMAN_WRONG_PASSWORD = "FATAL:  Passwort-Authentifizierung für Benutzer »app« fehlgeschlagen"
GERMAN_NO_DATABASE = "FATAL:  Datenbank »appdb« existiert nicht"
GERMAN_STARTING = "FATAL:  das Datenbanksystem startet"


def test_translated_text_falls_back_to_whether_the_password_was_sent() -> None:
    """Without an English text, the decision is what it was before the finer classes:
    sent and refused is a refused credential, not sent is retried as unreachable."""
    assert classify_login(FailedLoginError(GERMAN_WRONG_PASSWORD, used_password=True)) is (
        LoginFailure.REFUSED
    )
    assert classify_login(FailedLoginError(GERMAN_NO_DATABASE, used_password=True)) is (
        LoginFailure.REFUSED
    )
    assert classify_login(FailedLoginError(GERMAN_STARTING, used_password=False)) is (
        LoginFailure.UNREACHABLE
    )


@pytest.mark.parametrize(
    ("sqlstate", "used_password", "expected"),
    [
        ("28P01", True, LoginFailure.WRONG_PASSWORD),
        ("3D000", True, LoginFailure.NO_SUCH_DATABASE),
        ("42501", True, LoginFailure.NO_CONNECT_PRIVILEGE),
        ("53300", False, LoginFailure.TOO_MANY_CONNECTIONS),
        ("57P03", False, LoginFailure.NOT_ACCEPTING),
        ("28000", False, LoginFailure.HBA_REJECTED),
        ("28000", True, LoginFailure.LOGIN_NOT_ALLOWED),
    ],
)
def test_a_sqlstate_wins_over_the_text_when_the_driver_passes_one_on(
    sqlstate: str, used_password: bool, expected: LoginFailure
) -> None:
    text = GERMAN_NO_DATABASE if used_password else GERMAN_STARTING
    failed = FailedLoginError(text, used_password=used_password, sqlstate=sqlstate)
    assert classify_login(failed) is expected


def test_only_a_refused_credential_lets_another_credential_be_tried() -> None:
    assert refused_credential(FailedLoginError(CASES[0][0], used_password=True))
    for text in (
        'FATAL:  database "x" does not exist',
        'FATAL:  too many connections for role "a"',
    ):
        assert not refused_credential(FailedLoginError(text, used_password=True))


# The causes that may pass a moment later: the only ones worth retrying.
TRANSIENT = frozenset(
    {LoginFailure.TOO_MANY_CONNECTIONS, LoginFailure.NOT_ACCEPTING, LoginFailure.UNREACHABLE}
)
ERROR_CLASSES = {
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


@pytest.mark.parametrize(
    ("text", "used_password", "expected"), CASES, ids=[c[2] + ":" + c[0][:40] for c in CASES]
)
def test_every_cause_raises_its_class_and_only_transient_ones_are_retried(
    text: str, used_password: bool, expected: str
) -> None:
    failure = LoginFailure[expected]
    error = classify_login_failure(
        # Shaped like psycopg.OperationalError (what classify_login reads), not one.
        FailedLoginError(text, used_password=used_password),  # type: ignore[arg-type]
        "AWSCURRENT (app@db:5432/postgres)",
    )
    assert type(error) is ERROR_CLASSES[failure]
    # The connector retries exactly UnreachableError and its subclasses.
    assert isinstance(error, UnreachableError) == (failure in TRANSIENT)
    assert "AWSCURRENT (app@db:5432/postgres)" in error.problem


def test_every_message_is_distinct_and_on_one_line() -> None:
    problems = {
        failure: login_problem(failure, FailedLoginError("x", used_password=False), "AWSCURRENT")
        for failure in LoginFailure
        if failure is not LoginFailure.AUTH_METHOD
    }
    assert len(set(problems.values())) == len(problems)
    assert all("\n" not in problem for problem in problems.values())


def test_an_impostor_is_no_refused_credential_and_is_not_retried() -> None:
    """The server that cannot sign: another credential must not be offered to it, and the
    same one must not be sent again."""
    failed = FailedLoginError("incorrect server signature", used_password=True, host=b"db.x")
    assert classify_login(failed) is LoginFailure.IMPOSTOR
    assert not refused_credential(failed)
    assert not LoginFailure.IMPOSTOR.transient
    error = classify_login_failure(failed, "AWSCURRENT (app@db.x:5432/postgres)")  # type: ignore[arg-type]
    assert isinstance(error, ImpostorServerError)
    assert not isinstance(error, AuthenticationError | UnreachableError)
    # The host, the cause, the fix, and that nothing else went to it.
    assert "the server at db.x is not the database" in error.problem
    assert "incorrect server signature" in error.problem
    assert "No other credential was offered" in error.problem
    assert "resolves to" in error.problem
    assert "man in the middle" in error.problem


def test_a_refused_method_is_not_advised_around_for_an_impostor() -> None:
    """An authentication code no server sends is not "set PGREQUIREAUTH to allow it"."""
    from rotation_contract.pg.login import auth_method_problem

    unknown = FailedLoginError(
        'authentication method requirement "scram-sha-256,md5" failed: server requested an '
        "unknown authentication type",
        used_password=False,
    )
    assert auth_method_problem(unknown, "AWSCURRENT") is None
    cleartext = FailedLoginError(
        'authentication method requirement "scram-sha-256,md5" failed: server requested a '
        "cleartext password",
        used_password=False,
    )
    assert auth_method_problem(cleartext, "AWSCURRENT") is not None
