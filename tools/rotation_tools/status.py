"""``rotation status``: a secret's versions, labels and rotation configuration, and a
plain-words diagnosis of a stuck rotation. Shows ids, labels and dates, never a value."""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS
from rotation_contract.aws_errors import error_code
from rotation_tools.remedies import Remedies

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["SecretStatus", "VersionRow", "collect_status"]


@dataclass(frozen=True)
class VersionRow:
    version_id: str
    stages: list[str]
    created: datetime.datetime | None
    has_value: bool | None = None


@dataclass
class SecretStatus:
    arn: str
    name: str
    rotation_enabled: bool
    lambda_arn: str | None
    schedule: str | None
    last_rotated: datetime.datetime | None
    next_rotation: datetime.datetime | None
    versions: list[VersionRow]
    diagnosis: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)
    stuck: bool = False
    # How it is rotated, when something tells (see _inferred_strategy); None: unknown.
    strategy: str | None = None
    # Who is logged in as each user of a multi-user pair (rotation_tools.pair_sessions).
    sessions: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _schedule(rules: dict[str, Any]) -> str | None:
    if not rules:
        return None
    parts = []
    if "ScheduleExpression" in rules:
        parts.append(str(rules["ScheduleExpression"]))
    elif "AutomaticallyAfterDays" in rules:
        parts.append(f"every {rules['AutomaticallyAfterDays']} days")
    if "Duration" in rules:
        parts.append(f"window {rules['Duration']}")
    return ", ".join(parts) or None


def _pending_value(client: SecretsManagerClient, arn: str, version_id: str) -> str | None:
    """The pending version's SecretString, or None when createSecret stored none yet."""
    try:
        response = client.get_secret_value(
            SecretId=arn, VersionId=version_id, VersionStage=AWSPENDING
        )
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return str(response.get("SecretString", ""))


def _username(secret_string: str) -> str | None:
    """The ``username`` of a secret value, or None when it has none that can be read."""
    try:
        value = json.loads(secret_string)
    except ValueError:
        return None
    username = value.get("username") if isinstance(value, dict) else None
    return username if isinstance(username, str) else None


def _inferred_strategy(
    client: SecretsManagerClient, arn: str, lambda_arn: str | None, pending: str | None
) -> str | None:
    """How the secret is rotated, when something tells: the rotation function's name, else
    the rotation in progress (multi-user moves to the other user of the pair, single-user
    keeps the user). Reads usernames only; nothing of a value is kept or shown."""
    from rotation_tools.fleet import recognise_strategy

    named = recognise_strategy(lambda_arn)
    if named != "unknown":
        return named
    if pending is None:
        return None
    current = client.get_secret_value(SecretId=arn, VersionStage=AWSCURRENT)
    before, after = _username(current.get("SecretString", "")), _username(pending)
    if before is None or after is None:
        return None
    return "single-user" if before == after else "multi-user"


def collect_status(
    client: SecretsManagerClient,
    secret_id: str,
    *,
    remedies: Remedies | None = None,
    sessions: bool = True,
) -> SecretStatus:
    """Read the secret's description and versions, and diagnose what they show.

    ``remedies`` builds the commands the diagnosis prints, with the connection options this
    command was given, so that a copied command acts where this one looked. ``sessions``:
    also log in as the master (multi-user secrets) and list who is logged in as each user
    of the pair (:mod:`rotation_tools.pair_sessions`).
    """
    described = client.describe_secret(SecretId=secret_id)
    arn = described["ARN"]
    created: dict[str, datetime.datetime | None] = {}
    kwargs: dict[str, Any] = {"SecretId": arn, "IncludeDeprecated": False}
    while True:  # boto3 has no paginator for this operation
        page = client.list_secret_version_ids(**kwargs)
        for version in page.get("Versions", []):
            created[version["VersionId"]] = version.get("CreatedDate")
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    rows = []
    pending_value = None
    for version_id, stages in described.get("VersionIdsToStages", {}).items():
        has_value = None
        if AWSPENDING in stages and AWSCURRENT not in stages:
            pending_value = _pending_value(client, arn, version_id)
            has_value = pending_value is not None
        rows.append(VersionRow(version_id, list(stages), created.get(version_id), has_value))
    rows.sort(key=lambda r: r.created or datetime.datetime.min.replace(tzinfo=datetime.UTC))
    status = SecretStatus(
        arn=arn,
        name=described["Name"],
        rotation_enabled=bool(described.get("RotationEnabled", False)),
        lambda_arn=described.get("RotationLambdaARN"),
        schedule=_schedule(dict(described.get("RotationRules", {}))),
        last_rotated=described.get("LastRotatedDate"),
        next_rotation=described.get("NextRotationDate"),
        versions=rows,
    )
    status.strategy = _inferred_strategy(client, arn, status.lambda_arn, pending_value)
    _diagnose(status, remedies or Remedies())
    if sessions:
        from rotation_tools.pair_sessions import collect_pair_sessions

        status.sessions = collect_pair_sessions(client, arn)
    return status


def _diagnose(status: SecretStatus, remedies: Remedies) -> None:
    secret = status.arn
    current = [r for r in status.versions if AWSCURRENT in r.stages]
    pending = [r for r in status.versions if AWSPENDING in r.stages and AWSCURRENT not in r.stages]
    # Secrets Manager re-attempts only a rotation it started through a function; a direct
    # one (`rotation rotate`, or steps invoked by hand) is resumed only by running it again.
    managed = status.rotation_enabled and bool(status.lambda_arn)
    if not current:
        status.stuck = True
        status.diagnosis.append("No version is labelled AWSCURRENT: applications cannot read it.")
        previous = [r for r in status.versions if AWSPREVIOUS in r.stages]
        if previous:
            status.remedies.append(
                remedies.aws(
                    "update-secret-version-stage",
                    secret,
                    "--version-stage AWSCURRENT --move-to-version-id",
                    previous[0].version_id,
                )
            )
    for row in pending:
        status.stuck = True
        since = f" since {row.created:%Y-%m-%d %H:%M:%S %Z}" if row.created else ""
        if row.has_value:
            what = (
                f"A rotation is in progress or stuck{since}: version {row.version_id} is "
                "AWSPENDING with a value, so createSecret ran and a later step failed or has "
                "not run yet."
            )
        else:
            what = (
                f"A rotation is stuck before createSecret finished{since}: version "
                f"{row.version_id} is AWSPENDING without a value."
            )
        if managed:
            what += (
                " Secrets Manager re-attempts it with the same token; every new rotation is "
                "refused until it finishes. The rotation function's logs say which step "
                "failed and why"
                + (
                    "."
                    if row.has_value
                    else " (often the function could not run at all: permissions, network, "
                    "a wrong handler)."
                )
            )
        else:
            what += (
                " No rotation function is attached, so nothing re-attempts it: it was started "
                "directly (`rotation rotate`, or steps invoked by hand), and the error that "
                "command printed said which step failed. Running the rotation again resumes "
                "it with the same token."
            )
        status.diagnosis.append(what)
        # With a rotation function attached, `rotation rotate` needs --force (it refuses
        # to race with Secrets Manager by default); the token's rotation is resumed as is.
        status.remedies.append(
            f"{remedies.rotate(secret, strategy=status.strategy, force=managed)}   "
            "# finish it from here with the same token"
        )
        status.remedies.append(
            remedies.aws(
                "update-secret-version-stage",
                secret,
                "--version-stage AWSPENDING --remove-from-version-id",
                row.version_id,
            )
            + "   # or abandon it (the database may already have the pending password: "
            "single-user secrets then need `rotation rotate` instead)"
        )
    done = [r for r in status.versions if AWSPENDING in r.stages and AWSCURRENT in r.stages]
    for row in done:
        status.diagnosis.append(
            f"Version {row.version_id} carries AWSCURRENT and AWSPENDING: the last rotation "
            "finished, and the leftover AWSPENDING label is harmless."
        )
    if not status.diagnosis:
        status.diagnosis.append("No rotation is in progress; the labels are consistent.")
    if not status.rotation_enabled:
        status.diagnosis.append("Rotation is not enabled for this secret.")


def _date(value: datetime.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S %Z}".strip() if value else "-"


def _labels(row: VersionRow) -> str:
    """The labels; a pending version says whether createSecret stored its value (only those
    are looked at: a column of it would be blank on every other row)."""
    labels = ", ".join(row.stages) or "-"
    if row.has_value is None:
        return labels
    return f"{labels} ({'value stored' if row.has_value else 'no value yet'})"


def render(status: SecretStatus, console: Any) -> None:
    console.line(f"Secret   {status.name}")
    console.line(f"ARN      {status.arn}")
    console.heading("Versions")
    console.table(
        ["version", "labels", "created"],
        [[row.version_id, _labels(row), _date(row.created)] for row in status.versions],
    )
    console.heading("Rotation")
    console.line(f"  enabled        {'yes' if status.rotation_enabled else 'no'}")
    console.line(f"  schedule       {status.schedule or '-'}")
    console.line(f"  last rotated   {_date(status.last_rotated)}")
    console.line(f"  next rotation  {_date(status.next_rotation)}")
    console.line(f"  function       {status.lambda_arn or '-'}")
    console.heading("Diagnosis")
    for sentence in status.diagnosis:
        console.line(f"  {console.paint(sentence, 'warn' if status.stuck else 'ok')}")
    if status.remedies:
        console.heading("To clear it")
        for remedy in status.remedies:
            console.line(f"  $ {remedy}")
    if status.sessions is not None:
        from rotation_tools.pair_sessions import render_pair_sessions

        render_pair_sessions(status.sessions, console)
