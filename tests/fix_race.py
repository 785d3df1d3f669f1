"""Two containers running the same rotation step at the same moment.

Each racer gets its own Secrets Manager client and its own database connector (a new
container each). A barrier holds both racers at a chosen point (before an API operation, or
right after a database login) until both have reached it, so both have made their decisions
from the same state: the interleaving is forced, not left to timing.

Secrets Manager handles one request for a secret at a time and keeps the first value stored
for a version (a second ``PutSecretValue`` with the same token and another value fails with
``ResourceExistsException``). moto's server does neither reliably (its models take no lock,
and it overwrites a pending version's value: see TESTBED.md), so :class:`RacingClient`
serialises the racers' requests and refuses the second value as AWS does. Everything else
is moto's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from botocore.exceptions import ClientError

from tests.fix_rotation import ConnectionCounter

BARRIER_TIMEOUT_S = 60.0
_SERVER_LOCK = threading.Lock()


class Gate:
    """A barrier each racer passes once, at the first call that matches."""

    def __init__(self, parties: int = 2) -> None:
        self._barrier = threading.Barrier(parties, timeout=BARRIER_TIMEOUT_S)
        self._passed: set[int] = set()
        self._lock = threading.Lock()

    def wait_once(self, racer: int) -> None:
        with self._lock:
            if racer in self._passed:
                return
            self._passed.add(racer)
        self._barrier.wait()


class RacingClient:
    """A Secrets Manager client for one racer: waits at ``gate`` before ``operation``, and
    sends each request as AWS would handle it (one at a time; a token's value is kept)."""

    def __init__(
        self, client: Any, checker: Any, racer: int, gate: Gate | None, operation: str | None
    ) -> None:
        self._client = client
        self._checker = checker
        self._racer = racer
        self._gate = gate
        self._operation = operation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _send(self, operation: str, call: Callable[[], Any]) -> Any:
        if self._gate is not None and operation == self._operation:
            self._gate.wait_once(self._racer)
        with _SERVER_LOCK:
            return call()

    def describe_secret(self, **kwargs: Any) -> Any:
        return self._send("DescribeSecret", lambda: self._client.describe_secret(**kwargs))

    def get_secret_value(self, **kwargs: Any) -> Any:
        return self._send("GetSecretValue", lambda: self._client.get_secret_value(**kwargs))

    def update_secret_version_stage(self, **kwargs: Any) -> Any:
        return self._send(
            "UpdateSecretVersionStage",
            lambda: self._client.update_secret_version_stage(**kwargs),
        )

    def put_secret_value(self, **kwargs: Any) -> Any:
        def put() -> Any:
            self._refuse_a_second_value(kwargs)
            return self._client.put_secret_value(**kwargs)

        return self._send("PutSecretValue", put)

    def _refuse_a_second_value(self, kwargs: dict[str, Any]) -> None:
        try:
            stored = self._checker.get_secret_value(
                SecretId=kwargs["SecretId"], VersionId=kwargs["ClientRequestToken"]
            )
        except self._checker.exceptions.ResourceNotFoundException:
            return  # no value yet (the registered placeholder): the put goes through
        if stored.get("SecretString") != kwargs["SecretString"]:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ResourceExistsException",
                        "Message": "You can't modify an existing version, you can only "
                        "create a new version.",
                    }
                },
                "PutSecretValue",
            )


@dataclass
class GatedConnections(ConnectionCounter):
    """Counts connections and, for ``user``, waits at ``gate`` right after logging in."""

    racer: int = 0
    gate: Gate | None = None
    user: str | None = None
    host_map: bool = False
    by_user_extra: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    def __call__(self, **kwargs: Any) -> psycopg.Connection[Any]:
        if self.host_map and kwargs["host"].endswith(".rds.amazonaws.com"):
            kwargs = {**kwargs, "hostaddr": "127.0.0.1"}
        conn = super().__call__(**kwargs)
        if self.gate is not None and kwargs["user"] == self.user:
            self.gate.wait_once(self.racer)
        return conn


@dataclass
class RaceResult:
    outcomes: list[object]
    errors: list[BaseException]


def race(*calls: Callable[[], object]) -> RaceResult:
    """Run ``calls`` on threads at once; collect what each returned or raised."""
    outcomes: list[object] = [None] * len(calls)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            outcomes[index] = calls[index]()
        except BaseException as exc:  # reported to the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=BARRIER_TIMEOUT_S * 2)
        assert not thread.is_alive(), "a racer hung"
    return RaceResult(outcomes, errors)
