"""Rotation events on moto's EventBridge over HTTP, captured by a rule targeting an SQS queue."""

from __future__ import annotations

import io
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, Outcome, Rotator, SecretStore, Step
from rotation.driver import LocalContext, RotationFailed
from rotation.events import SOURCE, RotationEvents
from rotation.retry import RetryPolicy
from rotation_contract.pg.errors import AuthenticationError
from testbed.pgcluster import free_port
from tests.fix_faults import Pauses
from tests.fix_lossy_proxy import FAIL_ENTRY, HANG, LOSE, THROTTLE, LossyProxy
from tests.fix_multi import MultiBed
from tests.fix_postgres import admin_connect, set_role_password
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


@dataclass
class Bus:
    name: str
    queue_url: str
    sqs: Any

    def received(self) -> list[dict[str, Any]]:
        """Every event delivered to the queue so far (moto delivers synchronously)."""
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def bus(moto_endpoint: Any) -> Iterator[Bus]:
    """A custom bus whose rule sends every rotation event to a queue."""
    name = f"rotation-{secrets.token_hex(4)}"
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name="all-rotation-events",
        EventBusName=name,
        EventPattern=json.dumps({"source": [SOURCE]}),
    )
    events.put_targets(
        Rule="all-rotation-events", EventBusName=name, Targets=[{"Id": "q", "Arn": queue_arn}]
    )
    yield Bus(name, queue_url, sqs)
    events.remove_targets(Rule="all-rotation-events", EventBusName=name, Ids=["q"])
    events.delete_rule(Name="all-rotation-events", EventBusName=name)
    events.delete_event_bus(Name=name)
    sqs.delete_queue(QueueUrl=queue_url)


def _single(bed: Bed, events: RotationEvents | None = None) -> Rotator:
    store = SecretStore(bed.handler_client)
    return Rotator(PostgresSingleUser(bed.connector()), store, events=events)


def _passwords(bed: Any, arn: str, *more: str) -> list[str]:
    return [v["password"] for v in bed.values_by_label(arn).values()] + list(more)


def test_a_completed_rotation_publishes_one_succeeded_event(
    bed: Bed, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVENT_BUS_NAME", bus.name)  # as the template sets it
    arn, _, old_password = bed.user_secret()
    previous = bed.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (old_version,) = [v for v, stages in previous.items() if AWSCURRENT in stages]
    rotator = _single(bed)
    run = bed.driver(rotator).rotate(arn)
    assert run.succeeded
    # A re-invoked finishSecret (already current) publishes nothing more.
    event = bed.event(arn, Step.FINISH.value, run.token)
    assert rotator.handle(event, LocalContext()) == Outcome.ALREADY_CURRENT
    (received,) = bus.received()
    assert received["source"] == SOURCE
    assert received["detail-type"] == "RotationSucceeded"
    assert received["resources"] == [arn]
    detail = received["detail"]
    assert detail["secretArn"] == arn
    assert detail["versionId"] == run.token
    assert detail["previousVersionId"] == old_version
    assert detail["strategy"] == "postgres-single-user"
    assert isinstance(detail["durationSeconds"], float)
    assert 0 <= detail["durationSeconds"] < 60
    assert set(detail) == {
        "idempotencyId", "secretArn", "versionId", "previousVersionId", "strategy",
        "durationSeconds",
    }  # fmt: skip
    assert str(uuid.UUID(detail["idempotencyId"])) == detail["idempotencyId"]
    body = json.dumps(received)
    for password in _passwords(bed, arn, old_password):
        assert password not in body


def test_multi_user_completion_names_its_strategy(multi: MultiBed, bus: Bus) -> None:
    arn, _, password = multi.app()
    rotator = Rotator(
        multi.strategy(), SecretStore(multi.handler_client), events=RotationEvents(bus.name)
    )
    run = multi.driver(rotator).rotate(arn)
    (received,) = bus.received()
    assert received["detail"]["strategy"] == "postgres-multi-user"
    assert received["detail"]["versionId"] == run.token
    body = json.dumps(received)
    for secret in _passwords(multi, arn, password, multi.master_password):
        assert secret not in body


def test_a_cold_finish_takes_the_duration_from_the_version(bed: Bed, bus: Bus) -> None:
    """finishSecret in a container that never saw the rotation: the pending version's
    CreatedDate (GetSecretValue) gives the duration, at no extra call."""
    arn, _, _ = bed.user_secret()
    warm = _single(bed)
    driver = bed.driver(warm)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET, Step.TEST])
    cold = _single(bed, RotationEvents(bus.name))
    bed.calls.reset()
    assert cold.handle(bed.event(arn, Step.FINISH.value, token), LocalContext()) == Outcome.DONE
    (received,) = bus.received()
    assert received["detail"]["durationSeconds"] >= 0
    assert bed.calls.names == [
        "DescribeSecret", "GetSecretValue", "GetSecretValue", "UpdateSecretVersionStage",
    ]  # fmt: skip


def test_a_failed_step_publishes_its_error_and_raises_it_unchanged(
    bed: Bed, bus: Bus, json_log: io.StringIO
) -> None:
    arn, user, password = bed.user_secret()
    rotator = _single(bed, RotationEvents(bus.name))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    with admin_connect(bed.pg) as conn:  # changed outside rotation: nothing logs in
        set_role_password(conn, user, "changed-behind-our-back")
    with pytest.raises(RotationFailed) as failed:
        driver.run(arn, token, [Step.SET])
    error = failed.value.__cause__
    assert isinstance(error, AuthenticationError)
    (received,) = bus.received()
    assert received["detail-type"] == "RotationStepFailed"
    detail = received["detail"]
    assert uuid.UUID(detail.pop("idempotencyId"))
    assert detail == {
        "secretArn": arn,
        "step": "setSecret",
        "token": token,
        "strategy": "postgres-single-user",
        "errorClass": "AuthenticationError",
        "message": str(error),
    }
    body = json.dumps(received) + json_log.getvalue()
    for secret in _passwords(bed, arn, password, "changed-behind-our-back"):
        assert secret not in body


def test_an_unknown_bus_never_fails_a_step_and_is_logged_and_counted(
    bed: Bed,
    json_log: io.StringIO,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    arn, user, _ = bed.user_secret()
    rotator = _single(bed, RotationEvents("no-such-bus"))
    assert bed.driver(rotator).rotate(arn).succeeded
    # And a failing step keeps its own error.
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE])
    with admin_connect(bed.pg) as conn:
        set_role_password(conn, user, "changed-again")
    with pytest.raises(RotationFailed) as failed:
        driver.run(arn, token, [Step.SET])
    assert isinstance(failed.value.__cause__, AuthenticationError)
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    warnings = [line for line in lines if line["message"].startswith("could not publish")]
    assert [w["detail_type"] for w in warnings] == ["RotationSucceeded", "RotationStepFailed"]
    assert {w["error_code"] for w in warnings} == {"ResourceNotFoundException"}
    assert all("no-such-bus" in w["cause"] for w in warnings)
    out = capsys.readouterr().out
    emf = [json.loads(x) for x in out.splitlines() if "EventsNotPublished" in x]
    assert [(d["DetailType"], d["EventsNotPublished"]) for d in emf] == [
        ("RotationSucceeded", [1.0]),
        ("RotationStepFailed", [1.0]),
    ]


def test_an_unreachable_events_endpoint_is_bounded_and_harmless(
    bed: Bed, json_log: io.StringIO
) -> None:
    from rotation.clients import events_client

    nowhere = events_client(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    arn, _, _ = bed.user_secret()
    rotator = _single(bed, RotationEvents("some-bus", client=nowhere))
    started = time.monotonic()
    assert bed.driver(rotator).rotate(arn).succeeded
    assert time.monotonic() - started < 20
    (warning,) = [
        json.loads(x) for x in json_log.getvalue().splitlines() if "could not publish" in x
    ]
    assert warning["error_type"] == "_PublishError"
    assert "EventBridge" in warning["cause"] or "PutEvents" in warning["cause"]


def test_no_bus_no_client_no_call(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_BUS_NAME", raising=False)
    events = RotationEvents.from_env()
    assert not events.enabled
    arn, _, _ = bed.user_secret()
    assert bed.driver(_single(bed, events)).rotate(arn).succeeded
    assert events._client is None
    monkeypatch.setenv("EVENT_BUS_NAME", "  ")
    assert not RotationEvents.from_env().enabled


# -- at most once: a lost answer is not retried ----------------------------------------------


def _events_through(
    proxy: LossyProxy, bus: Bus, pauses: Pauses, read_timeout_s: float = 10.0
) -> RotationEvents:
    """Rotation events sent through ``proxy``, waits recorded instead of slept."""
    import botocore.session
    from botocore.config import Config

    from rotation.clients import bound_by_deadline

    config = Config(
        read_timeout=read_timeout_s,
        connect_timeout=2.0,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    client: Any = botocore.session.get_session().create_client(
        "events", endpoint_url=proxy.url, config=config
    )
    bound_by_deadline(client)
    policy = RetryPolicy(
        attempts=3, initial_wait_s=0.01, max_wait_s=0.01, jitter_s=0.0, sleep=pauses
    )
    return RotationEvents(bus.name, client=client, retry_policy=policy)


def _succeeded(events: RotationEvents) -> None:
    events.succeeded(
        LocalContext(),
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf",
        version_id="5b0d1e5e-0000-4000-8000-000000000001",
        previous_version_id="5b0d1e5e-0000-4000-8000-000000000000",
        strategy="postgres-single-user",
        duration_s=1.0,
    )


@pytest.mark.parametrize("loss", [LOSE, HANG], ids=["closed-before-answer", "read-timeout"])
def test_a_delivered_event_whose_answer_is_lost_is_not_sent_again(
    bus: Bus, lossy_proxy: LossyProxy, json_log: io.StringIO, loss: str
) -> None:
    pauses = Pauses()
    lossy_proxy.script("PutEvents", loss)
    # The hang case gives up on the answer after 0.3 s, once; the other gets its connection
    # closed right after the proxy forwarded the request, well within 10 s.
    read_timeout_s = 0.3 if loss == HANG else 10.0
    _succeeded(_events_through(lossy_proxy, bus, pauses, read_timeout_s))
    lossy_proxy.wait_idle()  # the request may reach moto after the caller gave up

    assert lossy_proxy.forwarded == ["PutEvents"]
    assert lossy_proxy.received == ["PutEvents"]
    assert pauses.waits == []
    (received,) = bus.received()
    assert received["detail-type"] == "RotationSucceeded"
    (warning,) = [
        json.loads(x) for x in json_log.getvalue().splitlines() if "could not publish" in x
    ]
    assert "not retried: the request may have arrived" in warning["cause"]


@pytest.mark.parametrize("refusal", [THROTTLE, FAIL_ENTRY], ids=["error-answer", "failed-entry"])
def test_an_event_that_certainly_did_not_arrive_is_sent_again(
    bus: Bus, lossy_proxy: LossyProxy, json_log: io.StringIO, refusal: str
) -> None:
    pauses = Pauses()
    lossy_proxy.script("PutEvents", refusal)
    _succeeded(_events_through(lossy_proxy, bus, pauses))
    lossy_proxy.wait_idle()

    assert lossy_proxy.received == ["PutEvents", "PutEvents"]
    assert lossy_proxy.forwarded == ["PutEvents"]
    assert len(pauses.waits) == 1
    (received,) = bus.received()
    assert received["detail-type"] == "RotationSucceeded"
    assert "could not publish" not in json_log.getvalue()


def test_the_idempotency_id_names_the_event_not_the_request(
    bus: Bus, lossy_proxy: LossyProxy
) -> None:
    """The same rotation's event sent twice (by hand, or from two containers) carries the
    same id; another rotation's does not."""
    events = _events_through(lossy_proxy, bus, Pauses())
    _succeeded(events)
    _succeeded(events)
    events.succeeded(
        LocalContext(),
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf",
        version_id="5b0d1e5e-0000-4000-8000-000000000002",
        previous_version_id="5b0d1e5e-0000-4000-8000-000000000001",
        strategy="postgres-single-user",
        duration_s=1.0,
    )
    first, again, other = (event["detail"]["idempotencyId"] for event in bus.received())
    assert first == again != other
