"""Secrets Manager throttling is retried with backoff, bounded, and reported clearly."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rotation import AWSCURRENT, AWSPENDING, RetryPolicy, SecretsManagerError, Step
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


class Throttle:
    """Answer the first ``times`` calls of ``operation`` with ThrottlingException."""

    def __init__(self, client: Any, operation: str, times: int) -> None:
        self.left = times
        self.answered = 0
        client.meta.events.register(f"before-call.secrets-manager.{operation}", self._hook)

    def _hook(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.left == 0:
            return None
        self.left -= 1
        self.answered += 1
        response = AWSResponse("https://secretsmanager.local", 400, HTTPHeaders(), None)
        parsed = {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return response, parsed


@pytest.mark.parametrize(
    "operation", ["DescribeSecret", "GetSecretValue", "PutSecretValue", "UpdateSecretVersionStage"]
)
def test_throttled_calls_are_retried_and_the_rotation_completes(bed: Bed, operation: str) -> None:
    arn, _, _ = bed.user_secret()
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, initial_wait_s=0.2, jitter_s=0.0, sleep=waits.append)
    rotator = bed.rotator(retry_policy=policy)
    throttle = Throttle(bed.handler_client, operation, times=2)
    run = bed.driver(rotator).rotate(arn)
    assert run.succeeded
    assert throttle.answered == 2
    assert waits == [0.2, 0.4]  # exponential backoff (jitter off for the test)
    assert bed.logs_in(bed.value(arn))


def test_persistent_throttling_fails_clearly_and_changes_nothing(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    waits: list[float] = []
    rotator = bed.rotator(retry_policy=RetryPolicy(attempts=3, sleep=waits.append))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    Throttle(bed.handler_client, "PutSecretValue", times=100)
    with pytest.raises(SecretsManagerError, match="ThrottlingException") as caught:
        rotator.handle(bed.event(arn, Step.CREATE.value, token))
    assert "createSecret" in str(caught.value)
    assert len(waits) == 2
    assert bed.labels(arn)[token] == [AWSPENDING]
    assert bed.labelled_logins(arn) == [AWSCURRENT]
