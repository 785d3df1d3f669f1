"""``rotation status --all`` when one secret's age cannot be read: moto serves the fleet, and
Secrets Manager's answer to ``ListSecretVersionIds`` for chosen secrets is replaced by an
error answer at botocore's ``before-call`` hook, so botocore itself raises the real
``ClientError`` it raises for AWS's answer. (Deleting the secret between the listing and the
age read on moto gets a 500 from moto, not AWS's ResourceNotFoundException.)"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

import pytest

from rotation_tools.fleet import FleetState, collect_fleet, parse_filter
from testbed.fleet import build_fleet

pytestmark = pytest.mark.functional


class RefuseVersions:
    """Answers ListSecretVersionIds for the given ARNs with the given AWS error code."""

    def __init__(self, client: Any, refusals: dict[str, str]) -> None:
        self.refusals = refusals
        self.refused: list[str] = []
        client.meta.events.register(
            "before-call.secrets-manager.ListSecretVersionIds", self._answer
        )

    def _answer(self, params: Any, **_: Any) -> Any:
        secret_id = json.loads(params["body"])["SecretId"]
        code = self.refusals.get(secret_id)
        if code is None:
            return None  # the call goes to moto
        self.refused.append(secret_id)
        error = {"Error": {"Code": code, "Message": f"{code} for {secret_id}"}}
        return _Http(400), {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}


class _Http:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}


def test_a_secret_whose_age_cannot_be_read_keeps_its_row(sm: Any) -> None:
    prefix = f"fleet-age-{uuid.uuid4().hex[:8]}/"
    arns = build_fleet(sm, per_group=3, prefix=prefix)
    denied, gone = arns["in-progress"][0], arns["in-progress"][2]
    refusals = RefuseVersions(
        sm, {denied: "AccessDeniedException", gone: "ResourceNotFoundException"}
    )
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)
    rows = {row.secret: row for row in collect_fleet(sm, now=now, filters=[parse_filter(prefix)])}
    assert sorted(refusals.refused) == sorted([denied, gone])
    for arn, code, fix in [
        (denied, "AccessDeniedException", "secretsmanager:ListSecretVersionIds"),
        (gone, "ResourceNotFoundException", "run the command again"),
    ]:
        row = rows[arn]
        assert (row.state, row.pending_since, row.error) == (FleetState.ROTATING, None, code)
        assert f"ListSecretVersionIds: {code}" in row.detail
        assert fix in row.detail
        assert row.needs_attention
        assert row.as_json()["error"] == code
    # The other secrets are all reported, their ages read.
    (other,) = [rows[arn] for arn in arns["in-progress"] if arn not in (denied, gone)]
    assert other.pending_since is not None
    assert other.error is None
    assert not other.needs_attention
    assert len(rows) == sum(len(group) for name, group in arns.items() if name != "plain")
