"""``status --all``'s classification of one ListSecrets entry, as real Secrets Manager lists
it (moto drops ``RotationRules.Duration``, so the window is tested here)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from rotation_tools.fleet import (
    FleetState,
    classify,
    parse_filter,
    recognise_strategy,
    stuck_after,
)

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
FN = "arn:aws:lambda:eu-west-1:111122223333:function:prod-rotation-multi-user"


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ARN": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app-AbCdEf",
        "Name": "app",
        "RotationEnabled": True,
        "RotationLambdaARN": FN,
        "RotationRules": {"AutomaticallyAfterDays": 30},
        "LastRotatedDate": NOW - datetime.timedelta(days=3),
        "NextRotationDate": NOW + datetime.timedelta(days=27),
        "SecretVersionsToStages": {"v1": ["AWSCURRENT"], "v0": ["AWSPREVIOUS"]},
    }
    base.update(fields)
    return base


PENDING = {"v1": ["AWSCURRENT"], "v2": ["AWSPENDING"]}
H = datetime.timedelta(hours=1)


@pytest.mark.parametrize(
    ("fields", "pending_age", "state"),
    [
        ({}, None, FleetState.OK),
        # A finished rotation's leftover AWSPENDING on AWSCURRENT is not a rotation.
        ({"SecretVersionsToStages": {"v1": ["AWSCURRENT", "AWSPENDING"]}}, None, FleetState.OK),
        ({"SecretVersionsToStages": PENDING}, 0.5 * H, FleetState.ROTATING),
        ({"SecretVersionsToStages": PENDING}, 1.5 * H, FleetState.STUCK),
        # The rotation window replaces the hour.
        (
            {"SecretVersionsToStages": PENDING, "RotationRules": {"Duration": "4h"}},
            3 * H,
            FleetState.ROTATING,
        ),
        (
            {"SecretVersionsToStages": PENDING, "RotationRules": {"Duration": "2h"}},
            3 * H,
            FleetState.STUCK,
        ),
        # Rotating wins over a next rotation date that passed meanwhile.
        (
            {"SecretVersionsToStages": PENDING, "NextRotationDate": NOW - H},
            0.2 * H,
            FleetState.ROTATING,
        ),
        ({"NextRotationDate": NOW - datetime.timedelta(minutes=1)}, None, FleetState.OVERDUE),
        ({"RotationEnabled": False, "NextRotationDate": None}, None, FleetState.NOT_ROTATING),
        ({"OwningService": "rds", "RotationLambdaARN": None}, None, FleetState.SERVICE_OWNED),
        (
            {"OwningService": "rds", "SecretVersionsToStages": PENDING},
            5 * H,
            FleetState.SERVICE_OWNED,
        ),
    ],
    ids=[
        "ok",
        "leftover-pending-on-current",
        "rotating",
        "stuck-after-an-hour",
        "rotating-inside-window",
        "stuck-past-window",
        "rotating-beats-overdue",
        "overdue",
        "not-rotating",
        "service-owned",
        "service-owned-beats-stuck",
    ],
)
def test_states(
    fields: dict[str, Any], pending_age: datetime.timedelta | None, state: FleetState
) -> None:
    since = NOW - pending_age if pending_age is not None else None
    row = classify(entry(**fields), now=NOW, pending_since=since)
    assert row.state is state
    document = row.as_json()
    assert document["state"] == state.value
    assert document["pending_since"] == (since.isoformat() if since else None)
    assert document["needs_attention"] is (
        state in {FleetState.STUCK, FleetState.OVERDUE, FleetState.NOT_ROTATING}
    )


@pytest.mark.parametrize(
    ("function", "strategy"),
    [
        (FN, "multi-user"),
        ("arn:aws:lambda:r:1:function:prod-rotation-single-user", "single-user"),
        (
            "arn:aws:lambda:r:1:function:SecretsManagerRDSPostgreSQLRotationSingleUser",
            "single-user",
        ),
        ("arn:aws:lambda:r:1:function:SecretsManagerRDSPostgreSQLRotationMultiUser", "multi-user"),
        ("arn:aws:lambda:r:1:function:my-rotator", "unknown"),
        (None, "unknown"),
    ],
)
def test_strategy_from_function_name(function: str | None, strategy: str) -> None:
    assert recognise_strategy(function) == strategy


def test_window_parsing() -> None:
    assert stuck_after({"Duration": "3h"}) == 3 * H
    assert stuck_after({"Duration": "nonsense"}) == H
    assert stuck_after(None) == H


def test_filters() -> None:
    assert parse_filter("team=payments").tag == ("team", "payments")
    assert parse_filter("prod/").name_prefix == "prod/"
    assert parse_filter("team=payments").matches({"Tags": [{"Key": "team", "Value": "payments"}]})
    # ListSecrets matches tag keys and values independently: the pair is checked here.
    assert not parse_filter("team=payments").matches(
        {"Tags": [{"Key": "team", "Value": "x"}, {"Key": "y", "Value": "payments"}]}
    )
    with pytest.raises(ValueError, match="key is empty"):
        parse_filter("=x")
