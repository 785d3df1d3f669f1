"""Telling why a login failed: a refused credential, a refused authentication method, or an
unreachable server.

A failed login raises a bare ``psycopg.OperationalError`` with no SQLSTATE (the server's
28P01 only reaches the client as text, which ``lc_messages`` may translate). What libpq does
record is whether it got as far as sending the password: ``pgconn.used_password``.

* sent, and still failed: the server answered and refused this credential (wrong password,
  unknown or NOLOGIN role, missing database). Worth trying another credential, not the same
  one again.
* not sent, because libpq's ``require_auth`` refused the method the server asked for (a
  cleartext password, or none at all). libpq writes that refusal itself, on the client, as
  ``authentication method requirement "<list>" failed: <what the server did>``: a message of
  the client library, not the server's (translatable) text. A configuration problem.
* not sent otherwise: DNS, TCP, timeout, TLS handshake or certificate verification failed
  first. Worth retrying later with the same credential.

This is the one place that makes that call; it is tested against a real server and against
fake ones. It takes the exception duck-typed so that importing it needs no driver.
"""

from __future__ import annotations

import re

__all__ = [
    "auth_method_problem",
    "auth_method_refusal",
    "login_failure_reason",
    "refused_credential",
]

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


def refused_credential(exc: BaseException) -> bool:
    """Whether a failed connection attempt was the server refusing the credential."""
    pgconn = getattr(exc, "pgconn", None)
    return bool(pgconn is not None and getattr(pgconn, "used_password", False))


def auth_method_refusal(exc: BaseException) -> tuple[str, str] | None:
    """``(allowed methods, what the server asked for)`` when libpq's ``require_auth``
    refused the server's authentication request before sending anything; else None."""
    if refused_credential(exc):
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
        "in the function's environment"
    )


def login_failure_reason(exc: BaseException) -> str:
    """libpq's message on one line, its sentences kept apart (libpq ends a line without a full
    stop: "Connection refused" then "Is the server running ...?"). libpq never echoes the
    password it was given (but the exception's ``pgconn`` holds it: never log its repr)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    sentences = [line if line[-1] in ".?!:;" else f"{line}." for line in lines if line]
    return " ".join(sentences).removeprefix("connection failed: ").rstrip(".")
