"""A conformance check every strategy can run, ours or yours (Vault's ``AssertUpdateUser``).

It drives a real rotation the way Secrets Manager does and checks the re-run contract of
each method: every step run twice (the second time as a new container, nothing cached),
a labelled version that logs in after every step, the new credential in place at the end,
nothing changed by re-running a finished rotation, and testSecret refusing a pending
credential that does not log in. Point it at moto's server (or any Secrets Manager) and at a
real instance of your engine::

    from rotation.conformance import check_strategy

    def test_my_strategy_conforms(sm_client, secret_arn):
        check_strategy(MyStrategy, client=sm_client, secret_id=secret_arn, logs_in=my_login)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rotation.dispatcher import Outcome, Rotator
from rotation.driver import LocalRotation, RotationFailed
from rotation.errors import RotationError
from rotation.event import Step
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS
from rotation.store import SecretStore
from rotation.strategy import RotationStrategy

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["ConformanceError", "check_strategy"]

LogsIn = Callable[[Mapping[str, Any]], bool]


class ConformanceError(AssertionError):
    """A strategy broke the contract; the message says which check and where.

    Fix: make the method the message names keep its re-run contract (the strategy protocol's
    docstrings state each one), then run the check again.
    """


def _value(client: SecretsManagerClient, secret_id: str, stage: str) -> dict[str, Any] | None:
    try:
        response = client.get_secret_value(SecretId=secret_id, VersionStage=stage)
    except client.exceptions.ResourceNotFoundException:
        return None
    return dict(json.loads(response["SecretString"]))


def _some_label_logs_in(client: SecretsManagerClient, secret_id: str, logs_in: LogsIn) -> bool:
    for stage in (AWSCURRENT, AWSPENDING, AWSPREVIOUS):
        value = _value(client, secret_id, stage)
        if value is not None and logs_in(value):
            return True
    return False


def check_strategy(
    strategy_factory: Callable[[], RotationStrategy],
    *,
    client: SecretsManagerClient,
    secret_id: str,
    logs_in: LogsIn,
    keeps_previous: bool = False,
) -> list[str]:
    """Run the conformance checks; return the names of those that passed.

    Parameters
    ----------
    strategy_factory:
        Makes a fresh strategy: called once per simulated container.
    client:
        A ``secretsmanager`` client; the secret must exist and its AWSCURRENT must log in.
    logs_in:
        Whether a secret value's credential logs in to the engine right now.
    keeps_previous:
        True for schemes where the replaced credential keeps working (alternating users).

    Raises
    ------
    ConformanceError
        At the first broken check.
    """
    passed: list[str] = []
    label = getattr(strategy_factory, "__name__", "strategy")

    def check(name: str, holds: bool) -> None:
        if not holds:
            raise ConformanceError(f"{label}: {name}")
        passed.append(name)

    def run(rotator: Rotator, step: Step, token: str) -> None:
        try:
            LocalRotation(client, rotator.handle).run(secret_id, token, [step])
        except RotationFailed as failed:
            raise ConformanceError(f"{label}: {step.value} failed: {failed.__cause__}") from failed

    def fresh() -> Rotator:
        return Rotator(strategy_factory(), SecretStore(client))

    before = _value(client, secret_id, AWSCURRENT)
    check("AWSCURRENT logs in before the rotation", before is not None and logs_in(before))
    warm = fresh()
    driver = LocalRotation(client, warm.handle)
    token = driver.begin(secret_id)
    for step in Step:
        run(warm, step, token)
        run(fresh(), step, token)
        check(f"a labelled version logs in after {step.value} (run twice)",
              _some_label_logs_in(client, secret_id, logs_in))  # fmt: skip
    driver.complete(secret_id, token)
    after = _value(client, secret_id, AWSCURRENT)
    if after is None or before is None:
        raise ConformanceError(f"{label}: AWSCURRENT disappeared")
    check("the new AWSCURRENT logs in", logs_in(after))
    check("the credential changed", after != before)
    check("AWSPREVIOUS is the replaced version", _value(client, secret_id, AWSPREVIOUS) == before)
    check(
        "the replaced credential " + ("still logs in" if keeps_previous else "is refused"),
        logs_in(before) == keeps_previous,
    )
    outcomes = {fresh().handle(_event(step, secret_id, token)) for step in Step}
    check("re-running a finished rotation changes nothing", outcomes == {Outcome.ALREADY_CURRENT})
    check("testSecret refuses a pending credential that does not log in",
          _test_refuses_wrong_password(client, secret_id, fresh(), after))  # fmt: skip
    return passed


def _event(step: Step, secret_id: str, token: str) -> dict[str, str]:
    return {"Step": step.value, "SecretId": secret_id, "ClientRequestToken": token}


def _test_refuses_wrong_password(
    client: SecretsManagerClient, secret_id: str, rotator: Rotator, current: dict[str, Any]
) -> bool:
    driver = LocalRotation(client, rotator.handle)
    token = driver.begin(secret_id, str(uuid.uuid4()))
    wrong = {**current, "password": f"wrong-{uuid.uuid4().hex}"}
    client.put_secret_value(
        SecretId=secret_id,
        ClientRequestToken=token,
        SecretString=json.dumps(wrong),
        VersionStages=[AWSPENDING],
    )
    try:
        rotator.handle(_event(Step.TEST, secret_id, token))
    except RotationError:
        refused = True
    else:
        refused = False
    # Abandon that rotation: the secret is left as the real rotation finished it.
    client.update_secret_version_stage(
        SecretId=secret_id, VersionStage=AWSPENDING, RemoveFromVersionId=token
    )
    return refused
