"""The scrubbing filter on hand-made log records: every rendered part, and nothing else."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

import pytest

from rotation.scrub import REDACTED, Scrubber, ScrubbingFilter

SECRET = "s3cr3t-Pa55"


@pytest.fixture
def scrubber() -> Scrubber:
    scrubber = Scrubber()
    scrubber.add(SECRET)
    return scrubber


def _record(msg: object = "m", args: Any = None, exc: BaseException | None = None) -> Any:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def _filtered(scrubber: Scrubber, record: logging.LogRecord) -> logging.LogRecord:
    assert ScrubbingFilter(scrubber).filter(record) is True
    return record


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # any kind, to get its traceback
        return caught


@dataclass
class Holder:
    value: str


def test_scrub_value_blanks_nested_values_and_keeps_clean_ones_as_they_are(
    scrubber: Scrubber,
) -> None:
    clean = {"a": [1, "x", (2.0, None)], "b": {"c": True}}
    assert scrubber.scrub_value(clean) is clean
    dirty: dict[str, Any] = {SECRET: [SECRET, ("u", SECRET), {SECRET}], "o": Holder(SECRET), "n": 3}
    assert scrubber.scrub_value(dirty) == {
        REDACTED: [REDACTED, ("u", REDACTED), {REDACTED}],
        "o": f"Holder(value='{REDACTED}')",
        "n": 3,
    }
    assert dirty[SECRET][0] == SECRET  # the caller's data is not changed in place
    deep: Any = SECRET
    for _ in range(40):
        deep = [deep]
    assert SECRET not in str(scrubber.scrub_value(deep))


def test_message_arguments_and_extras(scrubber: Scrubber) -> None:
    record = _record("got %s and %d", (SECRET, 3))
    record.detail = {"k": [SECRET]}
    record.plain = "fine"
    _filtered(scrubber, record)
    assert record.getMessage() == f"got {REDACTED} and 3"
    assert record.detail == {"k": [REDACTED]}
    assert record.plain == "fine"


def test_arguments_that_do_not_fit_the_format_do_not_break_logging(scrubber: Scrubber) -> None:
    record = _filtered(scrubber, _record(f"{SECRET} %s %s", (SECRET,)))
    assert record.msg == f"{REDACTED} %s %s"
    assert record.args == (REDACTED,)


def test_a_broken_str_in_an_extra_does_not_break_logging(scrubber: Scrubber) -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    record = _record()
    broken = Broken()
    record.thing = broken
    _filtered(scrubber, record)
    assert record.thing is broken


def test_exception_chain_notes_and_texts(scrubber: Scrubber) -> None:
    cause = _raised(KeyError(SECRET))
    cause.add_note(f"note {SECRET}")
    try:
        raise RuntimeError("wrapper") from cause
    except RuntimeError as exc:
        outer = exc
    record = _record(exc=outer)
    record.exc_text = f"old text {SECRET}"
    record.stack_info = f"stack {SECRET}"
    _filtered(scrubber, record)
    assert record.exc_info is not None
    stand_in = record.exc_info[1]
    assert stand_in is not outer
    assert type(stand_in).__name__ == "RuntimeError"
    assert type(stand_in).__module__ == "builtins"
    rendered = "".join(traceback.format_exception(*record.exc_info))
    assert SECRET not in rendered
    assert f"KeyError: '{REDACTED}'" in rendered
    assert f"note {REDACTED}" in rendered
    assert "RuntimeError: wrapper" in rendered
    assert "direct cause" in rendered
    assert record.exc_text == f"old text {REDACTED}"
    assert record.stack_info == f"stack {REDACTED}"
    assert str(outer.__cause__) == repr(SECRET)  # the original is untouched


def test_an_exception_without_a_secret_is_left_as_it_is(scrubber: Scrubber) -> None:
    exc = _raised(ValueError("nothing to hide"))
    record = _filtered(scrubber, _record(exc=exc))
    assert record.exc_info is not None
    assert record.exc_info[1] is exc


def test_exception_groups_render_their_members_blanked(scrubber: Scrubber) -> None:
    group = _raised(ExceptionGroup("several", [ValueError(SECRET), OSError("fine")]))
    record = _filtered(scrubber, _record(exc=group))
    assert record.exc_info is not None
    rendered = "".join(traceback.format_exception(*record.exc_info))
    assert SECRET not in rendered
    assert f"ValueError: {REDACTED}" in rendered
    assert "OSError: fine" in rendered
    assert "ExceptionGroup: several (2 sub-exceptions)" in rendered


def test_a_cycle_of_contexts_is_rendered_once(scrubber: Scrubber) -> None:
    first = ValueError(SECRET)
    second = RuntimeError("second")
    first.__context__ = second
    second.__context__ = first
    record = _filtered(scrubber, _record(exc=first))
    assert record.exc_info is not None
    assert SECRET not in "".join(traceback.format_exception(*record.exc_info))


def test_with_no_secret_registered_the_record_is_untouched() -> None:
    record = _record("a %s", ("b",))
    _filtered(Scrubber(), record)
    assert record.args == ("b",)


def test_the_filter_blanks_what_the_standard_formatter_prints(scrubber: Scrubber) -> None:
    log = logging.getLogger("test.scrub.records")
    log.propagate = False
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(message)s %(detail)s"))
    log.addHandler(handler)
    log.addFilter(ScrubbingFilter(scrubber))
    try:
        raise ValueError(SECRET)
    except ValueError:
        log.exception("failed with %s", SECRET, extra={"detail": [SECRET]}, stack_info=True)
    finally:
        log.removeHandler(handler)
    (line,) = lines
    assert SECRET not in line
    assert f"ValueError: {REDACTED}" in line
