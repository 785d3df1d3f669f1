"""Random schedules of faults across three consecutive rotations of both strategies.

Each rotation is attempted as Secrets Manager attempts it (the four steps, same token, again
after a failure); each failed attempt carries one fault drawn by hypothesis: a crash before
or after one of the handler's Secrets Manager calls or database logins, throttling of a
call, or a second container running the same step to completion in between two calls of
the first (a concurrent invocation, interleaved at a call boundary), or a real restart of
the database between two calls (``pg_ctl restart``). Invariants at every
point: some labelled version logs in and at most one version holds AWSPENDING; once the
faults stop, the rotation completes; no password reaches any log, any output or the
server's log.

``make test`` runs a few examples with a fixed seed (a failure is a bug, never a coin
flip); ``make soak`` runs many more with fresh randomness (``HYPOTHESIS_PROFILE=soak``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, AWSPENDING, RetryPolicy, RotationError, Rotator, SecretStore
from rotation.driver import STEPS, LocalRotation, RotationFailed
from tests.fix_aws import new_client
from tests.fix_multi import MultiBed, bed_resolver
from tests.fix_postgres import ServerLog
from tests.fix_rotation import Bed, ConnectionCounter, SimulatedCrash

pytestmark = [pytest.mark.functional, pytest.mark.crash]

settings.register_profile(
    "default",
    max_examples=4,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")

ROTATIONS = 3
NO_SLEEP = RetryPolicy(attempts=3, jitter_s=0.0, sleep=lambda _: None)


@dataclass(frozen=True)
class Fault:
    kind: str  # "crash-call", "crash-login", "throttle", "interleave", "restart"
    index: int  # which call or login of the attempt (wraps around the attempt's count)
    when: str  # "before" or "after"
    warm: bool  # whether the re-attempt runs in the same container

    def __str__(self) -> str:
        return f"{self.kind}@{self.index}:{self.when}{':warm' if self.warm else ''}"


faults = st.builds(
    Fault,
    kind=st.sampled_from(["crash-call", "crash-login", "throttle", "interleave", "restart"]),
    index=st.integers(0, 9),
    when=st.sampled_from(["before", "after"]),
    warm=st.booleans(),
)
# Per rotation: the faults of its failed attempts, in order (then a clean one).
# At least one faulty attempt per rotation: a schedule without faults proves little.
schedules = st.lists(
    st.lists(faults, min_size=1, max_size=2), min_size=ROTATIONS, max_size=ROTATIONS
)


class _Throttled:
    """What ``before-call`` returns to answer a call with ThrottlingException."""

    @staticmethod
    def response() -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://secretsmanager.local", 400, HTTPHeaders(), None), parsed


class Container:
    """One Lambda container: a client, a connector, a rotator; faults armed per attempt."""

    def __init__(self, bed: Any, strategy: Callable[[PostgresConnector], Any]) -> None:
        self.bed = bed
        self.client = new_client()
        self.connections = _FaultyConnect(bed)
        self.rotator = Rotator(
            strategy(
                PostgresConnector(
                    connect=self.connections, retry_policy=NO_SLEEP, resolver=bed_resolver
                )
            ),
            SecretStore(self.client, retry_policy=NO_SLEEP),
        )
        self.step = STEPS[0].value
        self.fault: Fault | None = None
        self.calls = 0
        self.fired = False
        self.interleave: Callable[[], None] | None = None
        for when in ("before", "after"):
            self.client.meta.events.register(
                f"{when}-call.secrets-manager.*",
                lambda when=when, **kw: self._on_call(when, **kw),
            )

    def handle(self, event: dict[str, str], context: Any = None) -> str:
        self.step = event["Step"]
        return self.rotator.handle(event, context)

    def driver(self) -> LocalRotation:
        return LocalRotation(self.bed.sm, self.handle)

    def arm(self, fault: Fault | None, interleave: Callable[[], None] | None) -> None:
        self.fault, self.calls, self.fired, self.interleave = fault, 0, False, interleave
        self.connections.arm(fault if fault and fault.kind == "crash-login" else None)

    def _on_call(self, when: str, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        fault = self.fault
        if when == "before":
            self.calls += 1
        if fault is None or self.fired or fault.kind == "crash-login":
            return None
        if (self.calls - 1) != fault.index % 8 or when != fault.when:
            return None
        if fault.kind == "crash-call":
            self.fired = True
            raise SimulatedCrash(str(fault))
        if fault.kind == "throttle" and when == "before":
            self.fired = True
            return _Throttled.response()
        if fault.kind == "interleave" and when == "before" and self.interleave is not None:
            self.fired = True
            self.interleave()
        if fault.kind == "restart" and when == "before":
            event("the database restarted")
            # The database restarts between two of the step's calls (pg_ctl restart -m fast:
            # sessions cut, logins refused until it is up; returns once it is).
            self.fired = True
            self.bed.pg.restart()
        return None


class _FaultyConnect(ConnectionCounter):
    def __init__(self, bed: Any) -> None:
        super().__init__()
        self.bed = bed
        self.fault: Fault | None = None
        self.seen = 0

    def arm(self, fault: Fault | None) -> None:
        self.fault, self.seen = fault, 0

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        if kwargs["host"].endswith(".rds.amazonaws.com"):
            kwargs = {**kwargs, "hostaddr": "127.0.0.1"}
        fault = self.fault
        number, self.seen = self.seen, self.seen + 1
        hit = fault is not None and number == fault.index % 4
        if hit and fault is not None and fault.when == "before":
            self.fault = None
            raise SimulatedCrash(str(fault))
        conn = super().__call__(**kwargs)
        if hit and fault is not None:
            self.fault = None
            conn.close()
            raise SimulatedCrash(str(fault))
        return conn


def _invariants(bed: Any, arn: str) -> None:
    assert bed.labelled_logins(arn), "no labelled version logs in"
    labels = bed.labels(arn)
    assert sum(AWSPENDING in stages for stages in labels.values()) <= 1, labels


def _rotate_through(
    bed: Any, arn: str, attempts: list[Fault], strategy: Callable[[PostgresConnector], Any]
) -> None:
    """One rotation: a failed attempt per fault, then a clean one that must complete."""
    container = Container(bed, strategy)
    token = container.driver().pending_token(arn) or container.driver().begin(arn)
    for fault in [*attempts, None]:
        if fault is not None and not fault.warm:
            container = Container(bed, strategy)
        other = Container(bed, strategy)  # a second container, for "interleave"

        def interleave(other: Container = other, running: Container = container) -> None:
            # The other container's step may fail; Secrets Manager records it.
            with contextlib.suppress(RotationError):
                other.rotator.handle(bed.event(arn, running.step, token))

        container.arm(fault, interleave)
        failure: BaseException | None = None
        try:
            run = container.driver().run(arn, token, STEPS)
        except RotationFailed as failed:
            failure = failed.__cause__
        except SimulatedCrash as crashed:
            failure = crashed
        if failure is None:
            # A clean attempt, or a fault that did not fire (or was survived: throttling).
            assert run.succeeded
            _invariants(bed, arn)
            labels = bed.labels(arn)
            assert labels[token] == [AWSCURRENT], labels
            assert bed.logs_in(bed.value(arn))
            return
        assert fault is not None, f"a clean attempt failed: {failure}"
        event(f"an attempt failed after {fault.kind}")
        assert isinstance(failure, SimulatedCrash | RotationError), repr(failure)
        _invariants(bed, arn)
    raise AssertionError("the clean attempt did not complete the rotation")


def _passwords(bed: Any, arn: str) -> set[str]:
    found: set[str] = set()
    for version in bed.sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]:
        try:
            value = bed.sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
        except bed.sm.exceptions.ResourceNotFoundException:
            continue
        found.add(json.loads(value["SecretString"])["password"])
    return found


def _check_schedule(
    bed: Any,
    arn: str,
    schedule: list[list[Fault]],
    strategy: Callable[[PostgresConnector], Any],
    capture: Callable[[], str],
) -> None:
    log = ServerLog(bed.pg)
    for attempts in schedule:
        _rotate_through(bed, arn, attempts, strategy)
    text = capture() + log.since()
    for password in _passwords(bed, arn):
        assert password not in text


@settings(settings.get_profile(PROFILE))
@given(schedule=schedules)
def test_single_user_survives_any_fault_schedule(
    bed: Bed, schedule: list[list[Fault]], capfd: pytest.CaptureFixture[str]
) -> None:
    arn, _, _ = bed.user_secret()

    def capture() -> str:
        out, err = capfd.readouterr()
        return out + err

    _check_schedule(bed, arn, schedule, PostgresSingleUser, capture)


@settings(settings.get_profile(PROFILE))
@given(schedule=schedules)
def test_multi_user_survives_any_fault_schedule(
    multi: MultiBed, schedule: list[list[Fault]], capfd: pytest.CaptureFixture[str]
) -> None:
    arn, _, _ = multi.app()

    def capture() -> str:
        out, err = capfd.readouterr()
        return out + err

    _check_schedule(multi, arn, schedule, PostgresMultiUser, capture)
