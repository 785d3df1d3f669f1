"""Keeping secret values out of messages.

The dispatcher's layer owns this, not the database code: every secret value read or written
during an invocation is registered here, and every log line and every error message that
leaves the handler passes through :meth:`Scrubber.scrub`.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "Scrubber", "ScrubbingFilter", "is_secret_key"]

REDACTED = "********"
# Short values would redact ordinary words (a password "a" would mangle every message);
# the password policy makes real ones far longer.
_MIN_SECRET_LENGTH = 4
_SECRET_KEY_MARKERS = ("password", "secret", "token", "key", "credential")
# A warm container rotates many secrets over its life; remember the most recent values.
_MAX_VALUES = 1024


def is_secret_key(key: str) -> bool:
    """Whether a secret JSON key names a value that must never be shown."""
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_KEY_MARKERS)


class Scrubber:
    """A set of secret strings and a way to blank them out of text. Thread-safe."""

    def __init__(self, max_values: int = _MAX_VALUES) -> None:
        self._values: OrderedDict[str, None] = OrderedDict()
        self._max = max_values
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            with self._lock:
                self._values[value] = None
                self._values.move_to_end(value)
                while len(self._values) > self._max:
                    self._values.popitem(last=False)

    def add_secret_json(self, raw: str, value: Mapping[str, Any] | None) -> None:
        """Register the raw secret string and every secret-looking field of its JSON."""
        self.add(raw)
        for key, item in (value or {}).items():
            if isinstance(item, str) and is_secret_key(key):
                self.add(item)

    def scrub(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def scrub_exception_chain(self, exc: BaseException) -> None:
        """Blank secrets out of the messages of ``exc`` and every exception it chains to."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if any(isinstance(arg, str) and self.scrub(arg) != arg for arg in current.args):
                current.args = tuple(
                    self.scrub(arg) if isinstance(arg, str) else arg for arg in current.args
                )
            current = current.__cause__ or current.__context__


class ScrubbingFilter(logging.Filter):
    """A logging filter that renders each record's message and blanks secrets out of it."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            message = record.getMessage()
            record.msg = self.scrubber.scrub(message)
            record.args = None
        return True
