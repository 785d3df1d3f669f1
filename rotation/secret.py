"""What Secrets Manager holds: a secret's description and its versions' values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from rotation.errors import SecretFormatError
from rotation_contract.secrets_manager import AWSCURRENT, AWSPENDING, AWSPREVIOUS

__all__ = [
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "MAX_SECRET_STRING_BYTES",
    "SecretDescription",
    "SecretVersion",
    "dump_secret_value",
]

# Secrets Manager's limit for a SecretString, in bytes.
MAX_SECRET_STRING_BYTES = 65536


@dataclass(frozen=True)
class SecretDescription:
    """The parts of ``DescribeSecret`` a rotation needs. Holds no secret value."""

    arn: str
    name: str
    rotation_enabled: bool
    versions: Mapping[str, tuple[str, ...]]
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_api(cls, response: Mapping[str, Any]) -> SecretDescription:
        versions = {
            version_id: tuple(stages)
            for version_id, stages in response.get("VersionIdsToStages", {}).items()
        }
        tags = {tag["Key"]: tag["Value"] for tag in response.get("Tags", [])}
        return cls(
            arn=response["ARN"],
            name=response["Name"],
            # moto has no RotationEnabled key until rotation is configured; AWS has it
            # whenever rotation was ever set up. Absent means not enabled.
            rotation_enabled=bool(response.get("RotationEnabled", False)),
            versions=MappingProxyType(versions),
            tags=MappingProxyType(tags),
        )

    def version_with(self, stage: str) -> str | None:
        """The id of the version carrying ``stage``; a label is on at most one version."""
        for version_id, stages in self.versions.items():
            if stage in stages:
                return version_id
        return None


@dataclass(frozen=True)
class SecretVersion:
    """One version of a secret. ``secret_string`` is kept out of ``repr`` on purpose."""

    arn: str
    version_id: str
    secret_string: str = field(repr=False)
    label: str | None = None

    def json(self) -> dict[str, Any]:
        """The value as a JSON object.

        Raises
        ------
        SecretFormatError
            When the value is not JSON or not an object. The message never quotes it.
        """
        what = f"the {self.label} version" if self.label else f"version {self.version_id}"
        try:
            value = json.loads(self.secret_string)
        except ValueError as exc:
            # The decoder's message quotes the offending text: keep it out.
            raise SecretFormatError(
                f"{what} is not valid JSON (error at position {getattr(exc, 'pos', '?')})"
            ) from None
        if not isinstance(value, dict):
            raise SecretFormatError(f"{what} must be a JSON object, got {type(value).__name__}")
        return value


def dump_secret_value(value: Mapping[str, Any]) -> str:
    """A secret's JSON value as the SecretString to store.

    As UTF-8, the way Secrets Manager stores it: ``\\u`` escapes would grow each non-ASCII
    character to up to 12 bytes and push a secret near the limit over it. Without spaces
    only if the usual form does not fit (a compact original at the limit).

    Raises
    ------
    SecretFormatError
        When even the compact form is over Secrets Manager's limit; nothing is written then.
    """
    size = 0
    for separators in ((", ", ": "), (",", ":")):
        secret_string = json.dumps(dict(value), ensure_ascii=False, separators=separators)
        # surrogatepass: a lone surrogate (a "\ud800" escape in the original) counts too.
        size = len(secret_string.encode("utf-8", "surrogatepass"))
        if size <= MAX_SECRET_STRING_BYTES:
            return secret_string
    raise SecretFormatError(
        f"the new version would be {size} bytes, over Secrets Manager's limit of "
        f"{MAX_SECRET_STRING_BYTES} bytes for a secret value; nothing was written. Make the "
        "secret smaller (remove keys the application does not need) or lower PASSWORD_LENGTH"
    )
