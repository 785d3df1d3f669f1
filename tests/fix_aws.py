"""moto's Secrets Manager server over HTTP, and clients whose calls are counted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from testbed.moto_server import MotoEndpoint, running_moto


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[MotoEndpoint]:
    """One moto server for the session; boto3 clients find it through AWS_ENDPOINT_URL."""
    with running_moto(set_environment=True) as endpoint:
        yield endpoint


class ApiCalls:
    """Records every Secrets Manager operation a client makes."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.secrets-manager.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def reset(self) -> None:
        self.names.clear()

    def __len__(self) -> int:
        return len(self.names)


def new_client() -> Any:
    return boto3.client("secretsmanager")


@pytest.fixture
def sm(moto_endpoint: MotoEndpoint) -> Any:
    """A plain client for test set-up and assertions (its calls are not counted)."""
    return new_client()
