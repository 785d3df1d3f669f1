"""One secret's labelled versions as one process sees them: reads through a
:class:`~rotation_client.sources.SecretSource`, with forced refreshes single-flight,
rate-limited and their failures remembered (see :class:`~rotation_client.RefreshPolicy`).

This is where herd safety lives, so that every integration (plain connections, pools,
SQLAlchemy, Django, async) inherits it: they all read through one ``LabelledVersions`` per
secret and process.
"""

from __future__ import annotations

import inspect
import logging
import math
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rotation_client._retry import RefreshPolicy
from rotation_client.sources import SecretSource
from rotation_contract.errors import (
    SecretReadTimeoutError,
    SecretsManagerError,
    SecretsManagerUnavailableError,
)

__all__ = ["LabelledVersions"]


def _acquire(lock: threading.Lock, timeout_s: float) -> bool:
    """``lock``, waited for at most ``timeout_s`` seconds (forever when infinite)."""
    if math.isinf(timeout_s):
        return lock.acquire()
    return lock.acquire(timeout=max(timeout_s, 0.0))


@contextmanager
def _held(lock: threading.Lock) -> Iterator[None]:
    """Release ``lock``, acquired already, on the way out."""
    try:
        yield
    finally:
        lock.release()


@dataclass
class _Label:
    """What this process knows of one label, guarded by ``lock``.

    The lock is held while the source is asked, so that threads that need the same label
    at the same moment wait for one answer instead of asking each (single flight).
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    known: bool = False
    value: str | None = field(default=None, repr=False)  # a secret value: never in a repr
    # The last forced read: when it started, and how long until the next may start.
    refreshed_at: float = -math.inf
    interval_s: float = 0.0
    # The last failed read's message and type, raised again until ``failed_until``.
    failure: str | None = None
    failure_type: type[SecretsManagerError] = SecretsManagerError
    failed_until: float = -math.inf
    # Serving ``value`` although reading it again failed (logged once until a read works).
    stale: bool = False


class LabelledVersions:
    """The values of one secret's staging labels, read through ``source``.

    Parameters
    ----------
    secret_id:
        Name or ARN.
    source:
        Where values come from; its own cache (``max_age``) answers :meth:`read`.
    clock:
        Monotonic seconds (injectable, so that tests age intervals without sleeping).
    policy:
        The forced refreshes' minimum interval and its growth.
    """

    def __init__(
        self,
        secret_id: str,
        source: SecretSource,
        *,
        clock: Callable[[], float],
        policy: RefreshPolicy,
    ) -> None:
        self.secret_id = secret_id
        self.source = source
        self.clock = clock
        self.policy = policy
        self._labels: dict[str, _Label] = {}
        self._labels_lock = threading.Lock()
        self._bounded = _takes_timeout(source)

    def _label(self, stage: str) -> _Label:
        with self._labels_lock:
            return self._labels.setdefault(stage, _Label())

    def read(self, stage: str, *, timeout_s: float = math.inf) -> str | None:
        """The value under ``stage`` as the source's cache has it (asking Secrets Manager
        only when the cache is empty or older than ``max_age``), within ``timeout_s``.

        Stale if error: when that read fails for a transient cause (Secrets Manager
        unreachable, throttled, not answering, failing on its side) and this process knows
        a value, it gets that value (logged once), not the error: a working credential
        outlives an outage. With a value known, the read (or the wait for another thread's
        read of the label) gets half of ``timeout_s``, so that the login still has the
        rest. A permission, key or existence error is raised even then: serving an old
        password would hide a fact that only a person can fix.

        A read cut by the caller's own time
        (:class:`~rotation_contract.errors.SecretReadTimeoutError`) is neither remembered nor
        logged: the caller gets the value known, if any.

        Raises
        ------
        SecretReadTimeoutError
            The caller's time ran out, and no value is known yet.
        SecretsManagerUnavailableError
            A transient failure, and no value is known yet.
        SecretAccessError, SecretDeletedError, SecretsManagerError
            The read failed for a cause that waiting does not fix.
        """
        label = self._label(stage)
        start = self.clock()
        # With a value to fall back on, the read leaves the login half of the time.
        share = timeout_s / 2 if label.known else timeout_s
        if not _acquire(label.lock, share):
            # The reading thread holds the lock: what it had before is what we serve.
            if label.known:
                return label.value
            raise SecretReadTimeoutError(
                f"reading {stage} of {self.secret_id}: another thread's read did not end "
                f"within the caller's time ({timeout_s:.1f} s); give the call more time "
                "(ConnectRetry(timeout_s=...) or timeout_s=)"
            )
        try:
            try:
                self._raise_remembered(label, stage)
                left = share - (self.clock() - start)
                value = self._get(stage, force=False, timeout_s=left)
            except SecretReadTimeoutError:
                # The caller's own time, not Secrets Manager: nothing is remembered (other
                # callers have theirs) and nothing is logged as stale; the caller gets what
                # is known, as when it could not wait for another thread's read.
                if not label.known:
                    raise
                return label.value
            except SecretsManagerError as exc:
                if label.failure is None:
                    self._remember(label, exc)
                if not label.known or not isinstance(exc, SecretsManagerUnavailableError):
                    raise
                self._serve_stale(label, stage, exc)
                return label.value
            label.known, label.value, label.stale = True, value, False
            return value
        finally:
            label.lock.release()

    def _get(self, stage: str, *, force: bool, timeout_s: float) -> str | None:
        if not self._bounded:
            return self.source.get(self.secret_id, stage, force=force)
        if timeout_s <= 0:
            raise SecretReadTimeoutError(
                f"reading {stage} of {self.secret_id}: no time was left for the read; give "
                "the call more time (ConnectRetry(timeout_s=...) or timeout_s=)"
            )
        # The protocol's get does not name timeout_s (older sources lack it); ours take it.
        get: Callable[..., str | None] = self.source.get
        return get(self.secret_id, stage, force=force, timeout_s=timeout_s)

    def refresh(
        self, stage: str, tried: Collection[str], *, timeout_s: float = math.inf
    ) -> str | None:
        """The value under ``stage``, read past the cache, unless that would tell nothing new.

        ``tried`` holds the values the caller has tried (and been refused with) already.
        No forced read happens when another thread's read brought a value the caller has
        not tried yet (it gets that one), or when the last forced read of this label began
        less than the policy's interval ago (it gets that read's answer, or its error).
        Another thread's read is waited for at most ``timeout_s``; past that, the value
        known before is returned.

        Raises
        ------
        SecretReadTimeoutError
            The caller's time ran out during its own read (neither remembered nor counted
            as a forced read: nothing was learnt).
        SecretsManagerError
            The read failed (remembered for the policy's interval).
        """
        label = self._label(stage)
        start = self.clock()
        if not _acquire(label.lock, timeout_s):
            # Another thread's read is still under way and the caller's time is up: what
            # was known before (a value the caller has tried tells it nothing new, and its
            # connect() then ends as out of time).
            return label.value
        with _held(label.lock):
            if label.known and label.value is not None and label.value not in tried:
                return label.value
            now = self.clock()
            if now - label.refreshed_at < label.interval_s:
                self._raise_remembered(label, stage)
                return label.value
            try:
                left = timeout_s - (self.clock() - start)
                value = self._get(stage, force=True, timeout_s=left)
            except SecretReadTimeoutError:
                # The caller's own time ran out: nothing is remembered of it, and the
                # interval is left as it was (nothing was learnt).
                raise
            except SecretsManagerError as exc:
                label.refreshed_at = now
                label.interval_s = self.policy.after(label.interval_s, new=False)
                self._remember(label, exc)
                raise
            new = not label.known or value != label.value
            label.known, label.value, label.failure, label.stale = True, value, None, False
            label.refreshed_at = now
            label.interval_s = self.policy.after(label.interval_s, new=new)
            return value

    def _serve_stale(self, label: _Label, stage: str, exc: SecretsManagerError) -> None:
        if label.stale:
            return
        label.stale = True
        # Here, not at import: importing the client touches no logger. The message names
        # the secret and the failure (AWS messages name resources, never values).
        logging.getLogger(__name__).warning(
            "%s of %s could not be read again (%s); serving the value read before until a "
            "read succeeds",
            stage,
            self.secret_id,
            exc.problem,
        )

    def _remember(self, label: _Label, exc: SecretsManagerError) -> None:
        label.failure = exc.problem
        label.failure_type = type(exc)
        label.failed_until = self.clock() + max(label.interval_s, self.policy.min_interval_s)

    def _raise_remembered(self, label: _Label, stage: str) -> None:
        if label.failure is None:
            return
        left = label.failed_until - self.clock()
        if left <= 0:
            label.failure = None
            return
        # A fresh error each time: one exception object raised in many threads would share
        # (and grow) one traceback.
        raise label.failure_type(
            f"{label.failure} (a moment ago: {stage} of {self.secret_id} is asked again "
            f"in {left:.1f} s, not by every connection)"
        )


def _takes_timeout(source: SecretSource) -> bool:
    """Whether ``source.get`` takes ``timeout_s`` (ours do; one written before it existed
    is called without it)."""
    try:
        parameters = inspect.signature(source.get).parameters
    except (TypeError, ValueError):
        return False
    return "timeout_s" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )
