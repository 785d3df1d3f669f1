"""How status and plan word an expiry (the catalog's spelling in, one line out)."""

from __future__ import annotations

import pytest

from rotation_tools.previous_expiry import expiry_report


@pytest.mark.parametrize(
    ("valid_until", "passed", "set_by", "summary"),
    [
        ("infinity", False, None, "no expiry set by rotation"),
        ("2026-12-07T14:54:21.271828Z", False, "rotation",
         "password expires at 2026-12-07 14:54:21 UTC (PREVIOUS_PASSWORD_TTL)"),
        ("2026-12-07T14:54:21.271828Z", True, "rotation",
         "password expired at 2026-12-07 14:54:21 UTC (PREVIOUS_PASSWORD_TTL)"),
        ("2099-01-02T03:04:05.000000Z", False, "operator",
         "password expires at 2099-01-02 03:04:05 UTC (the operator's VALID UNTIL)"),
        # A fraction near the mark is still the operator's.
        ("2099-01-02T03:04:05.271827Z", False, "operator",
         "password expires at 2099-01-02 03:04:05 UTC (the operator's VALID UNTIL)"),
        ("-infinity", True, "operator",
         "password expired at -infinity (the operator's VALID UNTIL)"),
    ],
)  # fmt: skip
def test_the_line_and_the_json(
    valid_until: str, passed: bool, set_by: str | None, summary: str
) -> None:
    report = expiry_report("app_clone", valid_until, passed)
    assert report == {
        "user": "app_clone",
        "valid_until": None if valid_until == "infinity" else valid_until,
        "set_by": set_by,
        "expired": passed,
        "summary": summary,
    }
