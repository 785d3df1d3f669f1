"""Checks of an ECS task definition's ``secrets`` entries (``rotation check-task-def``).

ECS injects ``valueFrom`` references as environment variables when a task starts. Two
mistakes fail silently there: a misplaced colon in the
``arn:aws:secretsmanager:region:account:secret:name-AbCdEf:json-key:version-stage:version-id``
form, and a JSON key that the secret does not have. Either becomes an empty string in the
container. This reports them instead, reading each secret as ECS would.

Environment-variable injection also means a running task keeps the value it started with:
after a rotation it needs a new deployment (or the application reads the secret itself,
e.g. with :mod:`rotation_client`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rotation_contract.aws_errors import error_code

__all__ = ["Finding", "SecretReference", "check_task_definition", "parse_value_from"]

# arn aws secretsmanager region account secret name
_BASE_PARTS = 7
# ... json-key version-stage version-id
_FULL_PARTS = 10


@dataclass(frozen=True)
class SecretReference:
    arn: str
    json_key: str | None = None
    version_stage: str | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class Finding:
    container: str
    name: str
    value_from: str
    ok: bool | None  # None: not a Secrets Manager reference, not checked
    message: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_value_from(value_from: str) -> SecretReference | None:
    """Parse a Secrets Manager ``valueFrom``; None for anything else (SSM parameters).

    Raises
    ------
    ValueError
        A Secrets Manager ARN with a colon count ECS does not accept, or both a version
        stage and a version id.
    """
    parts = value_from.split(":")
    if len(parts) < 3 or parts[0] != "arn" or parts[2] != "secretsmanager":
        return None
    if len(parts) not in (_BASE_PARTS, _FULL_PARTS) or parts[5] != "secret":
        raise ValueError(
            f"{len(parts) - 1} colons: ECS wants 6 (the secret's ARN) or 9 (ARN:json-key:"
            "version-stage:version-id, empty fields kept, e.g. 'ARN:password::')"
        )
    arn = ":".join(parts[:_BASE_PARTS])
    if len(parts) == _BASE_PARTS:
        return SecretReference(arn)
    key, stage, version = (p or None for p in parts[_BASE_PARTS:])
    if stage and version:
        raise ValueError("both a version stage and a version id: ECS takes one of them")
    return SecretReference(arn, key, stage, version)


def _containers(task_definition: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    document = task_definition.get("taskDefinition", task_definition)
    yield from document.get("containerDefinitions", [])


def _check(client: Any, reference: SecretReference) -> tuple[bool, str]:
    kwargs: dict[str, str] = {"SecretId": reference.arn}
    if reference.version_id:
        kwargs["VersionId"] = reference.version_id
    else:
        kwargs["VersionStage"] = reference.version_stage or "AWSCURRENT"
    try:
        value = client.get_secret_value(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        code = error_code(exc, default=type(exc).__name__)
        return False, f"cannot read it ({code}); the task would fail to start or get nothing"
    if reference.json_key is None:
        return True, "readable"
    try:
        document = json.loads(value.get("SecretString", ""))
    except ValueError:
        return False, f"the secret is not JSON, so key {reference.json_key!r} is empty in ECS"
    if not isinstance(document, dict) or reference.json_key not in document:
        keys = ", ".join(sorted(document)) if isinstance(document, dict) else "none"
        return False, (
            f"the secret has no key {reference.json_key!r} (it has: {keys}); ECS would inject "
            "an empty string"
        )
    return True, f"key {reference.json_key!r} present"


def check_task_definition(task_definition: Mapping[str, Any], client: Any) -> list[Finding]:
    """One finding per ``secrets`` entry of every container. Never includes a value."""
    findings = []
    for container in _containers(task_definition):
        for entry in container.get("secrets", []):
            name, value_from = entry.get("name", "?"), entry.get("valueFrom", "")
            where = str(container.get("name", "?"))
            try:
                reference = parse_value_from(value_from)
            except ValueError as exc:
                findings.append(Finding(where, name, value_from, False, str(exc)))
                continue
            if reference is None:
                message = "not a Secrets Manager reference (SSM parameter?); not checked"
                findings.append(Finding(where, name, value_from, None, message))
                continue
            ok, message = _check(client, reference)
            findings.append(Finding(where, name, value_from, ok, message))
    return findings
