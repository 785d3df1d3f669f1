"""`rotation rotate` (direct mode) never steals a rotation Secrets Manager starts.

A direct rotation registers its own token in createSecret. These tests start a
Lambda-style rotation (RotateSecret with a function: moto registers the token as
AWSPENDING, see TESTBED.md) at each point of that registration, by running it from a hook
on the direct rotation's own Secrets Manager client just before the chosen call, and check
that the Lambda's rotation keeps its label, that the direct one fails saying why, that some
labelled version logs in throughout, and that the Lambda's rotation then completes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from handlers.single_user import PostgresSingleUser
from rotation import (
    AWSCURRENT,
    AWSPENDING,
    LocalRotation,
    RotationFailed,
    Rotator,
    SecretStore,
    StagingError,
    Step,
)
from rotation_tools.direct import CLAIM, DirectRegistration
from tests.fix_aws import new_client
from tests.fix_rotation import Bed, SimulatedCrash

pytestmark = pytest.mark.functional


class Interleave:
    """Runs ``action`` once, just before the ``occurrence``-th ``operation`` of ``client``."""

    def __init__(
        self, client: Any, operation: str, occurrence: int, action: Callable[[], None]
    ) -> None:
        self.operation = operation
        self.occurrence = occurrence
        self.action = action
        self.seen = 0
        self.fired = False
        client.meta.events.register(f"before-call.secrets-manager.{operation}", self._before)

    def _before(self, **_: Any) -> None:
        self.seen += 1
        if self.seen == self.occurrence:
            self.fired = True
            self.action()


class Race:
    """A secret, a direct rotation with a hookable client, and a Lambda-style rotation."""

    def __init__(self, bed: Bed) -> None:
        self.bed = bed
        self.arn, self.user, _ = bed.user_secret()
        self.current = bed.sm.describe_secret(SecretId=self.arn)
        self.direct_client = new_client()
        direct_rotator = Rotator(
            PostgresSingleUser(bed.connector()),
            SecretStore(self.direct_client),
            registrar=DirectRegistration(),
        )
        # Driven with the plain client: only the handler's calls are hooked.
        self.direct = LocalRotation(bed.sm, direct_rotator.handle, direct=True)
        self.lambda_driver = bed.driver(bed.rotator())
        self.lambda_token: str | None = None
        self.logins: list[list[str]] = []

    def labels(self) -> dict[str, list[str]]:
        return self.bed.labels(self.arn)

    def check_logins(self) -> None:
        working = self.bed.labelled_logins(self.arn)
        assert working, f"no labelled version logs in: {self.labels()}"
        self.logins.append(working)

    def start_lambda_rotation(self, steps: tuple[Step, ...] = ()) -> None:
        """What RotateSecret does (then the function's first steps, if asked)."""
        self.check_logins()
        for version_id, stages in self.labels().items():
            if AWSPENDING in stages and AWSCURRENT in stages:
                # AWS's RotateSecret takes a finished rotation's leftover AWSPENDING along;
                # moto refuses in that state instead, so do that part first.
                self.bed.sm.update_secret_version_stage(
                    SecretId=self.arn, VersionStage=AWSPENDING, RemoveFromVersionId=version_id
                )
        self.lambda_token = self.lambda_driver.begin(self.arn, str(uuid.uuid4()))
        if steps:
            self.lambda_driver.run(self.arn, self.lambda_token, steps)
        self.check_logins()


# Where the Lambda's rotation starts, relative to the direct createSecret's calls:
# PutSecretValue (our value, under our own label), UpdateSecretVersionStage (the claim of
# AWSPENDING; then the removal of our label), DescribeSecret (1: the step's own; 2: the
# check after the claim).
INTERLEAVINGS = [
    pytest.param("PutSecretValue", 1, (), False, id="registered-before-the-put"),
    pytest.param(
        "PutSecretValue", 1, (Step.CREATE, Step.SET), False, id="past-setSecret-before-the-put"
    ),
    pytest.param("UpdateSecretVersionStage", 1, (), False, id="registered-before-the-claim"),
    pytest.param(
        "UpdateSecretVersionStage",
        1,
        (Step.CREATE, Step.SET),
        True,
        id="leftover-pending-past-setSecret-before-the-claim",
    ),
    # Only an endpoint that lets RotateSecret start while AWSPENDING sits on a version that
    # is not current (moto; AWS refuses) can interleave here; the re-check still holds.
    pytest.param("DescribeSecret", 2, (Step.CREATE, Step.SET), False, id="after-the-claim"),
]


@pytest.mark.parametrize(("operation", "occurrence", "lambda_steps", "leftover"), INTERLEAVINGS)
def test_a_rotation_started_meanwhile_keeps_its_label_and_completes(
    bed: Bed, operation: str, occurrence: int, lambda_steps: tuple[Step, ...], leftover: bool
) -> None:
    race = Race(bed)
    current_id = next(v for v, s in race.labels().items() if AWSCURRENT in s)
    if leftover:  # a finished rotation left AWSPENDING on the current version
        bed.sm.update_secret_version_stage(
            SecretId=race.arn, VersionStage=AWSPENDING, MoveToVersionId=current_id
        )
    hook = Interleave(
        race.direct_client, operation, occurrence, lambda: race.start_lambda_rotation(lambda_steps)
    )
    direct_token = str(uuid.uuid4())

    with pytest.raises(RotationFailed) as failed:
        race.direct.run(race.arn, direct_token)

    assert hook.fired
    assert failed.value.step is Step.CREATE
    cause = failed.value.__cause__
    assert isinstance(cause, StagingError)
    assert race.lambda_token is not None
    assert race.lambda_token in str(cause)
    assert "stood back" in str(cause)
    assert "undisturbed" in str(cause)
    labels = race.labels()
    assert labels[race.lambda_token] == [AWSPENDING]  # the Lambda's token kept its label
    assert labels[current_id] == [AWSCURRENT]
    assert AWSPENDING not in labels.get(direct_token, [])
    assert CLAIM not in labels.get(direct_token, [])
    race.check_logins()
    if Step.SET in lambda_steps:
        # The database is on the Lambda's pending password: AWSPENDING is what logs in.
        assert race.logins[-1] == [AWSPENDING]

    run = race.lambda_driver.run(race.arn, race.lambda_token)  # Secrets Manager re-attempts
    assert run.succeeded
    assert AWSCURRENT in race.labels()[race.lambda_token]
    assert bed.labelled_logins(race.arn)[0] == AWSCURRENT


def test_direct_create_refuses_while_another_version_holds_awspending(bed: Bed) -> None:
    """Even forced (`rotation rotate --force`), the registration's own check refuses."""
    race = Race(bed)
    race.start_lambda_rotation()
    before = race.labels()
    direct_token = str(uuid.uuid4())
    forced = LocalRotation(bed.sm, race.direct.handler, direct=True, force=True)
    with pytest.raises(RotationFailed) as failed:
        forced.run(race.arn, direct_token)
    assert isinstance(failed.value.__cause__, StagingError)
    assert f"version {race.lambda_token} already holds AWSPENDING" in str(failed.value.__cause__)
    assert race.labels() == before  # nothing written: not even a version for our token


def test_a_direct_rotation_ends_with_plain_labels(bed: Bed) -> None:
    race = Race(bed)
    run = race.direct.rotate(race.arn)
    assert run.succeeded
    labels = race.labels()
    assert labels[run.token] == [AWSCURRENT]
    assert all(CLAIM not in stages for stages in labels.values())


def test_a_direct_rotation_takes_a_leftover_awspending_off_the_current_version(
    bed: Bed,
) -> None:
    race = Race(bed)
    current_id = next(v for v, s in race.labels().items() if AWSCURRENT in s)
    bed.sm.update_secret_version_stage(
        SecretId=race.arn, VersionStage=AWSPENDING, MoveToVersionId=current_id
    )
    run = race.direct.rotate(race.arn)
    assert run.succeeded
    assert race.labels()[current_id] == ["AWSPREVIOUS"]
    assert bed.logs_in(bed.value(race.arn))


def test_a_claim_label_left_by_a_crash_goes_when_the_rotation_resumes(bed: Bed) -> None:
    race = Race(bed)

    def crash() -> None:
        raise SimulatedCrash

    # The second UpdateSecretVersionStage drops our own label, after the claim.
    Interleave(race.direct_client, "UpdateSecretVersionStage", 2, crash)
    with pytest.raises(SimulatedCrash):
        race.direct.rotate(race.arn)
    (token,) = [v for v, s in race.labels().items() if CLAIM in s]
    assert sorted(race.labels()[token]) == sorted([AWSPENDING, CLAIM])
    race.check_logins()
    run = race.direct.rotate(race.arn)  # `rotation rotate` again: resumes that token
    assert run.resumed
    assert run.token == token
    assert all(CLAIM not in stages for stages in race.labels().values())
    assert race.labels()[token] == [AWSCURRENT]


def test_a_function_attached_refuses_a_direct_rotation_unless_forced(bed: Bed) -> None:
    race = Race(bed)
    race.lambda_driver.rotate(race.arn)  # rotation enabled, with a function
    before = race.labels()
    with pytest.raises(StagingError, match="rotation is enabled with function") as refused:
        race.direct.rotate(race.arn)
    assert refused.value.secret_id == race.arn
    assert race.labels() == before
    forced = LocalRotation(bed.sm, race.direct.handler, direct=True, force=True)
    assert forced.rotate(race.arn).succeeded
