"""moto's server on a free loopback port, for tests and the demo: Secrets Manager, RDS, and
EventBridge (rotation events; the tests capture them with a rule targeting an SQS queue)."""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["MotoEndpoint", "running_moto", "secrets_manager_at"]

REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from looking for real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True)
class MotoEndpoint:
    url: str

    def reset(self) -> None:
        """Forget every secret and database (moto's reset API)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310  # our own loopback server
            pass

    def environment(self) -> dict[str, str]:
        """Environment variables that point boto3 at this server."""
        return {"AWS_ENDPOINT_URL": self.url, **FAKE_CREDENTIALS}


def secrets_manager_at(url: str) -> Any:
    """A Secrets Manager client for the emulator at ``url``, with its dummy credentials (none
    are looked for in the environment or a profile)."""
    import boto3

    return boto3.client(
        "secretsmanager",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@contextlib.contextmanager
def running_moto(set_environment: bool = False) -> Iterator[MotoEndpoint]:
    """Start moto's server on 127.0.0.1 (never 0.0.0.0) at a free port; stop it on exit.

    With ``set_environment``, boto3 clients created inside the block talk to it.
    """
    from moto.server import ThreadedMotoServer  # optional dependency

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = MotoEndpoint(url=f"http://{host}:{port}")
    saved = {key: os.environ.get(key) for key in endpoint.environment()}
    if set_environment:
        os.environ.update(endpoint.environment())
    try:
        yield endpoint
    finally:
        if set_environment:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        server.stop()
