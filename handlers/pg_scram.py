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
module declines (:func:`deterministic_verifier` returns None) and the caller lets libpq
compute the verifier.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["DEFAULT_ITERATIONS", "deterministic_verifier", "scram_sha256_verifier", "token_salt"]

# PostgreSQL's default scram_iterations (a setting from PostgreSQL 16, reported to clients).
DEFAULT_ITERATIONS = 4096
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


def deterministic_verifier(
    password: str, *, token: str, role: str, iterations: int = DEFAULT_ITERATIONS
) -> str | None:
    """The verifier of ``password`` salted by :func:`token_salt`; None for a password
    SASLprep could change (non-ASCII), which libpq then handles with a random salt."""
    if not password.isascii():
        return None
    return scram_sha256_verifier(password.encode("ascii"), token_salt(token, role), iterations)
