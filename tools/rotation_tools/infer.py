"""How a secret is rotated, read from what it shows, for ``rotate``, ``plan``, ``doctor`` and
``verify`` (``status`` shows the same: :mod:`rotation_tools.status`).

Evidence, strongest first:

1. the rotation function's name (:func:`rotation_tools.fleet.recognise_strategy`);
2. the pair: AWSPREVIOUS, or a rotation in progress, names ``<user>_clone`` of AWSCURRENT's
   user (or the other way round): multi-user;
3. a rotation in progress that keeps the user: single-user;
4. no ``masterarn``: single-user (multi-user cannot run without one).

A ``masterarn`` and nothing else says nothing (single-user keeps one for repairs): the
command asks for ``--strategy``. ``--strategy`` overrides the inference, but not definite
evidence: ``rotate --strategy single-user`` on a secret whose AWSPREVIOUS is
``<user>_clone`` would silently end the multi-user guarantee (the clone keeps its old
password forever), so it is refused with the reason. Only usernames are read from the
values; nothing else is kept or shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS
from rotation_contract.aws_errors import error_code
from rotation_tools.fleet import recognise_strategy

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["CLONE_SUFFIX", "Evidence", "StrategyError", "infer_strategy", "resolve_strategy"]

CLONE_SUFFIX = "_clone"
STRATEGIES = ("single-user", "multi-user")


class StrategyError(Exception):
    """The strategy cannot be inferred (a secret with a ``masterarn`` and no pair yet), or
    ``--strategy`` contradicts the evidence (e.g. single-user on a secret whose AWSPREVIOUS is
    the other user of its pair). The command exits 2 and changes nothing.

    Fix: pass the ``--strategy`` the message names; drop an override that contradicts the
    secret.
    """


@dataclass(frozen=True)
class Evidence:
    """What tells the strategy, and whether it is strong enough to refuse an override."""

    strategy: str | None
    reason: str
    definite: bool


def _value(client: SecretsManagerClient, arn: str, **version: str) -> dict[str, Any] | None:
    try:
        response = client.get_secret_value(SecretId=arn, **version)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    try:
        value = json.loads(response.get("SecretString", ""))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _paired(a: str | None, b: str | None) -> bool:
    return bool(a and b) and (a == f"{b}{CLONE_SUFFIX}" or b == f"{a}{CLONE_SUFFIX}")


def infer_strategy(client: SecretsManagerClient, secret_id: str) -> Evidence:
    """The strategy ``secret_id`` shows (see the module docstring)."""
    described = client.describe_secret(SecretId=secret_id)
    arn = described["ARN"]
    function = described.get("RotationLambdaARN")
    named = recognise_strategy(function)
    if named != "unknown":
        return Evidence(named, f"its rotation function {function} is {named}", True)
    current = _value(client, arn, VersionStage=AWSCURRENT) or {}
    user = current.get("username") if isinstance(current.get("username"), str) else None
    previous = _value(client, arn, VersionStage=AWSPREVIOUS) or {}
    if _paired(user, previous.get("username")):
        return Evidence(
            "multi-user",
            f"AWSPREVIOUS is {previous['username']}, the other user of {user}'s pair",
            True,
        )
    versions = described.get("VersionIdsToStages", {})
    pending_ids = [v for v, s in versions.items() if AWSPENDING in s and AWSCURRENT not in s]
    for version_id in pending_ids:
        pending = _value(client, arn, VersionId=version_id, VersionStage=AWSPENDING) or {}
        moved_to = pending.get("username")
        if _paired(user, moved_to):
            return Evidence("multi-user", f"the rotation in progress moves to {moved_to}", True)
        if moved_to is not None and moved_to == user:
            return Evidence("single-user", f"the rotation in progress keeps {user}", True)
    if "masterarn" not in current:
        return Evidence("single-user", "it has no masterarn, which multi-user needs", True)
    return Evidence(
        None,
        "it has a masterarn (multi-user needs one; single-user may keep one for repairs) "
        f"and no rotation has alternated {user or 'its user'} with {user or 'it'}"
        f"{CLONE_SUFFIX} yet",
        False,
    )


def resolve_strategy(client: SecretsManagerClient, secret_id: str, given: str | None) -> str:
    """``given`` when the evidence allows it, else the inferred strategy.

    Raises
    ------
    StrategyError
        Nothing tells and none was given (the message says which to pass), or ``given``
        contradicts definite evidence (the message says why that would do harm).
    """
    evidence = infer_strategy(client, secret_id)
    if given is None:
        if evidence.strategy is None:
            raise StrategyError(
                f"cannot tell how {secret_id} is rotated: {evidence.reason}. Pass --strategy "
                "multi-user if its rotation alternates the user and <user>_clone, else "
                "--strategy single-user"
            )
        return evidence.strategy
    if evidence.definite and evidence.strategy not in (None, given):
        harm = (
            "a single-user rotation would change only one user's password and leave the "
            "other user of the pair logging in with its old one, ending the multi-user "
            "guarantee"
            if given == "single-user"
            else "a multi-user rotation needs a masterarn and would create a second user"
        )
        raise StrategyError(
            f"--strategy {given} contradicts what {secret_id} shows: {evidence.reason}. "
            f"{harm[0].upper()}{harm[1:]}. Leave --strategy out (it is inferred as "
            f"{evidence.strategy}), or pass --strategy {evidence.strategy}"
        )
    return given


def strategy_for_command(
    client: SecretsManagerClient, secret_id: str, given: str | None, console: Any
) -> str | None:
    """:func:`resolve_strategy` for a command: None after printing why (exit 2, bad usage).

    A secret that cannot be described is left to the command, which says why in its own
    way (not found, access denied...): the strategy does not matter then."""
    from botocore.exceptions import BotoCoreError

    try:
        return resolve_strategy(client, secret_id, given)
    except StrategyError as exc:
        console.error(str(exc))
        console.result({"ok": False, "error": str(exc)})
        return None
    except (ClientError, BotoCoreError):
        return given or STRATEGIES[0]
