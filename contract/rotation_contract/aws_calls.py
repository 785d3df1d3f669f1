"""What every AWS call of this project carries and how long it may take, on both sides.

Shared by the rotation function (:mod:`rotation.clients`) and the application client
(:mod:`rotation_client`): each imports this module, neither imports the other's side.

- The user agent: each side's calls carry ``<distribution>/<version>`` in botocore's
  ``user_agent_extra`` (as aws-secretsmanager-caching does with ``AwsSecretCache/<version>``),
  so CloudTrail tells the rotation function's reads from an application's.
- The time: one attempt's connect and read timeouts are the configured ones, each cut to
  the time its caller has left, so that a call against an endpoint that accepts
  connections and never answers ends when the caller's time does.
"""

from __future__ import annotations

import functools

__all__ = [
    "CLIENT_DISTRIBUTION",
    "ROTATION_DISTRIBUTION",
    "attempt_timeouts",
    "running_version",
    "user_agent_extra",
]

# The distributions, as their pyproject.toml files name them.
ROTATION_DISTRIBUTION = "pg-secrets-rotation"
CLIENT_DISTRIBUTION = "pg-secrets-rotation-client"


@functools.cache
def user_agent_extra(distribution: str) -> str:
    """``<distribution>/<version>`` for botocore's ``user_agent_extra``: the side's name
    and its installed version (:func:`running_version`)."""
    return f"{distribution}/{running_version(distribution)}"


def running_version(distribution: str) -> str:
    """The installed version of ``distribution`` (one of this repository's: they share one
    version), or ``unknown`` when it is not installed (the files run from a checkout)."""
    # Deferred: importlib.metadata costs the Lambda's cold start, and only the first client
    # construction asks (user_agent_extra is cached).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"


def attempt_timeouts(configured: tuple[float, float], remaining_s: float) -> tuple[float, float]:
    """The (connect, read) timeouts of one attempt: the configured ones, each cut to the
    time the caller has left."""
    connect, read = configured
    return min(connect, remaining_s), min(read, remaining_s)
