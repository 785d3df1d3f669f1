"""The rotation test bed: secrets in moto, users in PostgreSQL, counted handler clients."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest

from handlers.pg_connect import PostgresConnector
from handlers.single_user import PostgresSingleUser
from rotation import LocalRotation, Rotator, SecretStore, Step
from rotation.retry import RetryPolicy
from testbed.pgcluster import PostgresCluster
from tests.fix_aws import ApiCalls, new_client
from tests.fix_postgres import can_login


class SimulatedCrash(BaseException):
    """The container died here. A BaseException, so no ``except Exception`` swallows it."""


class ConnectionCounter:
    """A ``psycopg.connect`` stand-in that connects for real and counts the attempts."""

    def __init__(self) -> None:
        self.by_user: Counter[str] = Counter()

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        self.by_user[kwargs["user"]] += 1
        return psycopg.connect(**kwargs)

    @property
    def total(self) -> int:
        return sum(self.by_user.values())

    def reset(self) -> None:
        self.by_user.clear()


class SecretInspection:
    """What is true now, in Secrets Manager (``self.sm``) and the database (``self.pg``)."""

    pg: PostgresCluster
    sm: Any

    # Each bed builds its rotator and driver its own way; begin_and_create uses both.
    def rotator(self) -> Rotator:
        raise NotImplementedError

    def driver(self, rotator: Rotator) -> LocalRotation:
        raise NotImplementedError

    # -- what is true now -------------------------------------------------------------

    def labels(self, secret_id: str) -> dict[str, list[str]]:
        return dict(self.sm.describe_secret(SecretId=secret_id)["VersionIdsToStages"])

    def value(self, secret_id: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
        response = self.sm.get_secret_value(SecretId=secret_id, VersionStage=stage)
        return dict(json.loads(response["SecretString"]))

    def values_by_label(self, secret_id: str) -> dict[str, dict[str, Any]]:
        found = {}
        for stage in ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"):
            try:
                found[stage] = self.value(secret_id, stage)
            except self.sm.exceptions.ResourceNotFoundException:
                continue
        return found

    def logs_in(self, value: Mapping[str, Any]) -> bool:
        return can_login(self.pg, value["username"], value["password"])

    def labelled_logins(self, secret_id: str) -> list[str]:
        """The labels whose version logs in right now."""
        return [
            stage for stage, value in self.values_by_label(secret_id).items() if self.logs_in(value)
        ]

    def event(self, secret_id: str, step: str, token: str) -> dict[str, str]:
        return {"Step": step, "SecretId": secret_id, "ClientRequestToken": token}

    def begin_and_create(self, secret_id: str) -> tuple[Rotator, str]:
        """Start a rotation and run createSecret: the state setSecret starts from."""
        rotator = self.rotator()
        driver = self.driver(rotator)
        token = driver.begin(secret_id)
        driver.run(secret_id, token, [Step.CREATE])
        return rotator, token


@dataclass
class Bed(SecretInspection):
    pg: PostgresCluster
    sm: Any
    make_user: Callable[..., tuple[str, str]]
    calls: ApiCalls = field(init=False)
    connections: ConnectionCounter = field(default_factory=ConnectionCounter)
    handler_client: Any = field(init=False)

    def __post_init__(self) -> None:
        self.handler_client = new_client()
        self.calls = ApiCalls(self.handler_client)

    # -- set-up -----------------------------------------------------------------------

    def secret(self, value: dict[str, Any], name: str | None = None) -> str:
        """Create a secret holding ``value``; returns its ARN."""
        name = name or f"test/{secrets.token_hex(6)}"
        return str(self.sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])

    def user_secret(self, **extra: Any) -> tuple[str, str, str]:
        """A fresh database user and its secret (no ``ssl`` key: verify-full)."""
        user, password = self.make_user(extra.pop("username", None), extra.pop("password", None))
        value = self.pg.secret_value(user, password, **extra)
        return self.secret(value), user, password

    # -- what the handler runs with ---------------------------------------------------

    def connector(self, **kwargs: Any) -> PostgresConnector:
        return PostgresConnector(connect=self.connections, **kwargs)

    def rotator(self, strategy: Any = None, **store_kwargs: Any) -> Rotator:
        """A rotator as in a *new* container: a fresh cache, the counted client."""
        store = SecretStore(self.handler_client, **store_kwargs)
        return Rotator(strategy or PostgresSingleUser(self.connector()), store)

    def driver(self, rotator: Rotator) -> LocalRotation:
        # Driven with the uncounted client: begin/complete are Secrets Manager's own work.
        return LocalRotation(self.sm, rotator.handle)

    def fast_retries(self) -> RetryPolicy:
        return RetryPolicy(attempts=3, initial_wait_s=0.05, max_wait_s=0.2, jitter_s=0.05)


@pytest.fixture
def bed(pg: PostgresCluster, sm: Any, make_user: Callable[..., tuple[str, str]]) -> Bed:
    return Bed(pg=pg, sm=sm, make_user=make_user)
