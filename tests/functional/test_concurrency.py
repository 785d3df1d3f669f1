"""Two invocations of the same step, for the same secret and token, at the same moment.

Secrets Manager re-invokes a step while an operator invokes it by hand; two containers then
run it together. For every step of both strategies, and for createSecret racing setSecret,
two racers (new containers each) are held at a barrier at the step's critical point and let
go together (see tests/fix_race.py). Afterwards: some labelled version logs in, at most one
version holds AWSPENDING, and a re-run of the rotation, as Secrets Manager makes it,
completes with a credential that logs in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import psycopg
import pytest
from psycopg import sql

from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import AWSCURRENT, AWSPENDING, Outcome, Rotator, SecretStore, StagingError, Step
from rotation.driver import STEPS
from tests.fix_aws import new_client
from tests.fix_multi import MASTER, MultiBed, bed_resolver
from tests.fix_race import Gate, GatedConnections, RacingClient, race
from tests.fix_rotation import Bed

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

pytestmark = pytest.mark.functional

# Where the two racers are held, per step: before an API operation, or right after a login.
_API_GATE = {Step.CREATE: "PutSecretValue", Step.FINISH: "UpdateSecretVersionStage"}


def _racer(
    bed: Any, racer: int, gate: Gate, *, operation: str | None, login_as: str | None, multi: bool
) -> Rotator:
    connections = GatedConnections(racer=racer, gate=gate, user=login_as, host_map=multi)
    connector = PostgresConnector(connect=connections, resolver=bed_resolver)
    strategy = PostgresMultiUser(connector) if multi else PostgresSingleUser(connector)
    client = RacingClient(new_client(), bed.sm, racer, gate if operation else None, operation)
    # RacingClient stands in for the boto3 client (it forwards what it does not gate), but the
    # stubs' client is a class, not a Protocol: say so once here.
    return Rotator(strategy, SecretStore(cast("SecretsManagerClient", client)))


def _login_gate(step: Step, *, multi: bool, user: str, pending_user: str) -> str | None:
    if step is Step.SET:
        return MASTER if multi else user  # the login that changes a password
    if step is Step.TEST:
        return pending_user
    return None


def _assert_safe_then_complete(bed: Any, arn: str, token: str, fresh: Rotator) -> None:
    assert bed.labelled_logins(arn), "no labelled version logs in after the race"
    labels = bed.labels(arn)
    assert sum(AWSPENDING in stages for stages in labels.values()) <= 1
    # Secrets Manager re-attempts the whole rotation with the same token.
    run = bed.driver(fresh).run(arn, token, STEPS)
    assert run.succeeded
    assert bed.logs_in(bed.value(arn))
    labels = bed.labels(arn)
    assert labels[token] == [AWSCURRENT]
    assert sum(AWSPENDING in stages for stages in labels.values()) == 0


def _race_step(bed: Any, arn: str, step: Step, *, multi: bool) -> list[str]:
    user = bed.value(arn)["username"]
    fresh = bed.rotator()
    driver = bed.driver(fresh)
    token = driver.begin(arn)
    before = STEPS[: STEPS.index(step)]
    if before:
        driver.run(arn, token, before)
    pending_user = bed.value(arn, AWSPENDING)["username"] if before else user
    gate = Gate()
    operation = _API_GATE.get(step)
    login_as = _login_gate(step, multi=multi, user=user, pending_user=pending_user)
    racers = [
        _racer(bed, i, gate, operation=operation, login_as=login_as, multi=multi) for i in range(2)
    ]
    event = bed.event(arn, step.value, token)
    result = race(*(lambda r=r: r.handle(event) for r in racers))
    assert result.errors == [], [str(e) for e in result.errors]
    _assert_safe_then_complete(bed, arn, token, bed.rotator())
    return sorted(map(str, result.outcomes))


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.value)
def test_single_user_step_raced_by_itself(bed: Bed, step: Step) -> None:
    arn, _, _ = bed.user_secret()
    outcomes = _race_step(bed, arn, step, multi=False)
    if step is Step.CREATE:
        assert outcomes == sorted([Outcome.DONE, Outcome.KEPT])
    if step is Step.FINISH:
        assert outcomes == sorted([Outcome.DONE, Outcome.ALREADY_CURRENT])


@pytest.mark.parametrize("step", STEPS, ids=lambda s: s.value)
def test_multi_user_step_raced_by_itself(multi: MultiBed, step: Step) -> None:
    arn, _, _ = multi.app()
    # Twice: the first rotation creates the clone, the second changes the owner back.
    for _ in range(2):
        outcomes = _race_step(multi, arn, step, multi=True)
        if step is Step.CREATE:
            assert outcomes == sorted([Outcome.DONE, Outcome.KEPT])
        if step is Step.FINISH:
            assert outcomes == sorted([Outcome.DONE, Outcome.ALREADY_CURRENT])


def _create_raced_by_set(bed: Any, arn: str, *, multi: bool) -> None:
    """An operator invokes setSecret while createSecret runs: setSecret either finds no
    value yet and fails changing nothing, or uses the value createSecret stored."""
    token = bed.driver(bed.rotator()).begin(arn)
    gate = Gate()
    creator = _racer(bed, 0, gate, operation="PutSecretValue", login_as=None, multi=multi)
    setter = _racer(bed, 1, gate, operation="GetSecretValue", login_as=None, multi=multi)
    result = race(
        lambda: creator.handle(bed.event(arn, "createSecret", token)),
        lambda: setter.handle(bed.event(arn, "setSecret", token)),
    )
    assert result.outcomes[0] == Outcome.DONE
    for error in result.errors:
        assert isinstance(error, StagingError)
        assert "has no value yet" in str(error)
    _assert_safe_then_complete(bed, arn, token, bed.rotator())


def test_single_user_create_secret_raced_by_set_secret(bed: Bed) -> None:
    _create_raced_by_set(bed, bed.user_secret()[0], multi=False)


def test_multi_user_create_secret_raced_by_set_secret(multi: MultiBed) -> None:
    _create_raced_by_set(multi, multi.app()[0], multi=True)


def test_a_clone_created_between_check_and_create_is_already_done(multi: MultiBed) -> None:
    """Another tool (not holding our lock) creates the clone, as a member of the user, just
    before our CREATE ROLE: DuplicateObject (42710) means "already done"; the next attempt
    finds the clone in the pair and sets its password."""
    arn, user, _ = multi.app()
    clone = f"{user}_clone"

    class Interfering(psycopg.Connection[Any]):
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            text = query.as_string(self) if hasattr(query, "as_string") else str(query)
            if text.startswith("CREATE ROLE"):
                with multi.master_connect() as other:
                    other.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(clone)))
                    other.execute(
                        sql.SQL("GRANT {} TO {}").format(
                            sql.Identifier(user), sql.Identifier(clone)
                        )
                    )
            return super().execute(query, *args, **kwargs)

    def connect(**kwargs: Any) -> psycopg.Connection[Any]:
        if kwargs["user"] == MASTER:
            return Interfering.connect(**kwargs)
        return psycopg.connect(**kwargs)

    rotator = Rotator(
        PostgresMultiUser(PostgresConnector(connect=connect)), SecretStore(multi.handler_client)
    )
    run = multi.driver(rotator).rotate(arn)

    assert run.succeeded
    assert multi.value(arn)["username"] == clone
    assert multi.logs_in(multi.value(arn))
