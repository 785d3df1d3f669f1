"""A local stand-in for what Secrets Manager does around a rotation function.

Secrets Manager registers a token as a value-less AWSPENDING version, invokes the function
for the four steps in order with that token, and, once finishSecret succeeds, takes
AWSPENDING off the new current version. When a step fails it re-attempts later with the
same token. :class:`LocalRotation` does the same against any Secrets Manager endpoint, in
process, so tests, the CLI and the benchmarks drive the real handlers the same way.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rotation.errors import StagingError
from rotation.event import Step
from rotation.secret import AWSCURRENT, AWSPENDING, SecretDescription
from rotation_contract.aws_errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "LOCAL_FUNCTION_ARN",
    "LocalContext",
    "LocalRotation",
    "RotationFailed",
    "RotationFunctionAttachedError",
    "RotationRun",
    "StepRecord",
]

Handler = Callable[[dict[str, Any], Any], object]
LOCAL_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:local-rotation"
STEPS: tuple[Step, ...] = (Step.CREATE, Step.SET, Step.TEST, Step.FINISH)


@dataclass
class LocalContext:
    """A Lambda context for in-process invocations, with a real countdown."""

    timeout_s: float = 30.0
    function_name: str = "local-rotation"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = LOCAL_FUNCTION_ARN
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.timeout_s - (time.monotonic() - self._started)) * 1000), 0)


@dataclass(frozen=True)
class StepRecord:
    step: Step
    duration_s: float
    outcome: str
    error: str | None = None


@dataclass
class RotationRun:
    secret_id: str
    token: str
    resumed: bool = False
    steps: list[StepRecord] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return len(self.steps) == len(STEPS) and all(s.error is None for s in self.steps)


class RotationFailed(Exception):  # noqa: N818  # reads as "the rotation failed"
    """A step of a local rotation (:class:`LocalRotation`, ``rotation rotate``) failed; ``run``
    holds what ran, ``__cause__`` the step's error. (Secrets Manager's own ``RotationFailed``
    event, which alarms watch, is another thing: a step of the deployed function failed;
    see the troubleshooting page.)

    Fix: the step's error (``__cause__``, and the message) says; running the rotation again
    resumes it with the same token.
    """

    def __init__(self, run: RotationRun, step: Step, error: BaseException) -> None:
        super().__init__(f"{step.value} failed: {error}")
        self.run = run
        self.step = step


class RotationFunctionAttachedError(StagingError):
    """A direct rotation refused: Secrets Manager rotates this secret with a function.

    ``function_arn`` names it. Rotating from elsewhere at the same time could race with a
    rotation Secrets Manager starts.

    Fix: rotate through the function (``aws secretsmanager rotate-secret --secret-id
    SECRET``), or pass ``--force`` to ``rotation rotate`` (``force=True``) knowing the risk.
    """

    def __init__(self, secret_id: str, function_arn: str) -> None:
        super().__init__(
            f"rotation is enabled with function {function_arn}, so Secrets Manager may start "
            "a rotation of its own at any time; a direct rotation from here could race with "
            "it. Rotate through the function (RotateSecret), or force a direct rotation",
            secret_id=secret_id,
        )
        self.function_arn = function_arn


class LocalRotation:
    """Drive a rotation function the way Secrets Manager does.

    Parameters
    ----------
    client:
        A ``secretsmanager`` client (moto's server, or a real account).
    handler:
        The rotation function, ``handler(event, context)``.
    function_arn:
        What ``RotateSecret`` records as the rotation function. With moto, an ARN of no
        registered function makes it raise ResourceNotFoundException *after* registering
        the AWSPENDING version, which is the state we want.
    direct:
        Do not call ``RotateSecret`` (which would invoke a deployed rotation function on a
        real account): use a fresh token and let createSecret register it. The handler
        must be a Rotator with a registrar (:mod:`rotation.registrar`; the command's is
        ``rotation_tools.direct``). Refused (:class:`RotationFunctionAttachedError`) when
        the secret has rotation enabled with a function, unless ``force``: Secrets Manager
        could start its own rotation meanwhile. (Should one start anyway, the direct
        createSecret stands back and leaves it undisturbed; see
        ``rotation_tools.direct.DirectRegistration.register``.)
    force:
        In direct mode, rotate even though a function is attached (``rotation rotate
        --force``).
    """

    def __init__(
        self,
        client: SecretsManagerClient,
        handler: Handler,
        *,
        function_arn: str = LOCAL_FUNCTION_ARN,
        timeout_s: float = 30.0,
        on_step: Callable[[StepRecord], None] | None = None,
        direct: bool = False,
        force: bool = False,
    ) -> None:
        self.direct = direct
        self.force = force
        self.client = client
        self.handler = handler
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self.on_step = on_step

    def describe(self, secret_id: str) -> SecretDescription:
        return SecretDescription.from_api(self.client.describe_secret(SecretId=secret_id))

    def rotation_function(self, secret_id: str) -> str | None:
        """The function Secrets Manager rotates the secret with, if rotation is enabled."""
        described = self.client.describe_secret(SecretId=secret_id)
        function_arn = described.get("RotationLambdaARN")
        if described.get("RotationEnabled") and function_arn:
            return str(function_arn)
        return None

    def check_direct_allowed(self, secret_id: str) -> None:
        """Raise :class:`RotationFunctionAttachedError` if a direct rotation would race with one
        Secrets Manager may start (not when ``force`` is set, nor outside direct mode)."""
        if not self.direct or self.force:
            return
        function_arn = self.rotation_function(secret_id)
        if function_arn is not None:
            raise RotationFunctionAttachedError(secret_id, function_arn)

    def pending_token(self, secret_id: str) -> str | None:
        """The token of a rotation in progress: AWSPENDING on a version that is not current."""
        for version_id, stages in self.describe(secret_id).versions.items():
            if AWSPENDING in stages and AWSCURRENT not in stages:
                return version_id
        return None

    def begin(self, secret_id: str, token: str | None = None) -> str:
        """Register a new token as AWSPENDING, as ``RotateSecret`` does, and return it."""
        token = token or str(uuid.uuid4())
        if self.direct:
            return token
        try:
            self.client.rotate_secret(
                SecretId=secret_id,
                ClientRequestToken=token,
                RotationLambdaARN=self.function_arn,
                RotationRules={"AutomaticallyAfterDays": 30},
            )
        except ClientError as exc:
            code = error_code(exc)
            stages = self.describe(secret_id).versions.get(token, ())
            # moto cannot invoke a Lambda; it registers the token and then reports the
            # function missing. Anything else is a real failure.
            if code != "ResourceNotFoundException" or AWSPENDING not in stages:
                raise
        return token

    def run(
        self, secret_id: str, token: str, steps: Iterable[Step] = STEPS, *, resumed: bool = False
    ) -> RotationRun:
        """Invoke the steps in order with ``token``; stop at the first failure.

        Raises
        ------
        RotationFailed
            With the steps that ran, chained to the step's own error.
        RotationFunctionAttachedError
            In direct mode without ``force``, before any step, when the secret has rotation
            enabled with a function.
        """
        self.check_direct_allowed(secret_id)
        run = RotationRun(secret_id=secret_id, token=token, resumed=resumed)
        for step in steps:
            event = {"Step": step.value, "SecretId": secret_id, "ClientRequestToken": token}
            started = time.perf_counter()
            try:
                outcome = self.handler(event, LocalContext(timeout_s=self.timeout_s))
            except Exception as exc:
                record = StepRecord(step, time.perf_counter() - started, "failed", str(exc))
                run.steps.append(record)
                if self.on_step:
                    self.on_step(record)
                raise RotationFailed(run, step, exc) from exc
            record = StepRecord(step, time.perf_counter() - started, str(outcome))
            run.steps.append(record)
            if self.on_step:
                self.on_step(record)
        if run.succeeded:
            self.complete(secret_id, token)
        return run

    def complete(self, secret_id: str, token: str) -> None:
        """Take AWSPENDING off the new current version, as Secrets Manager does."""
        stages: Mapping[str, tuple[str, ...]] = self.describe(secret_id).versions
        if AWSCURRENT in stages.get(token, ()) and AWSPENDING in stages.get(token, ()):
            self.client.update_secret_version_stage(
                SecretId=secret_id, VersionStage=AWSPENDING, RemoveFromVersionId=token
            )

    def rotate(self, secret_id: str) -> RotationRun:
        """Rotate now: resume the rotation in progress if there is one, else start one."""
        token = self.pending_token(secret_id)
        if token is not None:
            return self.run(secret_id, token, resumed=True)
        return self.run(secret_id, self.begin(secret_id))
