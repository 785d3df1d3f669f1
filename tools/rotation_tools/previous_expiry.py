"""When AWSPREVIOUS's password expires, as ``rotation status`` and ``rotation plan`` show it.

A multi-user rotation with ``PREVIOUS_PASSWORD_TTL`` gives the AWSPREVIOUS user a marked
``VALID UNTIL`` (:mod:`handlers.pg_expiry`); an unmarked one is the operator's. Read as the
master, inside one of its pinned transactions, and judged on the server's clock (what the
server checks at login), never the operator's machine's.
"""

from __future__ import annotations

from typing import Any

import psycopg

from handlers.pg_expiry import NO_EXPIRY, expiry_time, is_rotation_expiry
from handlers.pg_sql import role_validity_passed

__all__ = ["expiry_line", "expiry_report", "read_expiry"]

TTL_SOURCE = "PREVIOUS_PASSWORD_TTL"
OPERATOR_SOURCE = "the operator's VALID UNTIL"


def read_expiry(conn: psycopg.Connection[Any], user: str) -> dict[str, Any] | None:
    """``user``'s password expiry (one catalog query, ``pg_roles``); None when no such role.
    ``conn`` is the master's, inside ``MasterSession.transaction()``."""
    row = conn.execute(role_validity_passed(), (user,)).fetchone()
    if row is None:
        return None
    return expiry_report(user, str(row[0]), bool(row[1]))


def expiry_report(user: str, valid_until: str, passed: bool) -> dict[str, Any]:
    """The JSON-ready report: ``valid_until`` (ISO 8601 UTC as the catalog reads, or None:
    no expiry), ``set_by`` (``rotation``, ``operator`` or None), ``expired`` (on the server's
    clock) and ``summary`` (the text line)."""
    if valid_until == NO_EXPIRY:
        set_by, shown = None, None
    else:
        set_by = "rotation" if is_rotation_expiry(valid_until) else "operator"
        shown = valid_until
    report = {"user": user, "valid_until": shown, "set_by": set_by, "expired": passed}
    report["summary"] = expiry_line(report)
    return report


def expiry_line(report: dict[str, Any]) -> str:
    """``password expires at 2026-12-07 14:54:21 UTC (PREVIOUS_PASSWORD_TTL)``, ``... expired
    at ...``, the operator's, or ``no expiry set by rotation``."""
    valid_until = report["valid_until"]
    if valid_until is None:
        return "no expiry set by rotation"
    source = TTL_SOURCE if report["set_by"] == "rotation" else OPERATOR_SOURCE
    moment = expiry_time(valid_until)
    # The rotation's mark is a fraction of a second (.271828): whole seconds read better.
    when = f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else valid_until
    verb = "expired" if report["expired"] else "expires"
    return f"password {verb} at {when} ({source})"
