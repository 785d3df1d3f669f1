"""Where a command talks to Secrets Manager: its client, and what a failed call means (the
commands it prints as fixes: :mod:`rotation_tools.remedies`)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["aws_problem", "secrets_manager"]


def secrets_manager(args: argparse.Namespace) -> Any:
    """The command's Secrets Manager client (``--endpoint-url``, ``--region``, ``--profile``),
    kept on ``args`` for :func:`aws_problem`."""
    import boto3  # keeps `rotation --help` fast
    from botocore.config import Config

    from rotation.clients import CONNECT_TIMEOUT_S, READ_TIMEOUT_S
    from rotation.config import secrets_manager_endpoint

    # The handlers' timeouts: an endpoint that does not answer is an error within seconds,
    # not botocore's default minute per attempt.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    args.sm_client = session.client(
        "secretsmanager",
        endpoint_url=args.endpoint_url or secrets_manager_endpoint(),
        config=config,
    )
    return args.sm_client


def aws_problem(
    args: argparse.Namespace,
    exc: BaseException,
    operation: str | None = None,
    *,
    secret_id: str | None = None,
) -> Any:
    """The classified Secrets Manager failure behind ``exc`` (see aws_problems), or None."""
    from rotation_tools.aws_problems import explain

    client = getattr(args, "sm_client", None)
    return explain(
        exc,
        secret_id=secret_id or getattr(args, "secret", None) or "the secret",
        operation=operation,
        endpoint=args.endpoint_url or (client.meta.endpoint_url if client else None),
        region=client.meta.region_name if client else args.region,
    )
