"""Proof before promotion: finishSecret moves AWSCURRENT only to a version whose password
has logged in for this token, in testSecret (in this container) or in finishSecret itself.

Plays the out-of-order or manual invoke (createSecret, then finishSecret), the cold
container (testSecret in one, finishSecret in another) and the warm one (the four steps back
to back, which must cost no extra login), for both strategies.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from rotation import AWSCURRENT, AWSPENDING, Outcome, Rotator, Step
from rotation_contract.pg.errors import AuthenticationError
from tests.fix_multi import MultiBed
from tests.fix_postgres import admin_connect
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

RULE = "proof before promotion"


def _verifiers(bed: Any) -> dict[str, str | None]:
    """Every role's stored password verifier: what "the database is unchanged" means."""
    with admin_connect(bed.pg) as conn:
        rows = conn.execute("SELECT rolname, rolpassword FROM pg_authid").fetchall()
    return {name: verifier for name, verifier in rows}


@pytest.fixture(params=["single", "multi"])
def any_bed(request: pytest.FixtureRequest) -> Any:
    """Each strategy's bed: one secret per test, made by ``_secret``."""
    return request.getfixturevalue("bed" if request.param == "single" else "multi_tls")


def _secret(bed: Any) -> str:
    if isinstance(bed, MultiBed):
        return bed.app()[0]
    assert isinstance(bed, Bed)
    return bed.user_secret()[0]


@pytest.mark.parametrize("container", ["same", "new"])
def test_finish_right_after_create_is_refused_and_changes_nothing(
    any_bed: Any, container: str
) -> None:
    arn = _secret(any_bed)
    rotator, token = any_bed.begin_and_create(arn)
    labels, verifiers = any_bed.labels(arn), _verifiers(any_bed)

    finisher = rotator if container == "same" else any_bed.rotator()
    with pytest.raises(AuthenticationError) as caught:
        finisher.handle(any_bed.event(arn, "finishSecret", token))

    message = str(caught.value)
    assert RULE in message
    assert "finishSecret" in message
    assert "AWSCURRENT only to a version whose password has logged in" in message
    assert "setSecret and testSecret" in message  # the fix
    assert any_bed.labels(arn) == labels
    assert _verifiers(any_bed) == verifiers
    assert any_bed.logs_in(any_bed.value(arn, AWSCURRENT))
    # The rotation is still resumable: the four steps with the same token complete it.
    assert any_bed.driver(any_bed.rotator()).run(arn, token).succeeded
    assert any_bed.labels(arn)[token] == [AWSCURRENT]
    assert AWSCURRENT in any_bed.labelled_logins(arn)


def test_finish_in_a_new_container_proves_with_one_login(any_bed: Any) -> None:
    arn = _secret(any_bed)
    rotator, token = any_bed.begin_and_create(arn)
    any_bed.driver(rotator).run(arn, token, [Step.SET, Step.TEST])
    pending_user = any_bed.value(arn, AWSPENDING)["username"]
    any_bed.connections.reset()

    assert any_bed.rotator().handle(any_bed.event(arn, "finishSecret", token)) == Outcome.DONE

    assert any_bed.connections.by_user == {pending_user: 1}
    assert sorted(any_bed.labels(arn)[token]) == [AWSCURRENT, AWSPENDING]
    assert any_bed.logs_in(any_bed.value(arn, AWSCURRENT))


def test_a_warm_container_finishes_without_a_login(any_bed: Any) -> None:
    """Secrets Manager's own order, one container: testSecret's login is the proof."""
    arn = _secret(any_bed)
    rotator, token = any_bed.begin_and_create(arn)
    any_bed.driver(rotator).run(arn, token, [Step.SET, Step.TEST])
    any_bed.connections.reset()

    assert rotator.handle(any_bed.event(arn, "finishSecret", token)) == Outcome.DONE

    assert any_bed.connections.total == 0


def test_a_proof_from_a_failed_finish_is_kept_for_its_re_run(bed: Bed) -> None:
    """finishSecret proved, then moving AWSCURRENT failed: its re-run needs no new login."""
    arn, user, _ = bed.user_secret()
    rotator, token = bed.begin_and_create(arn)
    bed.driver(rotator).run(arn, token, [Step.SET])
    cold = bed.rotator()
    denied = _DenyOnce(bed.handler_client, "UpdateSecretVersionStage")
    with pytest.raises(Exception, match="AccessDenied"):
        cold.handle(bed.event(arn, "finishSecret", token))
    assert denied.fired
    assert bed.connections.by_user == {user: 2}  # setSecret's, and finishSecret's proof
    bed.connections.reset()

    assert cold.handle(bed.event(arn, "finishSecret", token)) == Outcome.DONE
    assert bed.connections.total == 0


def test_an_old_proof_is_proved_again(bed: Bed) -> None:
    """A proof is a fact about the database at one moment; an old one is checked again
    (a manual finishSecret long after testSecret, in a container that stayed warm)."""
    now = [1000.0]
    arn, user, _ = bed.user_secret()
    rotator = Rotator(bed.rotator().strategy, bed.rotator().store, clock=lambda: now[0])
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET, Step.TEST])
    bed.connections.reset()
    now[0] += 24 * 3600.0

    assert rotator.handle(bed.event(arn, "finishSecret", token)) == Outcome.DONE
    assert bed.connections.by_user == {user: 1}


def test_a_proof_is_for_one_secret_and_token(bed: Bed) -> None:
    """testSecret of one rotation proves nothing about another secret's pending version."""
    first, _, _ = bed.user_secret()
    second, _, _ = bed.user_secret()
    rotator, token = bed.begin_and_create(first)
    bed.driver(rotator).run(first, token, [Step.SET, Step.TEST])
    driver = bed.driver(rotator)
    other = driver.begin(second)
    driver.run(second, other, [Step.CREATE])
    with pytest.raises(AuthenticationError, match=RULE):
        rotator.handle(bed.event(second, "finishSecret", other))
    assert AWSCURRENT not in bed.labels(second)[other]


class _DenyOnce:
    """Answer the next call of ``operation`` with AccessDeniedException, once."""

    def __init__(self, client: Any, operation: str) -> None:
        self.fired = False
        self.operation = operation
        client.meta.events.register(f"before-call.secrets-manager.{operation}", self._hook)

    def _hook(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.fired:
            return None
        self.fired = True
        parsed = {
            "Error": {"Code": "AccessDeniedException", "Message": "denied by the test"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://secretsmanager.local", 400, HTTPHeaders(), None), parsed
