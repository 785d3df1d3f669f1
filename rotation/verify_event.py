"""The verification event: a scheduled check that stored credentials still log in.

Distinct from Secrets Manager's rotation events (which have ``Step``, ``SecretId`` and
``ClientRequestToken``): it has an ``Action`` and a list of secrets, and nothing else is
required::

    {"Action": "VerifyCredentials", "SecretIds": ["arn:aws:secretsmanager:...:secret:app-AbCdEf"]}

An event is a verification event when it has an ``Action`` key; then it must be exactly
this shape. An event without one is parsed as a rotation event (:func:`rotation.event.
parse_event`), so one that has neither shape is still an :class:`EventError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rotation.errors import EventError

__all__ = [
    "MAX_SECRETS",
    "VERIFY_ACTION",
    "VerifyEvent",
    "is_verify_event",
    "parse_verify_event",
]

VERIFY_ACTION = "VerifyCredentials"
# One invocation checks the secrets one after the other, each within its own few seconds:
# a longer list belongs in several schedules (or a longer function timeout).
MAX_SECRETS = 50
_ROTATION_KEYS = ("Step", "ClientRequestToken")


@dataclass(frozen=True)
class VerifyEvent:
    secret_ids: tuple[str, ...]


def is_verify_event(event: object) -> bool:
    """Whether ``event`` claims to be a verification event (it has an ``Action`` key)."""
    return isinstance(event, Mapping) and "Action" in event


def parse_verify_event(event: object) -> VerifyEvent:
    """Validate a verification event.

    Raises
    ------
    EventError
        When it is not an object, also carries a rotation event's keys, names another
        action, or ``SecretIds`` is not a list of 1 to :data:`MAX_SECRETS` non-empty strings.

    Example
    -------
    >>> parse_verify_event({"Action": "VerifyCredentials", "SecretIds": ["app"]}).secret_ids
    ('app',)
    """
    if not isinstance(event, Mapping):
        raise EventError(f"the event must be a JSON object, got {type(event).__name__}")
    mixed = [key for key in _ROTATION_KEYS if key in event]
    if mixed:
        raise EventError(
            f"the event has both 'Action' (a verification event) and {mixed[0]!r} (a rotation "
            "event); send one or the other"
        )
    action = event.get("Action")
    if action != VERIFY_ACTION:
        raise EventError(f"unknown Action {action!r}; expected {VERIFY_ACTION!r}")
    ids = event.get("SecretIds")
    if not isinstance(ids, list) or not ids:
        raise EventError("a VerifyCredentials event needs 'SecretIds': a non-empty list")
    if len(ids) > MAX_SECRETS:
        raise EventError(
            f"'SecretIds' names {len(ids)} secrets, more than {MAX_SECRETS} per invocation; "
            "split the list over several schedules"
        )
    for item in ids:
        if not isinstance(item, str) or not item.strip():
            raise EventError(
                f"'SecretIds' must hold secret names or ARNs, got {type(item).__name__} "
                f"{'(empty)' if isinstance(item, str) else ''}".strip()
            )
    return VerifyEvent(secret_ids=tuple(ids))
