"""The documentation's Python examples run: each client stack against the test bed's
PostgreSQL and moto's Secrets Manager, before and after a real rotation; the example
strategy through the conformance check and through its Lambda handler."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings
from django.db import connections

from examples.client import async_pool, connect, django_settings, pool, sqlalchemy_engine
from examples.extend import conformance, file_acl, timing_layer
from rotation import AWSCURRENT, LocalRotation, Outcome, SecretStore
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def _rotate(bed: Bed, arn: str) -> None:
    assert bed.driver(bed.rotator()).rotate(arn).succeeded


def test_connect(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    assert connect.current_user(arn) == user
    _rotate(bed, arn)
    assert connect.current_user(arn) == user


def test_pool(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    with pool.open_pool(arn) as opened:
        assert pool.current_user(opened) == user
        _rotate(bed, arn)
        opened.drain()  # PostgreSQL checks a password at login only: make the pool log in
        assert pool.current_user(opened) == user


def test_asyncio(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    assert asyncio.run(async_pool.current_user(arn)) == user
    _rotate(bed, arn)
    assert asyncio.run(async_pool.current_user(arn)) == user
    assert asyncio.run(async_pool.with_a_pool(arn)) == 1


def test_sqlalchemy(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    engine = sqlalchemy_engine.make_engine(arn)
    try:
        assert sqlalchemy_engine.current_user(engine) == user
        _rotate(bed, arn)
        engine.dispose()  # new logins after the rotation
        assert sqlalchemy_engine.current_user(engine) == user
    finally:
        engine.dispose()

    async def run_async() -> str:
        async_engine = sqlalchemy_engine.make_async_engine(arn)
        try:
            return await sqlalchemy_engine.current_user_async(async_engine)
        finally:
            await async_engine.dispose()

    assert asyncio.run(run_async()) == user


def test_django(bed: Bed) -> None:
    arn, user, _ = bed.user_secret()
    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.dummy"}},
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
    database: dict[str, Any] = json.loads(json.dumps(django_settings.DATABASES["default"]))
    assert database["OPTIONS"]["secret_id"] == "myapp/prod/db"
    database["OPTIONS"]["secret_id"] = arn
    alias = f"docs_example_{user}"
    settings.DATABASES[alias] = database
    connections.configure_settings(settings.DATABASES)
    try:
        for rotate in (False, True):
            if rotate:
                _rotate(bed, arn)
                connections[alias].close()  # a new request logs in anew
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT current_user")
                assert cursor.fetchone() == (user,)
    finally:
        connections[alias].close()


def _acl_secret(bed: Bed, tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "acl.json"
    acl = file_acl.FileAcl(str(path))
    path.write_text(json.dumps({"users": {}}))
    acl.set_password("app", "first-password")
    value = {
        "engine": "file-acl",
        "path": str(path),
        "username": "app",
        "password": "first-password",
    }
    return bed.secret(value), path


def test_the_example_strategy_passes_the_conformance_check(bed: Bed, tmp_path: Path) -> None:
    arn, _ = _acl_secret(bed, tmp_path)
    passed = conformance.check(bed.sm, arn)
    assert "testSecret refuses a pending credential that does not log in" in passed
    assert "the replaced credential is refused" in passed


def test_the_example_lambda_handler_rotates(bed: Bed, tmp_path: Path) -> None:
    arn, path = _acl_secret(bed, tmp_path)
    run = LocalRotation(bed.sm, file_acl.lambda_handler).rotate(arn)
    assert run.succeeded
    current = bed.value(arn, AWSCURRENT)
    assert current["password"] != "first-password"
    assert file_acl.logs_in(current)
    assert not file_acl.FileAcl(str(path)).logs_in("app", "first-password")


def test_the_example_layer_sees_every_step(bed: Bed, tmp_path: Path) -> None:
    arn, _ = _acl_secret(bed, tmp_path)
    timer = timing_layer.StepTimer()
    rotator = timing_layer.timed_rotator(
        file_acl.FileAclStrategy(), SecretStore(bed.handler_client), timer
    )
    assert LocalRotation(bed.sm, rotator.handle).rotate(arn).succeeded
    assert [(step, outcome) for step, outcome, _ in timer.seen] == [
        (step, Outcome.DONE) for step in ("createSecret", "setSecret", "testSecret", "finishSecret")
    ]
