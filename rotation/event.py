"""The rotation event Secrets Manager sends, parsed eagerly at the boundary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rotation.errors import EventError

__all__ = ["RotationEvent", "Step", "parse_event"]


class Step(StrEnum):
    """The four rotation steps, in the order Secrets Manager invokes them."""

    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"


@dataclass(frozen=True)
class RotationEvent:
    """One invocation of the rotation function.

    Field names follow Powertools' ``SecretsManagerEvent`` so they feel familiar.
    """

    step: Step
    secret_id: str
    client_request_token: str
    rotation_token: str | None = None


def _required_string(event: Mapping[str, Any], key: str, secret_id: str | None) -> str:
    if key not in event:
        raise EventError(f"the event has no {key!r} key", secret_id=secret_id)
    value = event[key]
    if not isinstance(value, str) or not value.strip():
        raise EventError(
            f"the event's {key!r} must be a non-empty string, got {type(value).__name__}",
            secret_id=secret_id,
        )
    return value


def parse_event(event: object) -> RotationEvent:
    """Validate a raw event and return it as a :class:`RotationEvent`.

    Raises
    ------
    EventError
        When the event is not an object, a required key is missing or not a non-empty
        string, the step is unknown, or ``RotationToken`` is present but not a string.
        The message names the key; nothing has been touched yet.

    Example
    -------
    >>> parse_event({"Step": "createSecret", "SecretId": "s", "ClientRequestToken": "t"}).step
    <Step.CREATE: 'createSecret'>
    """
    if not isinstance(event, Mapping):
        raise EventError(f"the event must be a JSON object, got {type(event).__name__}")
    raw_secret = event.get("SecretId")
    secret_id = raw_secret if isinstance(raw_secret, str) and raw_secret else None
    secret_id = _required_string(event, "SecretId", secret_id)
    token = _required_string(event, "ClientRequestToken", secret_id)
    step_name = _required_string(event, "Step", secret_id)
    try:
        step = Step(step_name)
    except ValueError as exc:
        known = ", ".join(s.value for s in Step)
        raise EventError(
            f"unknown step {step_name!r}; expected one of {known}", secret_id=secret_id, token=token
        ) from exc
    rotation_token = event.get("RotationToken")
    if rotation_token is not None and not isinstance(rotation_token, str):
        raise EventError(
            "the event's 'RotationToken' must be a string when present",
            secret_id=secret_id,
            step=step.value,
            token=token,
        )
    return RotationEvent(
        step=step,
        secret_id=secret_id,
        client_request_token=token,
        rotation_token=rotation_token or None,
    )
