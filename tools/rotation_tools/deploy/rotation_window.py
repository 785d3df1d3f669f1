"""Secrets Manager's rotation schedules and windows, checked before Secrets Manager sees them.

Secrets Manager's rules (``RotationRulesType``): a schedule is ``rate(N hours)`` (at least 4),
``rate(N days)`` (1 to 1000) or ``cron(...)`` in UTC; the window (``Duration``, ``Nh``, 1 to
24) starts as the schedule says (a ``rate()`` at midnight UTC) and "must not extend into
the next rotation window or the next UTC day". Without a ``Duration``, a schedule in hours
has a one-hour window and one in days a window to the end of the UTC day. Windows of one
day must start at least 4 hours apart.

Used by the CDK construct at synth (``rotation_cdk``), by ``template.yaml``'s parameter
patterns (:data:`SCHEDULE_PATTERN`, :data:`DURATION_PATTERN`; CloudFormation checks only
the syntax, Secrets Manager the rest at deploy) and by ``rotation plan`` for the next
windows of a secret.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

__all__ = [
    "DURATION_PATTERN",
    "MIN_HOURS_APART",
    "RULE",
    "SCHEDULE_PATTERN",
    "Window",
    "WindowError",
    "check_rules",
    "daily_windows",
    "next_windows",
]

RULE = (
    "Secrets Manager's rule: rate(N hours) with N >= 4, rate(N days) with N from 1 to 1000, "
    "or cron(...) in UTC; windows at least 4 hours apart; Duration Nh from 1h to 24h, and "
    "a window must not extend into the next window or the next UTC day"
)
SCHEDULE_PATTERN = r"^(rate\([1-9][0-9]* (hour|hours|day|days)\)|cron\([^()]+\))$"
DURATION_PATTERN = r"^([1-9]|1[0-9]|2[0-4])h$"
MIN_HOURS_APART = 4
_DAY = 24 * 60
_RATE = re.compile(r"rate\(([1-9][0-9]*) (hour|hours|day|days)\)")
_CRON = re.compile(r"cron\(([^()]+)\)")


class WindowError(ValueError):
    """A schedule or window Secrets Manager would refuse (a rate under 4 hours, windows less than
    4 hours apart, a window that runs into the next one or the next UTC day); the message
    states its rule.

    Fix: choose a schedule and window (``RotationScheduleExpression``, ``RotationWindow``; the
    construct's ``schedule``, ``window``) within the rule the message quotes.
    """


@dataclass(frozen=True)
class Window:
    """One rotation window of a day: its start and end in minutes after 00:00 UTC."""

    start_min: int
    end_min: int


def _duration_minutes(duration: str | None) -> int | None:
    if duration is None:
        return None
    if re.fullmatch(DURATION_PATTERN, duration) is None:
        raise WindowError(f"window {duration!r} is not a whole number of hours (1h to 24h). {RULE}")
    return int(duration[:-1]) * 60


def _field(text: str, low: int, high: int, what: str) -> list[int]:
    """One cron field as the values it takes (``*``, ``a``, ``a,b``, ``a-b``, ``*/n``, ``a/n``,
    ``a-b/n``)."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, last_text = base.split("-", 1)
            first, last = int(first_text), int(last_text)
        else:
            first = int(base)
            last = high if step_text else first
        if not (low <= first <= last <= high) or step < 1:
            raise WindowError(f"cron {what} field {text!r} is out of range. {RULE}")
        values.update(range(first, last + 1, step))
    return sorted(values)


def _cron_starts(expression: str, match: re.Match[str]) -> list[int]:
    fields = match.group(1).split()
    if len(fields) != 6:
        raise WindowError(
            f"{expression!r} has {len(fields)} fields; Secrets Manager's cron has 6 "
            f"(minutes hours day-of-month month day-of-week year). {RULE}"
        )
    try:
        minutes = _field(fields[0], 0, 59, "minutes")
        hours = _field(fields[1], 0, 23, "hours")
    except ValueError as exc:
        if isinstance(exc, WindowError):
            raise
        raise WindowError(
            f"{expression!r} is not a cron expression Secrets Manager reads. {RULE}"
        ) from exc
    if len(minutes) != 1:
        raise WindowError(f"{expression!r}: a window starts at one minute of the hour. {RULE}")
    return [hour * 60 + minutes[0] for hour in hours]


def daily_windows(expression: str, duration: str | None = None) -> list[Window]:
    """The windows a schedule opens in one UTC day (a ``rate(N days)`` schedule: the one of
    the days it rotates). Raises :class:`WindowError` with Secrets Manager's rule."""
    window = _duration_minutes(duration)
    rate = _RATE.fullmatch(expression)
    if rate is not None:
        count, unit = int(rate.group(1)), rate.group(2)
        if unit.startswith("hour"):
            if count < MIN_HOURS_APART:
                raise WindowError(f"{expression!r} rotates more often than every 4 hours. {RULE}")
            starts = list(range(0, _DAY, count * 60))
            hourly = True
        else:
            if count > 1000:
                raise WindowError(f"{expression!r} is more than 1000 days. {RULE}")
            starts, hourly = [0], False
    elif (cron := _CRON.fullmatch(expression)) is not None:
        starts = _cron_starts(expression, cron)
        hourly = len(starts) > 1
    else:
        raise WindowError(f"schedule {expression!r} is neither rate(...) nor cron(...). {RULE}")
    windows = []
    for index, start in enumerate(starts):
        following = starts[index + 1] if index + 1 < len(starts) else _DAY
        if following < _DAY and following - start < MIN_HOURS_APART * 60:
            raise WindowError(
                f"{expression!r} opens windows {following - start} minutes apart "
                f"(at {_clock(start)} and {_clock(following)} UTC). {RULE}"
            )
        length = window if window is not None else (60 if hourly else _DAY - start)
        if start + length > following:
            into = "the next UTC day" if following == _DAY else "the next window"
            raise WindowError(
                f"the window {duration} of {expression!r} starting at {_clock(start)} UTC "
                f"extends into {into}. {RULE}"
            )
        windows.append(Window(start, start + length))
    return windows


def check_rules(expression: str, duration: str | None = None) -> None:
    """Raise :class:`WindowError` for a schedule or window Secrets Manager would refuse."""
    daily_windows(expression, duration)


def next_windows(
    expression: str, duration: str | None, after: datetime.datetime, count: int = 3
) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The next ``count`` windows (UTC start and end) on or after ``after``. For ``rate(N
    days)``, whose days Secrets Manager counts from the last rotation, the windows of the
    next days are shown as if each day could be one (the window's hours are what matter)."""
    windows = daily_windows(expression, duration)
    after = after.astimezone(datetime.UTC)
    day = datetime.datetime.combine(after.date(), datetime.time(), tzinfo=datetime.UTC)
    found: list[tuple[datetime.datetime, datetime.datetime]] = []
    while len(found) < count:
        for window in windows:
            start = day + datetime.timedelta(minutes=window.start_min)
            end = day + datetime.timedelta(minutes=window.end_min)
            if end > after and len(found) < count:
                found.append((start, end))
        day += datetime.timedelta(days=1)
    return found


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
