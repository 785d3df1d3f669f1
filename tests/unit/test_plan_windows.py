"""``rotation plan``'s windows, from entries shaped as DescribeSecret / ListSecrets return them
(moto drops RotationRules.Duration, so these are written as AWS's API reference shows them)."""

from __future__ import annotations

import datetime
from typing import Any

from rotation_tools.plan_windows import SHARED_WINDOW_WARNING, window_report

NOW = datetime.datetime(2026, 3, 1, 14, 30, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
TODAY = NOW.replace(hour=0, minute=0)
ACCOUNT = "arn:aws:secretsmanager:eu-west-1:111122223333:secret"


def _entry(
    name: str, expression: str | None = None, duration: str | None = None, **extra: Any
) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if expression is not None:
        rules["ScheduleExpression"] = expression
    if duration is not None:
        rules["Duration"] = duration
    return {
        "ARN": f"{ACCOUNT}:{name}-AbCdEf",
        "Name": name,
        "RotationEnabled": True,
        "RotationRules": rules,
        **extra,
    }


def test_the_next_windows_of_a_daily_cron() -> None:
    report = window_report(_entry("app", "cron(0 1,13 * * ? *)", "4h"), [], NOW)
    assert report.windows == [
        (TODAY + 13 * HOUR, TODAY + 17 * HOUR),
        (TODAY + 25 * HOUR, TODAY + 29 * HOUR),
        (TODAY + 37 * HOUR, TODAY + 41 * HOUR),
    ]
    assert report.sharing == ["app"]
    assert report.warning is None


def test_rate_in_days_starts_on_the_next_rotation_date() -> None:
    described = _entry(
        "app",
        NextRotationDate=datetime.datetime(2026, 3, 10, 23, 59, tzinfo=datetime.UTC),
        RotationRules={"AutomaticallyAfterDays": 30, "Duration": "3h"},
    )
    report = window_report(described, [], NOW)
    day = datetime.datetime(2026, 3, 10, tzinfo=datetime.UTC)
    month = datetime.timedelta(days=30)
    assert report.schedule == "rate(30 days)"
    assert report.windows == [(day + i * month, day + i * month + 3 * HOUR) for i in range(3)]


def test_many_secrets_on_one_window_warn_with_the_quota() -> None:
    described = _entry("app", "cron(0 1 * * ? *)", "2h")
    same = [
        _entry(f"other{i}", "cron(0 2 * * ? *)", "2h") for i in range(SHARED_WINDOW_WARNING - 1)
    ]
    elsewhere = [_entry(f"later{i}", "cron(0 8 * * ? *)", "2h") for i in range(10)]
    report = window_report(described, [described, *same, *elsewhere], NOW)
    # 01:00-03:00 overlaps 02:00-04:00, not 08:00-10:00; the secret itself counts once.
    assert len(report.sharing) == SHARED_WINDOW_WARNING
    assert report.warning is not None
    assert f"{SHARED_WINDOW_WARNING} secrets" in report.warning
    assert "50 per second" in report.warning
    assert "cron()" in report.warning


def test_one_fewer_does_not_warn() -> None:
    described = _entry("app", "cron(0 1 * * ? *)", "2h")
    same = [
        _entry(f"other{i}", "cron(0 1 * * ? *)", "2h") for i in range(SHARED_WINDOW_WARNING - 2)
    ]
    report = window_report(described, same, NOW)
    assert len(report.sharing) == SHARED_WINDOW_WARNING - 1
    assert report.warning is None


def test_disabled_service_owned_and_unreadable_are_not_counted() -> None:
    described = _entry("app", "cron(0 1 * * ? *)", "2h")
    fleet = [
        {**_entry("off", "cron(0 1 * * ? *)"), "RotationEnabled": False},
        {**_entry("rds", "cron(0 1 * * ? *)"), "OwningService": "rds"},
        _entry("norules"),
    ]
    report = window_report(described, fleet, NOW)
    assert report.sharing == ["app"]
    assert report.unplaced == 1


def test_no_schedule_no_window() -> None:
    report = window_report({"ARN": f"{ACCOUNT}:app-AbCdEf", "Name": "app"}, [], NOW)
    assert report.windows == []
    assert report.notes == ["rotation is not enabled with a schedule: no window"]


def test_a_schedule_secrets_manager_would_refuse_is_said() -> None:
    report = window_report(_entry("app", "rate(2 hours)"), [], NOW)
    assert report.windows == []
    assert "more often than every 4 hours" in report.notes[0]
