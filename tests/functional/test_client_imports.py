"""Importing the application client loads nothing of the Lambda side and touches no logger
it does not own (issue 12). Each check runs in a fresh interpreter: the test process itself
has long loaded everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tests.fix_rotation import Bed

# The Lambda side, and what an application should not pay for: Powertools (its Logger and
# Metrics), tenacity. boto3 is allowed, but only once a secret is read through it.
FORBIDDEN = (
    "handlers",
    "rotation_tools",
    "rotation.dispatcher",
    "rotation.store",
    "rotation.strategy",
    "rotation.driver",
    "rotation.observability",
    "rotation.retry",
    "rotation.clients",
    "rotation.config",
    "rotation.scrub",
    "rotation.entrypoint",
    "rotation.secret",
    "rotation.event",
    "aws_lambda_powertools",
    "tenacity",
)

# The state of every logger that exists, and of the two an application most often
# configures itself (created here if they do not exist yet, so that a change shows).
_SNAPSHOT = """
import logging

def snapshot():
    for name in ("urllib3", "botocore", "boto3", "psycopg"):
        logging.getLogger(name)
    loggers = {"": logging.getLogger()}
    loggers.update(
        (name, item)
        for name, item in logging.Logger.manager.loggerDict.items()
        if isinstance(item, logging.Logger)
    )
    return {
        name: (
            logger.level,
            [repr(handler) for handler in logger.handlers],
            [repr(f) for f in logger.filters],
            logger.propagate,
            logger.disabled,
        )
        for name, logger in loggers.items()
    }
"""


def _run(code: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Loggers whose state changed, and new ones configured in any way (other than ours)."""
    changed = {name: after.get(name) for name in before if before[name] != after.get(name)}
    for name, state in after.items():
        if name in before or name.startswith("rotation_client"):
            continue
        level, handlers, filters, propagate, disabled = state
        if level or handlers or filters or not propagate or disabled:
            changed[name] = state
    return changed


def test_importing_the_client_loads_no_lambda_side_and_touches_no_logger() -> None:
    report = _run(
        f"""
        import json, sys
        before = snapshot()
        import rotation_client
        from rotation_client import RotatingCredentials, connect, credentials, make_pool
        RotatingCredentials("app/db")
        credentials("app/db")
        after = snapshot()
        forbidden = {FORBIDDEN!r}
        print(json.dumps({{
            "loaded": sorted(m for m in sys.modules if m in forbidden),
            "boto3": "boto3" in sys.modules,
            "rotation": sorted(m for m in sys.modules if m.split(".")[0] == "rotation"),
            "before": before,
            "after": after,
        }}))
        """
    )
    assert report["loaded"] == []
    assert not report["boto3"]  # built where a client is made, on the first read
    # The client shares rotation_contract with the function, and nothing of the framework.
    assert report["rotation"] == []
    assert _changed(report["before"], report["after"]) == {}


@pytest.mark.functional
def test_connecting_through_the_client_touches_no_logger(bed: Bed) -> None:
    """A whole first connection: boto3 built, the secret read from Secrets Manager (moto),
    a TLS + SCRAM login to the real server. The libraries are imported first, so that what
    they do to their own loggers at import is not counted against us."""
    arn, user, _ = bed.user_secret()
    report = _run(
        f"""
        import json, sys
        import boto3, botocore, botocore.session, psycopg, urllib3
        before = snapshot()
        from rotation_client import connect
        with connect({arn!r}, autocommit=True) as conn:
            user = conn.execute("SELECT current_user").fetchone()[0]
        after = snapshot()
        forbidden = {FORBIDDEN!r}
        print(json.dumps({{
            "user": user,
            "loaded": sorted(m for m in sys.modules if m in forbidden),
            "before": before,
            "after": after,
        }}))
        """
    )
    assert report["user"] == user
    assert report["loaded"] == []
    assert _changed(report["before"], report["after"]) == {}
