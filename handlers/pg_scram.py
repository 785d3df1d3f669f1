"""SCRAM-SHA-256 verifiers computed here, with a salt chosen by the caller.

libpq's ``PQencryptPasswordConn`` draws a random salt, so setting the same password twice
stores two different verifiers. Multi-user setSecret sets the pending user's password on
every attempt (it cannot ask the server whether that password is already in place: the
stored verifier is in ``pg_authid``, which an RDS master may not read, and logging in as the
pending user first costs a refused login on every clean rotation). With a salt derived from
the rotation's token and the role, a re-attempt writes the byte-identical verifier: the
catalog ends exactly as it was, and whatever caches a user's SCRAM keys (a pooler's
``auth_query``) stays valid.

The salt is public (it is part of the verifier) and need only be unique per password; the
token is a fresh UUID per rotation, so it is. It is never derived from the password: a salt
that depended on the password would let a guess be checked with one cheap hash instead of
the iterated one.

RFC 5802 / RFC 7677, as PostgreSQL's ``scram_build_secret`` builds it. PostgreSQL applies
SASLprep to the password, which leaves an ASCII password unchanged; for anything else this
module declines (:func:`deterministic_verifier` and :func:`random_verifier` return None) and
the caller lets libpq compute the verifier (see :func:`handlers.pg_sql.scram_verifier`).

The iteration count is always :data:`ITERATIONS`, never the server's ``scram_iterations``
(PostgreSQL 16+ reports it at login): that setting is under the control of the role itself
(``ALTER ROLE ... SET``) and of the database's owner, so taking it would let them make the
PBKDF2 here run for hours (no rotation ever finishes, the leaked password stays) or store a
verifier of one iteration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = [
    "ITERATIONS",
    "deterministic_verifier",
    "random_verifier",
    "scram_sha256_verifier",
    "token_salt",
]

# The one iteration count of every verifier we compute: PostgreSQL's default
# scram_iterations. Fixed here, never read from the server (see the module's docstring).
ITERATIONS = 4096
_SALT_BYTES = 16  # what PostgreSQL's own verifiers use
_SALT_CONTEXT = b"pg-secrets-rotation scram salt v1\x00"


def token_salt(token: str, role: str) -> bytes:
    """The salt for ``role``'s password in the rotation ``token``: unique per rotation and
    role, public, independent of the password."""
    digest = hashlib.sha256(_SALT_CONTEXT + token.encode("utf-8") + b"\x00" + role.encode("utf-8"))
    return digest.digest()[:_SALT_BYTES]


def scram_sha256_verifier(password: bytes, salt: bytes, iterations: int) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (base64 parts)."""
    salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}$"
        f"{b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def deterministic_verifier(password: str, *, token: str, role: str) -> str | None:
    """The verifier of ``password`` salted by :func:`token_salt`; None for a password
    SASLprep could change (non-ASCII), which the caller hands to libpq."""
    if not password.isascii():
        return None
    return scram_sha256_verifier(password.encode("ascii"), token_salt(token, role), ITERATIONS)


def random_verifier(password: str) -> str | None:
    """The verifier of ``password`` with a fresh random salt (as libpq would draw one);
    None for a password SASLprep could change (non-ASCII)."""
    if not password.isascii():
        return None
    return scram_sha256_verifier(
        password.encode("ascii"), secrets.token_bytes(_SALT_BYTES), ITERATIONS
    )
