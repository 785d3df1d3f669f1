"""The conformance check on the strategy of ``file_acl.py``: run it in your own tests,
against moto's Secrets Manager (or any) and a real instance of your engine."""

from __future__ import annotations

from typing import Any

from examples.extend.file_acl import FileAclStrategy, logs_in
from rotation.conformance import check_strategy


def check(client: Any, secret_arn: str) -> list[str]:
    """The names of the checks that passed; raises ConformanceError at the first that fails."""
    return check_strategy(FileAclStrategy, client=client, secret_id=secret_arn, logs_in=logs_in)
