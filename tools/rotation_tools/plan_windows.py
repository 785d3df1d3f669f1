"""``rotation plan``'s rotation windows: when the secret rotates next, and how many secrets of
the account share that window.

Secrets Manager's write quota (``PutSecretValue``, ``UpdateSecretVersionStage``, ...) is 50
calls per second across the account and region, and a rotation makes about
:data:`WRITES_PER_ROTATION` of them; Secrets Manager starts the rotations of one window at
times of its choosing inside it. Many secrets on one window can therefore meet throttling
(a throttled step fails and the rotation is re-attempted later), so the plan warns from
:data:`SHARED_WINDOW_WARNING` secrets on; the fix is to spread them over windows (``cron()``
schedules at different hours).

Pure functions over what ``DescribeSecret`` and ``ListSecrets`` return (``RotationRules``,
``NextRotationDate``), so the windows are computed from entries shaped as AWS returns them
(moto drops ``Duration``). Windows come from :mod:`rotation_tools.deploy.rotation_window`, the rule
the CDK construct and ``template.yaml`` check.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rotation_tools.deploy.rotation_window import WindowError, daily_windows, next_windows

__all__ = [
    "SHARED_WINDOW_WARNING",
    "WRITES_PER_ROTATION",
    "WRITE_QUOTA_PER_S",
    "WindowReport",
    "window_report",
]

WRITE_QUOTA_PER_S = 50
WRITES_PER_ROTATION = 2  # PutSecretValue (createSecret), UpdateSecretVersionStage (finish)
# This many rotations starting together use a second's whole write quota.
SHARED_WINDOW_WARNING = WRITE_QUOTA_PER_S // WRITES_PER_ROTATION
_SHOWN = 3

Span = tuple[datetime.datetime, datetime.datetime]


@dataclass
class WindowReport:
    """The next windows of one secret and the account's secrets sharing the first."""

    schedule: str | None
    duration: str | None
    windows: list[Span] = field(default_factory=list)
    sharing: list[str] = field(default_factory=list)  # names, this secret included
    unplaced: int = 0  # secrets with rotation on whose next window cannot be told
    notes: list[str] = field(default_factory=list)
    warning: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "duration": self.duration,
            "windows": [[s.isoformat(), e.isoformat()] for s, e in self.windows],
            "sharing_first_window": len(self.sharing),
            "unplaced": self.unplaced,
            "notes": self.notes,
            "warning": self.warning,
        }


def _rules(entry: Mapping[str, Any]) -> tuple[str | None, str | None]:
    rules = entry.get("RotationRules") or {}
    expression = rules.get("ScheduleExpression")
    days = rules.get("AutomaticallyAfterDays")
    if expression is None and days:
        expression = f"rate({int(days)} days)"
    return expression, rules.get("Duration")


def _anchor(entry: Mapping[str, Any], now: datetime.datetime) -> datetime.datetime:
    """Where the next window is looked for: the start of ``NextRotationDate``'s UTC day (AWS:
    the rotation happens on or before it), or now when that is past or absent."""
    next_date = entry.get("NextRotationDate")
    if not isinstance(next_date, datetime.datetime):
        return now
    day = datetime.datetime.combine(
        next_date.astimezone(datetime.UTC).date(), datetime.time(), tzinfo=datetime.UTC
    )
    return max(day, now)


def _first_window(entry: Mapping[str, Any], now: datetime.datetime) -> Span | None:
    expression, duration = _rules(entry)
    if expression is None or not entry.get("RotationEnabled"):
        return None
    try:
        (first,) = next_windows(expression, duration, _anchor(entry, now), count=1)
    except WindowError:
        return None
    return first


def _days_restricted(expression: str) -> bool:
    match = re.fullmatch(r"cron\(([^()]+)\)", expression)
    if match is None:
        return False
    fields = match.group(1).split()
    return len(fields) == 6 and any(f not in ("*", "?") for f in (fields[2], fields[3], fields[4]))


def window_report(
    described: Mapping[str, Any],
    fleet: Iterable[Mapping[str, Any]],
    now: datetime.datetime,
    *,
    warn_from: int = SHARED_WINDOW_WARNING,
) -> WindowReport:
    """The next windows of the secret ``described`` (DescribeSecret's answer) and, among
    ``fleet`` (ListSecrets entries of the account), the secrets whose next window overlaps
    its first one."""
    expression, duration = _rules(described)
    report = WindowReport(expression, duration)
    if expression is None or not described.get("RotationEnabled"):
        report.notes.append("rotation is not enabled with a schedule: no window")
        return report
    try:
        daily_windows(expression, duration)
    except WindowError as exc:
        report.notes.append(str(exc))
        return report
    anchor = _anchor(described, now)
    days = re.fullmatch(r"rate\(([0-9]+) days?\)", expression)
    if days is not None:
        (first,) = next_windows(expression, duration, anchor, count=1)
        step = datetime.timedelta(days=int(days.group(1)))
        report.windows = [(first[0] + i * step, first[1] + i * step) for i in range(_SHOWN)]
        report.notes.append(
            "rate(N days) counts from the last rotation: later windows assume this one rotates"
        )
    elif _days_restricted(expression):
        report.windows = next_windows(expression, duration, anchor, count=1)
        report.notes.append(f"later windows fall on the days {expression} names")
    else:
        report.windows = next_windows(expression, duration, anchor, count=_SHOWN)
    start, end = report.windows[0]
    arn = described.get("ARN")
    report.sharing = [str(described.get("Name") or arn)]
    for entry in fleet:
        if entry.get("ARN") == arn or entry.get("OwningService"):
            continue
        window = _first_window(entry, now)
        if window is None:
            report.unplaced += 1 if entry.get("RotationEnabled") else 0
        elif window[0] < end and start < window[1]:
            report.sharing.append(str(entry.get("Name") or entry.get("ARN")))
    count = len(report.sharing)
    if count >= warn_from:
        report.warning = (
            f"{count} secrets of this account and region rotate in the window "
            f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC: about {count * WRITES_PER_ROTATION} "
            f"Secrets Manager writes ({WRITES_PER_ROTATION} per rotation) against the "
            f"account's {WRITE_QUOTA_PER_S} per second; a throttled step fails and the "
            "rotation is re-attempted later. Spread them over windows: cron() schedules at "
            "different hours (at least 4 hours apart)"
        )
    return report
