"""The boto3 client the framework uses, built once per container."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rotation.config import secrets_manager_endpoint

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["secrets_manager_client"]


def secrets_manager_client(
    endpoint_url: str | None = None, *, retries: bool = False
) -> SecretsManagerClient:
    """A ``secretsmanager`` client for ``endpoint_url``, else ``SECRETS_MANAGER_ENDPOINT``,
    else boto3's own resolution (``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL``,
    the regional endpoint).

    botocore's own retries are off by default: the rotation store retries throttling with
    tenacity, bounded by the step's deadline, and two layers of retries would multiply each
    other. Applications (:mod:`rotation.client`) ask for botocore's standard retries.
    """
    # botocore directly, not boto3: the same client and configuration chain (credentials,
    # region, AWS_ENDPOINT_URL*), without importing boto3 and s3transfer (~50 ms of cold
    # start). Deferred to the first invocation.
    import botocore.session  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    config = Config(
        retries={"mode": "standard", "max_attempts": 3 if retries else 1},
        connect_timeout=5,
        read_timeout=15,
    )
    client = botocore.session.get_session().create_client(
        "secretsmanager",
        endpoint_url=endpoint_url or secrets_manager_endpoint(),
        config=config,
    )
    return cast("SecretsManagerClient", client)
