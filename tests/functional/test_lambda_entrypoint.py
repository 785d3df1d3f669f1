"""The contract's entrypoint, configured only through the environment, as Lambda runs it."""

from __future__ import annotations

import importlib

import pytest

from rotation import AWSCURRENT, LocalContext, LocalRotation
from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def test_lambda_handler_rotates_with_environment_configuration(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module("handlers.postgres_single_user")
    module.entrypoint.reset()
    monkeypatch.setenv("SECRETS_MANAGER_ENDPOINT", bed.sm.meta.endpoint_url)
    arn, _, _ = bed.user_secret()
    driver = LocalRotation(bed.sm, module.lambda_handler)
    run = driver.rotate(arn)
    assert run.succeeded
    assert bed.labels(arn)[run.token] == [AWSCURRENT]
    assert bed.logs_in(bed.value(arn))
    # The rotator (client, cache) is built once and reused by warm invocations.
    built = module.entrypoint.rotator
    driver.rotate(arn)
    assert module.entrypoint.rotator is built
    module.entrypoint.reset()


def test_lambda_handler_accepts_a_secret_name(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("handlers.postgres_single_user")
    module.entrypoint.reset()
    user, password = bed.make_user()
    name = f"by-name/{user}"
    bed.secret(bed.pg.secret_value(user, password), name=name)
    token = LocalRotation(bed.sm, module.lambda_handler).begin(name)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        module.lambda_handler(bed.event(name, step, token), LocalContext())
    assert bed.logs_in(bed.value(name))


def test_multi_user_lambda_handler_rotates(multi: MultiBed) -> None:
    module = importlib.import_module("handlers.postgres_multi_user")
    module.entrypoint.reset()
    arn, user, _ = multi.app()
    run = LocalRotation(multi.sm, module.lambda_handler).rotate(arn)
    assert run.succeeded
    assert multi.value(arn)["username"] == f"{user}_clone"
    assert multi.logs_in(multi.value(arn))
    module.entrypoint.reset()
