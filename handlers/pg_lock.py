"""The pair's advisory-lock key, unguessable by anyone but the rotation.

Two invocations changing the same roles at once take turns on a transaction-scoped advisory
lock (:func:`handlers.pg_sql.pair_lock`). Any role that can connect may take any advisory
lock, so a key anyone can compute (once ``hashtext('secrets-rotation:' || owner)``) let an
application, or the holder of a leaked previous password, hold it at session level and make
every setSecret and every expiry of finishSecret time out: the leaked password was never
rotated nor expired. The key is now an HMAC keyed by a secret the rotation's concurrent
invocations share and applications do not hold:

- the master's transactions (multi-user setSecret, finishSecret's expiry, recovery,
  reconcile): the master's password, which every invocation reads from the same AWSCURRENT
  master secret;
- single-user's own-password change: the AWSPENDING password of this rotation, the same for
  every invocation of one rotation.

Tradeoff: a master-password rotation that lands between two racing invocations gives them
two keys, so they no longer take turns on the lock. That is acceptable: the lock only turns
PostgreSQL's "tuple concurrently updated" / duplicate-key errors into waiting; ``ALTER ROLE``
itself still serialises on the role's catalog row, the loser fails cleanly (nothing half
done: each change is one transaction) and the next attempt finds the work done.

The key is a bind parameter, so a server logging statements logs it: a value derived from a
password, a check for guesses. The secret is therefore derived with PBKDF2 at the same cost
as a SCRAM verifier (:data:`handlers.pg_scram.ITERATIONS`), so the logged key is no cheaper
to guess against than the verifier ``pg_authid`` already holds, and 64 bits of it are all
that is shown.
"""

from __future__ import annotations

import hashlib
import hmac

from handlers.pg_scram import ITERATIONS

__all__ = ["lock_secret", "pair_lock_key"]

_SECRET_CONTEXT = b"pg-secrets-rotation pair lock v1\x00"


def lock_secret(password: str) -> bytes:
    """The key the lock keys are derived from, so that the password itself need not be
    kept (e.g. on :class:`handlers.master.MasterSession`)."""
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), _SECRET_CONTEXT, ITERATIONS)


def pair_lock_key(secret: bytes, owner: str) -> int:
    """The 64-bit key (``pg_advisory_xact_lock(bigint)``) of ``owner``'s pair."""
    digest = hmac.digest(secret, owner.encode("utf-8"), hashlib.sha256)
    return int.from_bytes(digest[:8], "big", signed=True)
