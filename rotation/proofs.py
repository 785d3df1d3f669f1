"""What this container has seen log in: the proofs finishSecret promotes on.

finishSecret moves AWSCURRENT only to a version whose password has logged in for this
token (the contract's *Proof before promotion*). Secrets Manager invokes the four steps back
to back, usually in one warm container, so testSecret's login is normally the proof, and
finishSecret finds it here at no cost. Where it does not (a new container, a manual or
out-of-order invoke, a proof grown old), finishSecret logs in itself.

A proof is bound to the secret, the token and the exact pending value, by a keyed hash
whose key lives only in this process's memory: the memo never holds a password, nor
anything that could be checked against one outside this process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["PROOF_MAX_AGE_S", "ProofMemo"]

# Secrets Manager runs testSecret and finishSecret seconds apart; a proof older than one
# Lambda invocation's longest life (15 minutes) belongs to a rotation someone finishes by
# hand much later, when the database may have changed since: it is checked again.
PROOF_MAX_AGE_S = 900.0
# One entry per rotation in flight in this container; a few hundred is far beyond that.
_MAX_ENTRIES = 256


class ProofMemo:
    """Per-container memory of pending values whose password logged in. Thread-safe.

    Parameters
    ----------
    clock:
        Monotonic time, for the age of a proof (inject one in tests).
    max_age_s:
        How long a proof counts.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_age_s: float = PROOF_MAX_AGE_S,
        max_entries: int = _MAX_ENTRIES,
    ) -> None:
        self._key = secrets.token_bytes(32)
        self._clock = clock
        self._max_age_s = max_age_s
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _fingerprint(self, secret_string: str) -> bytes:
        return hmac.digest(self._key, secret_string.encode("utf-8"), hashlib.sha256)

    def record(self, arn: str, token: str, secret_string: str) -> None:
        """The pending value ``secret_string`` of ``token`` has just logged in."""
        entry = (self._fingerprint(secret_string), self._clock())
        with self._lock:
            self._entries[(arn, token)] = entry
            self._entries.move_to_end((arn, token))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def holds(self, arn: str, token: str, secret_string: str) -> bool:
        """Whether ``secret_string`` logged in for ``token`` here, recently enough."""
        with self._lock:
            entry = self._entries.get((arn, token))
        if entry is None:
            return False
        fingerprint, when = entry
        fresh = self._clock() - when <= self._max_age_s
        return fresh and hmac.compare_digest(fingerprint, self._fingerprint(secret_string))
