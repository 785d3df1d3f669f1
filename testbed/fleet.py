"""A fleet of secrets in every rotation state, on moto, for ``status --all``'s tests and bench.

Built only with calls Secrets Manager itself offers, so the listing shows what moto really
returns for them. What moto does (checked, moto 5.2): ``RotateSecret`` with a function that
does not exist registers the token as AWSPENDING, stores the configuration and then fails
(``LastRotatedDate`` stays unset); ``CancelRotateSecret`` disables rotation and keeps the
function; a tag ``aws:secretsmanager:owningService`` is listed as ``OwningService``;
``RotationRules.Duration`` is dropped; and ``ListSecretVersionIds`` reports every version as
created at the moment of the call, so on moto a rotation in progress is always brand new:
``stuck`` versus ``rotating`` is decided by the injected clock.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from testbed.pgcluster import free_port

__all__ = ["GROUPS", "build_fleet", "separate_moto"]

# What each group is on moto, and which state it shows at a clock 10 minutes after it was
# built ("soon") and at one a day and 2 hours after ("late").
GROUPS = {
    "healthy": ("ok", "ok"),  # every 30 days, nothing in progress
    "daily": ("ok", "overdue"),  # every day, the rotation never came
    "in-progress": ("rotating", "stuck"),  # AWSPENDING on a new version
    "disabled": ("not-rotating", "not-rotating"),  # CancelRotateSecret
    "owned": ("service-owned", "service-owned"),  # OwningService, rotated by "rds"
    "plain": (None, None),  # no rotation configured: not listed
}


def _function(index: int) -> str:
    kind = ("single-user", "multi-user", "custom")[index % 3]
    return f"arn:aws:lambda:us-east-1:123456789012:function:fleet-{kind}"


def _rotate(client: Any, arn: str, **kwargs: Any) -> None:
    # The function does not exist: the state is left as Secrets Manager leaves it.
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.rotate_secret(SecretId=arn, **kwargs)


def _drop_pending(client: Any, arn: str) -> None:
    stages = client.describe_secret(SecretId=arn)["VersionIdsToStages"]
    for version_id, labels in stages.items():
        if "AWSPENDING" in labels and "AWSCURRENT" not in labels:
            client.update_secret_version_stage(
                SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=version_id
            )


def build_fleet(client: Any, *, per_group: int, prefix: str) -> dict[str, list[str]]:
    """``per_group`` secrets per group of :data:`GROUPS`, named ``<prefix><group>/<n>``;
    returns their ARNs by group."""
    arns: dict[str, list[str]] = {group: [] for group in GROUPS}
    value = json.dumps({"engine": "postgres", "host": "db.invalid", "username": "u"})
    for index in range(per_group):
        for group in GROUPS:
            tags = [{"Key": "fleet-group", "Value": group}]
            if group == "owned":
                tags.append({"Key": "aws:secretsmanager:owningService", "Value": "rds"})
            arn = client.create_secret(
                Name=f"{prefix}{group}/{index:04d}", SecretString=value, Tags=tags
            )["ARN"]
            function = _function(index)
            if group == "healthy":
                _rotate(
                    client,
                    arn,
                    RotationLambdaARN=function,
                    RotationRules={"AutomaticallyAfterDays": 30},
                )
                _drop_pending(client, arn)
            elif group == "daily":
                _rotate(
                    client,
                    arn,
                    RotationLambdaARN=function,
                    RotationRules={"AutomaticallyAfterDays": 1},
                )
                _drop_pending(client, arn)
            elif group == "in-progress":
                _rotate(
                    client,
                    arn,
                    RotationLambdaARN=function,
                    RotationRules={"AutomaticallyAfterDays": 30},
                )
            elif group == "disabled":
                _rotate(
                    client,
                    arn,
                    RotationLambdaARN=function,
                    RotationRules={"AutomaticallyAfterDays": 30},
                )
                client.cancel_rotate_secret(SecretId=arn)
                _drop_pending(client, arn)
            elif group == "owned":
                # Managed rotation: no function; moto then completes the rotation itself.
                client.rotate_secret(SecretId=arn, RotationRules={"AutomaticallyAfterDays": 7})
            arns[group].append(str(arn))
    return arns


@contextlib.contextmanager
def separate_moto(start_timeout_s: float = 30.0) -> Iterator[str]:
    """moto's server in a process of its own, on 127.0.0.1; yields its URL.

    ``status --all`` lists the whole account, and every moto server started inside one
    process shares that process's accounts (``ThreadedMotoServer`` serves the same global
    backends): a fleet in the test process's moto would be listed together with every other
    test's secrets. A separate process has an account of its own.
    """
    port = free_port()
    process = subprocess.Popen(  # our own interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()  # noqa: S310
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start on {url}") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
