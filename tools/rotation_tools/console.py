"""Output for people and for scripts: one line per fact, colour only on a terminal, or JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rotation_tools.progress import Progress

__all__ = ["Console"]

# Step outcomes worth a note; "done" is plain "ok".
_OUTCOME_NOTES = {
    "kept-existing": "kept the pending value stored before",
    "already-current": "already AWSCURRENT: nothing to do",
}
_COLOURS = {"ok": "32", "fail": "31", "warn": "33", "dim": "2", "bold": "1"}


class Console:
    """Writes to ``stream``. In JSON mode, lines are suppressed and :meth:`result` prints one
    JSON document at the end."""

    def __init__(self, *, json_mode: bool = False, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.json_mode = json_mode
        self.colour = (
            not json_mode
            and hasattr(self.stream, "isatty")
            and self.stream.isatty()
            and "NO_COLOR" not in os.environ
        )
        # A status line on the terminal (rotation_tools.progress), cleared before any output.
        self.progress: Progress | None = None

    def paint(self, text: str, style: str) -> str:
        if not self.colour:
            return text
        return f"\033[{_COLOURS[style]}m{text}\033[0m"

    def line(self, text: str = "") -> None:
        if not self.json_mode:
            if self.progress is not None:
                self.progress.clear()
            print(text, file=self.stream, flush=True)

    def heading(self, text: str) -> None:
        self.line()
        self.line(self.paint(text, "bold"))

    def check(self, ok: bool | None, name: str, detail: str = "", hint: str = "") -> None:
        """A doctor-style line: ``ok``/``FAIL``/``skip``, the check, what was found."""
        if ok is None:
            mark = self.paint("skip", "warn")
        else:
            mark = self.paint("ok  ", "ok") if ok else self.paint("FAIL", "fail")
        self.line(f"  {mark} {name}{': ' + detail if detail else ''}")
        if hint and ok is False:
            self.line(f"       {self.paint('fix:', 'warn')} {hint}")

    def step(self, record: Any, indent: str = "  ") -> None:
        """One rotation step (a :class:`rotation.StepRecord`): its name, duration and
        outcome, "ok" for a plain success."""
        if record.error is not None:
            mark = self.paint("FAILED", "fail")
        else:
            mark = self.paint("ok", "ok")
            if record.outcome in _OUTCOME_NOTES:
                mark += f" ({_OUTCOME_NOTES[record.outcome]})"
        self.line(f"{indent}{record.step.value:<13} {record.duration_s * 1000:7.1f} ms  {mark}")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        widths = [len(h) for h in headers]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        self.line("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            self.line("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))

    def result(self, document: dict[str, Any]) -> None:
        if self.json_mode:
            print(json.dumps(document, indent=2, default=str), file=self.stream, flush=True)

    def error(self, message: str) -> None:
        """One line on stderr: expected errors get no traceback."""
        if self.progress is not None:
            self.progress.clear()
        print(f"rotation: error: {message}", file=sys.stderr, flush=True)
