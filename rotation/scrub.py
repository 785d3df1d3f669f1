"""Keeping secret values out of messages.

The dispatcher's layer owns this, not the database code: every secret value read or written
during an invocation is registered here, and every log line and every error message that
leaves the handler passes through :meth:`Scrubber.scrub`.

A log line renders more than its message: the ``%`` arguments, every ``extra=`` field
(nested in dicts and lists or not), the exception and every exception it chains to, their
notes, and the stack. :class:`ScrubbingFilter` blanks all of them, because a secret in any
one of them reaches CloudWatch.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import types
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from rotation.errors import RotationError

__all__ = ["REDACTED", "Scrubber", "ScrubbingFilter", "is_secret_key", "renderings"]

REDACTED = "********"
# A value shorter than this is blanked only as a whole token (see _short_pattern): blanked
# as a substring, a password "on" would blank every "connection" and "host". Not a floor on
# what is scrubbed: every registered value is, however short.
_SHORT = 4
_SECRET_KEY_MARKERS = ("password", "secret", "token", "key", "credential")
# A warm container rotates many secrets over its life; remember the most recent values.
_MAX_VALUES = 1024
# What RotationError.__str__ renders, besides args: each is read directly by some callers.
_RENDERED_FIELDS = ("problem", "secret_id", "step", "token")


def is_secret_key(key: str) -> bool:
    """Whether a secret JSON key names a value that must never be shown."""
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_KEY_MARKERS)


# -- how code renders a value before the log sees it ------------------------------------------
# A strategy that writes f"{password!r}", json.dumps(value) or a connection URL into a
# message hands the log an escaped form: `pa\'ss` for `pa'ss`. Each function gives the body
# of one such rendering (without its quotes); each registered value is blanked in all of them.


def _repr_body(text: str) -> str:
    """repr()'s escaping of each character, quotes left alone (repr of ``text`` by itself
    when it holds a single kind of quote; repr of a list or dict renders each item so)."""
    return "".join(repr(char)[1:-1] for char in text)


def _repr_body_quoted(text: str) -> str:
    """repr() of a string holding both kinds of quote: it escapes the single quote (and so
    does libpq's conninfo quoting)."""
    return _repr_body(text).replace("'", "\\'")


def _json_body(text: str) -> str:
    return json.dumps(text)[1:-1]


def _json_body_unicode(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _url_quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def _sql_quoted(text: str) -> str:
    return text.replace("'", "''")


# Applied twice over (a JSON document's repr, a JSON string inside JSON), then the flat ones.
_NESTING_ESCAPES: tuple[Callable[[str], str], ...] = (
    _repr_body,
    _repr_body_quoted,
    _json_body,
    _json_body_unicode,
)
_FLAT_ESCAPES: tuple[Callable[[str], str], ...] = (_url_quoted, _sql_quoted)
_NESTING = 2


def renderings(value: str) -> frozenset[str]:
    """``value`` and every escaped form of it that a message may carry."""
    forms = {value}
    layer = {value}
    for _ in range(_NESTING):
        layer = {escape(form) for form in layer for escape in _NESTING_ESCAPES} - forms
        forms |= layer
    forms |= {escape(value) for escape in _FLAT_ESCAPES}
    forms.discard("")
    return frozenset(forms)


def _short_pattern(value: str, form: str) -> str:
    """A regex matching ``form`` (a rendering of the short ``value``) as a whole token.

    A value with a letter or digit is not blanked where it would split a run of letters and
    digits: ``ab`` is blanked in ``password=ab;`` and ``'ab'``, not in ``about``. A value of
    punctuation alone is blanked only standing between whitespace, quotes or the text's ends
    (``*-`` would otherwise blank inside every option list and every redaction mark).
    """
    body = re.escape(form)
    if any(char.isalnum() for char in value):
        before = r"(?<![^\W_])" if form[0].isalnum() else ""
        after = r"(?![^\W_])" if form[-1].isalnum() else ""
        return f"{before}{body}{after}"
    return rf"(?<![^\s'\"]){body}(?![^\s'\"])"


def _make_blanker(values: Mapping[str, frozenset[str]]) -> Callable[[str], str]:
    # Longest first: a value that contains another is blanked whole. Short values last
    # (all are shorter than any long one), as tokens.
    long_forms = sorted(
        {form for value, forms in values.items() if len(value) >= _SHORT for form in forms},
        key=len,
        reverse=True,
    )
    short = sorted(
        {(value, form) for value, forms in values.items() if len(value) < _SHORT for form in forms},
        key=lambda pair: len(pair[1]),
        reverse=True,
    )
    pattern = (
        re.compile("|".join(_short_pattern(value, form) for value, form in short))
        if short
        else None
    )

    def blank(text: str) -> str:
        for form in long_forms:
            if form in text:
                text = text.replace(form, REDACTED)
        if pattern is not None and pattern.search(text):
            text = pattern.sub(REDACTED, text)
        return text

    return blank


class Scrubber:
    """A set of secret strings and a way to blank them out of text. Thread-safe.

    Every registered value is blanked, however short (a value under four characters as a
    whole token only), in every rendering of it a message may carry: as it is, as ``repr``
    and ``%r`` write it, as JSON writes it (nested twice), URL-quoted and SQL-quoted.
    The most recent ``max_values`` values are kept; registering one again makes it recent.
    """

    def __init__(self, max_values: int = _MAX_VALUES) -> None:
        self._values: OrderedDict[str, frozenset[str]] = OrderedDict()
        self._max = max_values
        self._lock = threading.Lock()
        self._blank: Callable[[str], str] | None = None

    def add(self, value: str | None) -> None:
        if not value:
            return
        with self._lock:
            if value in self._values:
                self._values.move_to_end(value)
                return
        forms = renderings(value)  # outside the lock: other threads keep logging meanwhile
        with self._lock:
            self._values[value] = forms
            self._values.move_to_end(value)
            while len(self._values) > self._max:
                self._values.popitem(last=False)
            self._blank = None

    def add_secret_json(self, raw: str, value: Mapping[str, Any] | None) -> None:
        """Register the raw secret string and every secret-looking field of its JSON."""
        self.add(raw)
        for key, item in (value or {}).items():
            if isinstance(item, str) and is_secret_key(key):
                self.add(item)

    def __bool__(self) -> bool:
        """Whether any value is registered (when none is, there is nothing to blank)."""
        with self._lock:
            return bool(self._values)

    def blanker(self) -> Callable[[str], str]:
        """A function blanking the values registered now out of a string: for scrubbing many
        strings (a whole log record) against one snapshot. It returns its argument itself
        when there was nothing to blank, so callers can tell by identity."""
        with self._lock:
            if self._blank is None:
                self._blank = _make_blanker(dict(self._values))
            return self._blank

    def scrub(self, text: str) -> str:
        return self.blanker()(text)

    def scrub_value(self, value: object) -> Any:
        """``value`` with secrets blanked out of every string in it, nested in dicts, lists,
        tuples and sets; any other object that renders a secret becomes its blanked text.
        Returns ``value`` itself when it holds no secret; never changes it in place."""
        return _scrub_value(value, self.blanker(), 0)

    def scrub_exception_chain(self, exc: BaseException) -> None:
        """Blank secrets out of ``exc`` and every exception it renders with (causes,
        contexts, exception-group members), in place: their ``args`` (strings, and any
        other argument that renders a secret, as :meth:`scrub_value` does), their notes
        (``add_note``), and the attributes a :class:`~rotation_contract.errors.RotationError`
        renders from (``problem``, which ``--json`` output and the verification summary read
        directly, and its context fields)."""
        blank = self.blanker()
        for current in _chain(exc):
            _scrub_args(current, blank)
            notes = getattr(current, "__notes__", None)
            if isinstance(notes, list) and any(
                blank(_safe_str(note)) != _safe_str(note) for note in notes
            ):
                current.__notes__ = [blank(_safe_str(note)) for note in notes]
            if isinstance(current, RotationError):
                for name in _RENDERED_FIELDS:
                    value = getattr(current, name, None)
                    if isinstance(value, str) and blank(value) != value:
                        setattr(current, name, blank(value))


def _scrub_args(exc: BaseException, blank: Callable[[str], str]) -> None:
    """``exc.args`` with secrets blanked, any kind of argument; a group's members are not
    arguments to render here (they are exceptions of their own, walked by the caller)."""
    args = exc.args
    if isinstance(exc, BaseExceptionGroup):
        message = args[0] if args else None
        if isinstance(message, str) and blank(message) != message:
            exc.args = (blank(message), *args[1:])
        return
    scrubbed = tuple(_scrub_value(arg, blank, 0) for arg in args)
    if any(new is not old for new, old in zip(scrubbed, args, strict=True)):
        exc.args = scrubbed


# Deep enough for any real log payload; below it, whatever is left renders as blanked text.
_MAX_DEPTH = 16


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break logging
        return f"<{type(value).__name__} object: str() failed>"


def _scrub_value(value: object, blank: Callable[[str], str], depth: int) -> Any:
    if isinstance(value, str):
        return blank(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if depth < _MAX_DEPTH and isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _scrub_container(value, blank, depth)
    # Anything else (an exception, a dataclass, a path) renders as its text: JSON
    # formatters call str() on it. Replace it only when that text carries a secret.
    text = _safe_str(value)
    blanked = blank(text)
    return blanked if blanked is not text else value


def _scrub_container(
    value: Mapping[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any],
    blank: Callable[[str], str],
    depth: int,
) -> Any:
    if isinstance(value, Mapping):
        pairs = list(value.items())
        items = [
            (_scrub_value(k, blank, depth + 1), _scrub_value(v, blank, depth + 1)) for k, v in pairs
        ]
        changed = any(
            new_k is not k or new_v is not v
            for (new_k, new_v), (k, v) in zip(items, pairs, strict=True)
        )
        return dict(items) if changed else value
    originals = list(value)
    scrubbed = [_scrub_value(item, blank, depth + 1) for item in originals]
    if all(new is old for new, old in zip(scrubbed, originals, strict=True)):
        return value
    # A list stays a list; a tuple (a named one too) or a set becomes its plain kind.
    if isinstance(value, list):
        return scrubbed
    if isinstance(value, tuple):
        return tuple(scrubbed)
    return set(scrubbed) if isinstance(value, set) else frozenset(scrubbed)


class _ScrubbedException(Exception):  # noqa: N818  # stands in for any exception's class
    """Stands in, in a log record, for an exception whose text carried a secret.

    Subclassed per original class with the same name, qualified name and module, so the
    rendered traceback reads as the original did, with the secret blanked. The original
    exception is left as it was: the program may still need it.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class _ScrubbedGroup(ExceptionGroup[Exception]):
    """The same, for an exception group: its sub-exceptions are rendered too."""


_stand_in_classes: dict[tuple[type[BaseException], bool], type[Exception]] = {}
_stand_in_lock = threading.Lock()


def _stand_in_class(original: type[BaseException], group: bool) -> type[Exception]:
    """One stand-in class per original class (a process logs a handful of kinds)."""
    with _stand_in_lock:
        found = _stand_in_classes.get((original, group))
        if found is None:
            base: type[Exception] = _ScrubbedGroup if group else _ScrubbedException
            found = types.new_class(
                original.__name__,
                (base,),
                exec_body=lambda ns: ns.update(
                    {"__qualname__": original.__qualname__, "__module__": original.__module__}
                ),
            )
            _stand_in_classes[(original, group)] = found
        return found


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it renders with: causes, contexts, group members."""
    found: list[BaseException] = []
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        found.append(current)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
    return found


def _renders_a_secret(exc: BaseException, blank: Callable[[str], str]) -> bool:
    text = _safe_str(exc)
    if blank(text) is not text:
        return True
    notes = getattr(exc, "__notes__", None) or ()
    return any(blank(note) is not note for note in map(_safe_str, notes))


def _stand_in(
    exc: BaseException, blank: Callable[[str], str], made: dict[int, BaseException]
) -> BaseException:
    if id(exc) in made:
        return made[id(exc)]
    stand_in: BaseException
    if isinstance(exc, BaseExceptionGroup):
        members = [_stand_in(member, blank, made) for member in exc.exceptions]
        stand_in = _stand_in_class(type(exc), True)(blank(_safe_str(exc.message)), members)
    else:
        stand_in = _stand_in_class(type(exc), False)(blank(_safe_str(exc)))
    made[id(exc)] = stand_in
    stand_in.__traceback__ = exc.__traceback__
    # Setting __cause__ sets __suppress_context__; restore the original's afterwards.
    if exc.__cause__ is not None:
        stand_in.__cause__ = _stand_in(exc.__cause__, blank, made)
    if exc.__context__ is not None:
        stand_in.__context__ = _stand_in(exc.__context__, blank, made)
    stand_in.__suppress_context__ = exc.__suppress_context__
    notes = getattr(exc, "__notes__", None)
    if notes:
        stand_in.__notes__ = [blank(_safe_str(note)) for note in notes]
    return stand_in


# What every LogRecord has; anything else on a record came from ``extra=`` (or a filter,
# or ``message``, left by a formatter that ran before). Of these, the ones that carry the
# caller's text (msg, args, exc_info, exc_text, stack_info) are scrubbed one by one.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"asctime", "taskName"}


class ScrubbingFilter(logging.Filter):
    """A logging filter that blanks secrets out of everything a record renders.

    The message (rendered with its arguments), every ``extra=`` field, the exception with
    its causes, contexts, group members and notes, the formatted exception text and the
    stack. Records are rewritten in place, so every handler after the filter (and every
    formatter: plain text, JSON) sees only blanked text.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.scrubber:
            return True
        blank = self.scrubber.blanker()
        self._message(record, blank)
        for name, value in list(vars(record).items()):
            if name in _STANDARD_ATTRIBUTES:
                continue
            scrubbed = _scrub_value(value, blank, 0)
            if scrubbed is not value:
                setattr(record, name, scrubbed)
        self._exception(record, blank)
        return True

    @staticmethod
    def _message(record: logging.LogRecord, blank: Callable[[str], str]) -> None:
        if isinstance(record.msg, str):
            try:
                rendered = record.getMessage()
            except Exception:  # arguments that do not fit the format
                record.msg = blank(record.msg)
                record.args = _scrub_value(record.args, blank, 0)
                return
            record.msg = blank(rendered)
            record.args = None
            return
        # A dict message (Powertools renders it as JSON) or any other object.
        record.msg = _scrub_value(record.msg, blank, 0)
        if record.args:
            record.args = _scrub_value(record.args, blank, 0)

    @staticmethod
    def _exception(record: logging.LogRecord, blank: Callable[[str], str]) -> None:
        exc_info = record.exc_info
        if (
            isinstance(exc_info, tuple)
            and isinstance(exc_info[1], BaseException)
            and any(_renders_a_secret(exc, blank) for exc in _chain(exc_info[1]))
        ):
            stand_in = _stand_in(exc_info[1], blank, {})
            record.exc_info = (type(stand_in), stand_in, exc_info[2])
        if record.exc_text:
            record.exc_text = blank(record.exc_text)
        if record.stack_info:
            record.stack_info = blank(record.stack_info)
