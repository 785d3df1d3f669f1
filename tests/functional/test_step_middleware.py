"""The cross-cutting layers wrap the rotation step through one interface.

A layer of one's own sees every step, its invocation and its outcome, the same way the
built-in ones do; a rotation function's entrypoints run exactly the default stack; and a
rotation function's Rotator has no way to register a token itself (that is the command's
direct mode, injected: ``rotation_tools.direct``).
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from handlers.single_user import PostgresSingleUser
from rotation import (
    AWSCURRENT,
    AWSPENDING,
    LocalContext,
    LocalRotation,
    Outcome,
    RotationError,
    Rotator,
    SecretStore,
    SetRequest,
    SetResult,
    StagingError,
    Step,
)
from rotation.events import RotationEvents
from rotation.middleware import (
    CallNext,
    Invocation,
    LogKeys,
    LogOutcome,
    PublishEvents,
    SanitiseErrors,
    StepMetrics,
    lambda_stack,
)
from rotation_tools.direct import CLAIM
from rotation_tools.strategies import build_rotator
from tests.fix_aws import ApiCalls
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINTS = ("handlers.postgres_single_user", "handlers.postgres_multi_user")


@dataclass
class Seen:
    step: str | None
    arn: str | None
    outcome: str | None = None
    error: BaseException | None = None
    promoted: Any = None


class Recorder:
    """A layer of one's own: what each call carried and what came of it."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        try:
            outcome = call_next(invocation)
        except Exception as exc:
            failure = exc
        else:
            self.seen.append(self._saw(invocation, outcome=outcome))
            return outcome
        self.seen.append(self._saw(invocation, error=failure))
        raise failure

    @staticmethod
    def _saw(invocation: Invocation, **what: Any) -> Seen:
        step = invocation.event.step.value if invocation.event else None
        return Seen(step, invocation.arn, promoted=invocation.promoted, **what)


class BuggySet(PostgresSingleUser):
    """setSecret fails with a bug's exception, quoting the pending password."""

    def set(self, request: SetRequest) -> SetResult:
        raise RuntimeError(f"bug near {request.pending.json()['password']}")


def test_a_layer_of_ones_own_sees_every_step_and_its_outcome(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    before = bed.labels(arn)
    (old_current,) = [v for v, s in before.items() if AWSCURRENT in s]
    outer, inner = Recorder(), Recorder()
    rotator = Rotator(
        PostgresSingleUser(bed.connector()),
        SecretStore(bed.handler_client),
        middleware=(outer, *lambda_stack(), inner),
    )
    run = bed.driver(rotator).rotate(arn)
    assert run.succeeded
    steps = ["createSecret", "setSecret", "testSecret", "finishSecret"]
    for layer in (outer, inner):
        assert [s.step for s in layer.seen] == steps
        assert [s.outcome for s in layer.seen] == [r.outcome for r in run.steps]
        assert all(s.arn == arn and s.error is None for s in layer.seen)
        # Only finishSecret moved AWSCURRENT, and the layers learn from where.
        assert [s.promoted is not None for s in layer.seen] == [False, False, False, True]
        assert layer.seen[-1].promoted.previous_version_id == old_current


def test_every_layer_sees_the_finished_error_the_sanitiser_made_of_the_raw_one(
    bed: Bed,
) -> None:
    """A layer passed last still runs outside the sanitiser, which is always innermost: it
    sees the finished error, never the strategy's raw one (tests/functional/
    test_middleware_secrecy.py plays the layers that would leak it)."""
    arn, _, _ = bed.user_secret()
    outer, inner = Recorder(), Recorder()
    rotator = Rotator(
        BuggySet(bed.connector()),
        SecretStore(bed.handler_client),
        middleware=(outer, *lambda_stack(), inner),
    )
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    pending = bed.value(arn, AWSPENDING)["password"]
    with pytest.raises(RotationError) as raised:
        rotator.handle(bed.event(arn, "setSecret", token), LocalContext())
    seen_outside, seen_inside = outer.seen[-1], inner.seen[-1]
    assert seen_outside.error is raised.value
    assert seen_outside.step == "setSecret"
    assert raised.value.step == "setSecret"
    assert raised.value.token == token
    assert "unexpected RuntimeError" in str(raised.value)
    assert pending not in str(raised.value)
    assert seen_inside.error is raised.value
    assert type(raised.value.__cause__) is RuntimeError  # the strategy's, scrubbed in place
    assert pending not in str(raised.value.__cause__)
    assert [type(layer) for layer in rotator.layers][-2:] == [Recorder, SanitiseErrors]


def test_an_event_that_does_not_parse_reaches_every_layer_unparsed(bed: Bed) -> None:
    outer = Recorder()
    rotator = Rotator(
        PostgresSingleUser(bed.connector()),
        SecretStore(bed.handler_client),
        middleware=(outer, *lambda_stack()),
    )
    with pytest.raises(RotationError, match="Step"):
        rotator.handle({"SecretId": "x", "ClientRequestToken": "t"}, LocalContext())
    (seen,) = outer.seen
    assert seen.step is None
    assert seen.arn is None
    assert isinstance(seen.error, RotationError)
    assert bed.calls.names == []  # refused before any Secrets Manager call


@pytest.mark.parametrize("module_name", ENTRYPOINTS)
def test_the_lambda_entrypoints_run_exactly_the_default_stack(
    bed: Bed, module_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", bed.sm.meta.endpoint_url)
    module = importlib.import_module(module_name)
    module.entrypoint.reset()
    try:
        rotator = module.entrypoint.rotator
        assert [type(layer) for layer in rotator.layers] == [
            LogKeys, PublishEvents, LogOutcome, StepMetrics, SanitiseErrors,
        ]  # fmt: skip
        metrics = rotator.middleware[3]
        assert isinstance(metrics, StepMetrics)
        assert metrics.clock is rotator.clock
        assert rotator.registrar is None
    finally:
        module.entrypoint.reset()


@pytest.fixture
def bus(moto_endpoint: Any) -> Iterator[str]:
    """A custom event bus on moto (no rule: PutEvents is accepted and goes nowhere)."""
    name = f"middleware-{secrets.token_hex(4)}"
    events = boto3.client("events")
    events.create_event_bus(Name=name)
    yield name
    events.delete_event_bus(Name=name)


def test_the_outcome_line_comes_before_the_event_and_every_line_carries_the_keys(
    bed: Bed, bus: str, json_log: io.StringIO
) -> None:
    arn, _, _ = bed.user_secret()
    rotator = Rotator(
        PostgresSingleUser(bed.connector()),
        SecretStore(bed.handler_client),
        events=RotationEvents(bus),
    )
    run = bed.driver(rotator).rotate(arn)
    assert run.succeeded
    with pytest.raises(StagingError):  # a step that fails: the token is no version
        rotator.handle(bed.event(arn, "setSecret", str(uuid.uuid4())), LocalContext())
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    said = [
        (line["message"].partition(":")[0], line["step"])
        for line in lines
        if line["message"].startswith(("rotation step", "published a rotation event"))
    ]
    assert said == [
        ("rotation step finished", "createSecret"),
        ("rotation step finished", "setSecret"),
        ("rotation step finished", "testSecret"),
        ("rotation step finished", "finishSecret"),
        ("published a rotation event", "finishSecret"),
        ("rotation step failed", "setSecret"),
        ("published a rotation event", "setSecret"),
    ]
    assert all(line["secret_arn"] == arn for line in lines)
    assert all(line["strategy"] == "postgres-single-user" for line in lines)


def _enable_rotation(bed: Bed, arn: str) -> None:
    """A rotation through Secrets Manager (RotateSecret with a function): rotation enabled."""
    assert LocalRotation(bed.sm, bed.rotator().handle).rotate(arn).succeeded


@pytest.mark.parametrize("enabled", [False, True], ids=["rotation-off", "rotation-on"])
def test_the_lambdas_rotator_registers_no_token_of_its_own(
    bed: Bed, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    """The command's rotator registers the same unregistered token (so this can fail)."""
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", bed.sm.meta.endpoint_url)
    module = importlib.import_module("handlers.postgres_single_user")
    module.entrypoint.reset()
    arn, _, _ = bed.user_secret()
    if enabled:
        _enable_rotation(bed, arn)
    before = bed.labels(arn)
    token = str(uuid.uuid4())
    event = bed.event(arn, "createSecret", token)
    try:
        calls = ApiCalls(module.entrypoint.rotator.store.client)
        expected = (
            "the token is not a version of this secret"
            if enabled
            else "rotation is not enabled for this secret"
        )
        with pytest.raises(StagingError, match=expected):
            module.lambda_handler(event, LocalContext())
    finally:
        module.entrypoint.reset()
    assert calls.names == ["DescribeSecret"]  # nothing written
    assert bed.labels(arn) == before

    command = build_rotator("single-user", bed.handler_client, direct=True)
    command.strategy = PostgresSingleUser(bed.connector())
    assert command.handle(event, LocalContext()) == Outcome.DONE
    assert bed.labels(arn)[token] == [AWSPENDING]


def _lambda_sources() -> Iterator[Path]:
    for package in ("rotation", "handlers"):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_registration_code_is_on_the_lambdas_path() -> None:
    """Neither the claim label nor the compare-and-swap that takes AWSPENDING appears in
    what the rotation function ships (rotation, handlers); the store keeps the primitive."""
    for path in _lambda_sources():
        source = path.read_text()
        assert CLAIM not in source, path
        calls = [
            node
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "claim_stage"
        ]
        assert calls == [], path
