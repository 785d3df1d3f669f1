"""One rotator per Lambda container, built on the first invocation and reused after."""

from __future__ import annotations

import threading
from collections.abc import Callable

from rotation.clients import secrets_manager_client
from rotation.dispatcher import Rotator
from rotation.store import SecretStore
from rotation.strategy import RotationStrategy

__all__ = ["LambdaEntrypoint"]


class LambdaEntrypoint:
    """Builds ``Rotator(strategy_factory(), SecretStore(client))`` once, lazily.

    Lazily, so that importing the handler module costs no client creation and a bad
    configuration fails an invocation (with context) rather than the import. Reused, so the
    client's connections and the store's version cache survive warm invocations.

    Example
    -------
    >>> _entry = LambdaEntrypoint(MyStrategy)
    >>> def lambda_handler(event, context):
    ...     return _entry(event, context)
    """

    def __init__(self, strategy_factory: Callable[[], RotationStrategy]) -> None:
        self._factory = strategy_factory
        self._rotator: Rotator | None = None
        self._lock = threading.Lock()

    @property
    def rotator(self) -> Rotator:
        with self._lock:
            if self._rotator is None:
                self._rotator = Rotator(self._factory(), SecretStore(secrets_manager_client()))
            return self._rotator

    def reset(self) -> None:
        """Forget the rotator, as a new container would (tests; endpoint changes)."""
        with self._lock:
            self._rotator = None

    def __call__(self, event: object, context: object) -> str:
        return self.rotator.handle(event, context)
