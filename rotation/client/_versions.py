"""One secret's labelled versions as one process sees them: reads through a
:class:`~rotation.client.sources.SecretSource`, with forced refreshes single-flight,
rate-limited and their failures remembered (see :class:`~rotation.client.RefreshPolicy`).

This is where herd safety lives, so that every integration (plain connections, pools,
SQLAlchemy, Django, async) inherits it: they all read through one ``LabelledVersions`` per
secret and process.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from rotation.client._retry import RefreshPolicy
from rotation.client.sources import SecretSource
from rotation.errors import SecretsManagerError

__all__ = ["LabelledVersions"]


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
    # The last failed read's message, raised again until ``failed_until``.
    failure: str | None = None
    failed_until: float = -math.inf


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

    def _label(self, stage: str) -> _Label:
        with self._labels_lock:
            return self._labels.setdefault(stage, _Label())

    def read(self, stage: str) -> str | None:
        """The value under ``stage`` as the source's cache has it (asking Secrets Manager
        only when the cache is empty or older than ``max_age``)."""
        label = self._label(stage)
        with label.lock:
            self._raise_remembered(label, stage)
            try:
                value = self.source.get(self.secret_id, stage, force=False)
            except SecretsManagerError as exc:
                self._remember(label, exc)
                raise
            label.known, label.value = True, value
            return value

    def refresh(self, stage: str, tried: Collection[str]) -> str | None:
        """The value under ``stage``, read past the cache, unless that would tell nothing new.

        ``tried`` holds the values the caller has tried (and been refused with) already.
        No forced read happens when another thread's read brought a value the caller has
        not tried yet (it gets that one), or when the last forced read of this label began
        less than the policy's interval ago (it gets that read's answer, or its error).
        """
        label = self._label(stage)
        with label.lock:
            if label.known and label.value is not None and label.value not in tried:
                return label.value
            now = self.clock()
            if now - label.refreshed_at < label.interval_s:
                self._raise_remembered(label, stage)
                return label.value
            try:
                value = self.source.get(self.secret_id, stage, force=True)
            except SecretsManagerError as exc:
                label.refreshed_at = now
                label.interval_s = self.policy.after(label.interval_s, new=False)
                self._remember(label, exc)
                raise
            new = not label.known or value != label.value
            label.known, label.value, label.failure = True, value, None
            label.refreshed_at = now
            label.interval_s = self.policy.after(label.interval_s, new=new)
            return value

    def _remember(self, label: _Label, exc: SecretsManagerError) -> None:
        label.failure = exc.problem
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
        raise SecretsManagerError(
            f"{label.failure} (a moment ago: {stage} of {self.secret_id} is asked again "
            f"in {left:.1f} s, not by every connection)"
        )
