"""What both sides know of Secrets Manager: the staging labels, the endpoint setting, and
how long one attempt of a call may take.

Each side reads its own environment (:mod:`rotation.config`, :mod:`rotation_client._config`)
and hands the mapping to :func:`endpoint_from`; the variable's name and its meaning are
defined once, here.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "CONNECT_TIMEOUT_S",
    "ENV_ENDPOINT",
    "READ_TIMEOUT_S",
    "endpoint_from",
]

# The staging labels Secrets Manager itself gives meaning to.
AWSCURRENT = "AWSCURRENT"
AWSPENDING = "AWSPENDING"
AWSPREVIOUS = "AWSPREVIOUS"

# One setting points both sides at the same Secrets Manager (a VPC endpoint, an emulator).
ENV_ENDPOINT = "SECRETS_MANAGER_ENDPOINT"

# Per attempt, before the caller's time cuts them: Secrets Manager (and RDS) answer in tens
# of milliseconds, so 5 s to connect and 15 s to answer already mean something is wrong.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0


def endpoint_from(env: Mapping[str, str]) -> str | None:
    """``SECRETS_MANAGER_ENDPOINT`` in ``env``, or None to let boto3 resolve the endpoint.

    boto3's own resolution includes ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and
    ``AWS_ENDPOINT_URL``, which is why an unset variable must not become a default here.
    """
    value = env.get(ENV_ENDPOINT, "").strip()
    return value or None
