"""A status line on the terminal while a rotation waits: the step, what it waits for, the
attempt and the time the step has left.

A database that accepts connections and never answers keeps a step busy for its whole
budget; without this the command would print nothing for half a minute. The line is written
to stderr and rewritten in place, and cleared before any other output, so it leaves nothing
behind in the scrollback; only on a terminal, and never with ``--json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TextIO

from rotation.retry import PROGRESS_LOGGER

__all__ = ["Progress"]

_CLEAR_LINE = "\r\033[K"


class Progress(logging.Handler):
    """Renders the retry layer's progress records (``rotation.retry``) as one status line."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(logging.DEBUG)
        self.stream = stream
        self.step: str | None = None
        self._shown = False

    # -- wiring ---------------------------------------------------------------------------

    def attach(self) -> None:
        source = logging.getLogger(PROGRESS_LOGGER)
        source.setLevel(logging.DEBUG)
        source.addHandler(self)

    def detach(self) -> None:
        self.clear()
        logging.getLogger(PROGRESS_LOGGER).removeHandler(self)

    def wrap(self, handler: Callable[[dict[str, Any], Any], object]) -> Any:
        """``handler`` (a rotation function), showing each step's name while it runs."""

        def run_step(event: dict[str, Any], context: Any) -> object:
            self.step = str(event.get("Step", ""))
            self.show(f"{self.step}: starting")
            try:
                return handler(event, context)
            finally:
                self.clear()
                self.step = None

        return run_step

    # -- output ---------------------------------------------------------------------------

    def show(self, text: str) -> None:
        self.stream.write(_CLEAR_LINE + text)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the status line (before other output, and at the end)."""
        if self._shown:
            self.stream.write(_CLEAR_LINE)
            self.stream.flush()
            self._shown = False

    def emit(self, record: logging.LogRecord) -> None:
        what = getattr(record, "what", record.getMessage())
        attempt = getattr(record, "attempt", None)
        attempts = getattr(record, "attempts", None)
        left = getattr(record, "time_left_s", None)
        prefix = f"{self.step}: " if self.step else ""
        of = f" of {attempts}" if attempts else ""
        remaining = f", {left:.0f} s left in the step" if left is not None else ""
        failed = getattr(record, "failed_with", None)
        if failed is not None:
            retry_in = getattr(record, "retry_in_s", 0.0) or 0.0
            self.show(
                f"{prefix}{what}: attempt {attempt}{of} failed ({failed}), next in "
                f"{retry_in:.1f} s{remaining}"
            )
        else:
            self.show(f"{prefix}{what}: attempt {attempt}{of}, waiting{remaining}")
