"""Telling a refused credential from an unreachable server, after a failed login.

A failed login raises a bare ``psycopg.OperationalError`` with no SQLSTATE (the server's
28P01 only reaches the client as text, which ``lc_messages`` may translate). What libpq does
record is whether it got as far as sending the password: ``pgconn.used_password``.

* sent, and still failed: the server answered and refused this credential (wrong password,
  unknown or NOLOGIN role, missing database). Worth trying another credential, not the same
  one again.
* not sent: DNS, TCP, timeout, TLS handshake or certificate verification failed first.
  Worth retrying later with the same credential.

This is the one place that makes that call; it is tested against a real server. It takes
the exception duck-typed so that importing it needs no driver.
"""

from __future__ import annotations

__all__ = ["login_failure_reason", "refused_credential"]


def refused_credential(exc: BaseException) -> bool:
    """Whether a failed connection attempt was the server refusing the credential."""
    pgconn = getattr(exc, "pgconn", None)
    return bool(pgconn is not None and getattr(pgconn, "used_password", False))


def login_failure_reason(exc: BaseException) -> str:
    """libpq's message on one line. libpq never echoes the password it was given (but the
    exception's ``pgconn`` holds it: never log its repr)."""
    return " ".join(str(exc).split()).removeprefix("connection failed: ")
