"""``rotation status --all``: one row per secret with rotation configured in the account and
region, or a rotation in progress without it (started directly), and the state it is in.

Everything comes from ``ListSecrets`` (paginated, 100 secrets a page), whose entries carry
the labels (``SecretVersionsToStages``), the rotation configuration and dates and
``OwningService``. Only a secret with a rotation in progress costs one more call
(``ListSecretVersionIds``): no listing says when its AWSPENDING version was created, and
that age is what tells ``rotating`` from ``stuck``. No secret value is ever read, so the
command needs only ``secretsmanager:ListSecrets`` and ``secretsmanager:ListSecretVersionIds``.

The states, first match wins:

=================  ===========================================================================
``service-owned``  ``OwningService`` is set: another service (RDS, ...) rotates it; ours must not
``stuck``          AWSPENDING on a non-current version for longer than the rotation window
                   (``RotationRules.Duration``) or, without one, an hour
``rotating``       AWSPENDING on a non-current version, younger than that
``not-rotating``   a rotation function is set but rotation is disabled
``overdue``        ``NextRotationDate`` is in the past: AWS documents it as the latest date
                   the rotation will occur
``ok``             none of the above
=================  ===========================================================================

``stuck``, ``not-rotating`` and ``overdue`` need attention (the command exits 1), and so does
a rotation in progress whose age could not be read (``ListSecretVersionIds`` answered an
error for that secret: deleted meanwhile, denied, throttled): its row keeps the error code
and the fix in ``detail``, and the other secrets are still reported.
The clock is injected (``now``), so ages and "overdue" are decided against one instant.
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rotation.secret import AWSCURRENT, AWSPENDING
from rotation_contract.aws_errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = [
    "ATTENTION",
    "DEFAULT_STUCK_AFTER",
    "AgeError",
    "FleetFilter",
    "FleetRow",
    "FleetState",
    "ProgressFn",
    "classify",
    "collect_fleet",
    "list_rotating",
    "parse_filter",
    "recognise_strategy",
]

PAGE_SIZE = 100
# Without a rotation window (RotationRules.Duration), a rotation in progress for longer than
# this is stuck: a healthy one takes seconds, and Secrets Manager's re-attempts follow soon.
DEFAULT_STUCK_AFTER = datetime.timedelta(hours=1)
# Version ages are read with a few calls at once: ListSecretVersionIds has a per-account
# quota (throttled calls are retried by botocore), and a few in flight already hide latency.
_AGE_WORKERS = 4

# progress(done, total, what): total is None while the total is unknown (paging).
ProgressFn = Callable[[int, int | None, str], None]


class FleetState(enum.StrEnum):
    OK = "ok"
    ROTATING = "rotating"
    STUCK = "stuck"
    OVERDUE = "overdue"
    NOT_ROTATING = "not-rotating"
    SERVICE_OWNED = "service-owned"


ATTENTION = frozenset({FleetState.STUCK, FleetState.OVERDUE, FleetState.NOT_ROTATING})


@dataclass(frozen=True)
class FleetRow:
    """One secret's rotation state. Holds no secret value."""

    secret: str  # the ARN
    name: str
    function: str | None
    strategy: str  # single-user, multi-user or unknown
    state: FleetState
    last_rotated: datetime.datetime | None
    next_rotation: datetime.datetime | None
    pending_since: datetime.datetime | None
    pending_version: str | None
    owning_service: str | None
    detail: str
    # The AWS error code when the age of its rotation could not be read (the row is kept,
    # with the fix in ``detail``): one unreadable secret must not hide the fleet.
    error: str | None = None

    @property
    def needs_attention(self) -> bool:
        return self.state in ATTENTION or self.error is not None

    def as_json(self) -> dict[str, Any]:
        def iso(value: datetime.datetime | None) -> str | None:
            return value.astimezone(datetime.UTC).isoformat() if value else None

        return {
            "secret": self.secret,
            "name": self.name,
            "state": self.state.value,
            "function": self.function,
            "strategy": self.strategy,
            "last_rotated": iso(self.last_rotated),
            "next_rotation": iso(self.next_rotation),
            "pending_since": iso(self.pending_since),
            "pending_version": self.pending_version,
            "owning_service": self.owning_service,
            "needs_attention": self.needs_attention,
            "detail": self.detail,
            "error": self.error,
        }


@dataclass(frozen=True)
class FleetFilter:
    """``--filter``: a name prefix, or a tag ``key=value``."""

    name_prefix: str | None = None
    tag: tuple[str, str] | None = None

    def api_filters(self) -> list[dict[str, Any]]:
        """What ListSecrets can narrow on the server. Its tag filters match a key and a value
        independently (of different tags, possibly), so the pair is checked again here."""
        if self.tag is not None:
            return [
                {"Key": "tag-key", "Values": [self.tag[0]]},
                {"Key": "tag-value", "Values": [self.tag[1]]},
            ]
        return [{"Key": "name", "Values": [self.name_prefix or ""]}]

    def matches(self, entry: Mapping[str, Any]) -> bool:
        if self.tag is not None:
            tags = {t.get("Key"): t.get("Value") for t in entry.get("Tags", [])}
            return tags.get(self.tag[0]) == self.tag[1]
        return str(entry.get("Name", "")).startswith(self.name_prefix or "")


def parse_filter(text: str) -> FleetFilter:
    """``KEY=VALUE`` is a tag, anything else a name prefix."""
    key, sep, value = text.partition("=")
    if sep:
        if not key:
            raise ValueError(f"--filter {text!r}: a tag filter is KEY=VALUE, the key is empty")
        return FleetFilter(tag=(key, value))
    if not text:
        raise ValueError("--filter takes a name prefix or a tag KEY=VALUE, got nothing")
    return FleetFilter(name_prefix=text)


_SINGLE = re.compile(r"single[-_ ]?user", re.IGNORECASE)
_MULTI = re.compile(r"multi[-_ ]?user|alternat", re.IGNORECASE)


def recognise_strategy(function_arn: str | None) -> str:
    """The strategy a rotation function's name announces: this project's template names its
    functions ``<stack>-single-user`` / ``<stack>-multi-user``, AWS's reference functions
    ``...RotationSingleUser`` / ``...RotationMultiUser``. Anything else is "unknown": a
    secret does not say how it is rotated."""
    if not function_arn:
        return "unknown"
    name = function_arn.rsplit(":function:", 1)[-1]
    if _MULTI.search(name):
        return "multi-user"
    if _SINGLE.search(name):
        return "single-user"
    return "unknown"


_DURATION = re.compile(r"^\s*(\d+)\s*h\s*$", re.IGNORECASE)


def stuck_after(rules: Mapping[str, Any] | None) -> datetime.timedelta:
    """The rotation window (``Duration``, e.g. ``3h``), else :data:`DEFAULT_STUCK_AFTER`."""
    duration = (rules or {}).get("Duration")
    match = _DURATION.match(str(duration)) if duration else None
    if match and int(match.group(1)) > 0:
        return datetime.timedelta(hours=int(match.group(1)))
    return DEFAULT_STUCK_AFTER


def is_configured(entry: Mapping[str, Any]) -> bool:
    """Rotation is configured: enabled, or a function is set (moto lists ``""`` for none)."""
    return bool(entry.get("RotationEnabled")) or bool(entry.get("RotationLambdaARN"))


def is_listed(entry: Mapping[str, Any]) -> bool:
    """A row of the fleet: rotation configured, or a rotation in progress without it (one
    started directly, by `rotation rotate`, that failed or was interrupted)."""
    return is_configured(entry) or pending_version(entry) is not None


def pending_version(entry: Mapping[str, Any]) -> str | None:
    """The version holding AWSPENDING while a rotation is in progress (not merely left on
    AWSCURRENT by a finished one)."""
    for version_id, stages in (entry.get("SecretVersionsToStages") or {}).items():
        if AWSPENDING in stages and AWSCURRENT not in stages:
            return str(version_id)
    return None


def _ago(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def classify(
    entry: Mapping[str, Any],
    *,
    now: datetime.datetime,
    pending_since: datetime.datetime | None = None,
    age_error: AgeError | None = None,
) -> FleetRow:
    """The row for one ``ListSecrets`` entry; ``pending_since`` is the creation date of its
    AWSPENDING version when it has one (see :func:`pending_version`), ``age_error`` why that
    date could not be read."""
    function = entry.get("RotationLambdaARN") or None
    owner = entry.get("OwningService") or None
    pending = pending_version(entry)
    next_rotation = entry.get("NextRotationDate")
    rules = entry.get("RotationRules")
    if owner:
        state = FleetState.SERVICE_OWNED
        detail = f"rotated by {owner}; this project's functions must not rotate it"
    elif pending is not None:
        limit = stuck_after(rules)
        if age_error is not None:
            state = FleetState.ROTATING
            detail = (
                f"version {pending} is AWSPENDING; its age could not be read "
                f"(ListSecretVersionIds: {age_error.code}): {age_error.fix}"
            )
        elif pending_since is None:
            state = FleetState.ROTATING
            detail = f"version {pending} is AWSPENDING (its creation date is unknown)"
        else:
            age = now - pending_since
            stuck = age > limit
            state = FleetState.STUCK if stuck else FleetState.ROTATING
            detail = f"version {pending} has been AWSPENDING for {_ago(age)}" + (
                f", longer than {_ago(limit)}: `rotation status SECRET` explains how to clear it"
                if stuck
                else ""
            )
        if not function:
            # Nothing re-attempts a rotation started directly: only running it again does.
            detail += (
                "; no rotation function: started directly, it resumes only when "
                "`rotation rotate` runs again"
            )
    elif function and not entry.get("RotationEnabled"):
        state = FleetState.NOT_ROTATING
        detail = "a rotation function is set but rotation is disabled"
    elif next_rotation is not None and next_rotation < now:
        state = FleetState.OVERDUE
        detail = (
            f"the next rotation was due {_ago(now - next_rotation)} ago: the rotation "
            "function's log says why it did not run or failed"
        )
    else:
        state = FleetState.OK
        detail = ""
    return FleetRow(
        secret=str(entry["ARN"]),
        name=str(entry["Name"]),
        function=function,
        strategy=recognise_strategy(function),
        state=state,
        last_rotated=entry.get("LastRotatedDate"),
        next_rotation=next_rotation,
        pending_since=pending_since,
        pending_version=pending,
        owning_service=owner,
        detail=detail,
        error=age_error.code if age_error is not None else None,
    )


def _list_configured(
    client: SecretsManagerClient,
    filters: Sequence[FleetFilter],
    progress: ProgressFn | None,
) -> Iterator[Mapping[str, Any]]:
    kwargs: dict[str, Any] = {"MaxResults": PAGE_SIZE}
    # The server narrows by the first filter of each key (prefix matches); every filter is
    # checked exactly on each entry below.
    api_filters: dict[str, dict[str, Any]] = {}
    for flt in filters:
        for api_filter in flt.api_filters():
            api_filters.setdefault(api_filter["Key"], api_filter)
    if api_filters:
        kwargs["Filters"] = list(api_filters.values())
    seen = 0
    page_number = 0
    while True:
        page = client.list_secrets(**kwargs)
        page_number += 1
        entries = page.get("SecretList", [])
        seen += len(entries)
        if progress is not None:
            progress(seen, None, f"listing secrets: page {page_number}")
        for entry in entries:
            if is_listed(entry) and all(flt.matches(entry) for flt in filters):
                yield entry
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def list_rotating(client: SecretsManagerClient) -> Iterator[Mapping[str, Any]]:
    """Every secret ``status --all`` lists (rotation configured, or a rotation in
    progress), unfiltered: ``rotation plan`` counts those sharing a window."""
    return _list_configured(client, [], None)


@dataclass(frozen=True)
class AgeError:
    """Why ListSecretVersionIds failed for one secret: the AWS error code, and the fix."""

    code: str
    fix: str


_NOT_FOUND = frozenset({"ResourceNotFoundException"})
_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})
_THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})


def age_error(exc: BaseException) -> AgeError | None:
    """The :class:`AgeError` for an AWS error answered to ListSecretVersionIds, or None when
    ``exc`` is not one (a bug, or no answer at all: those still end the command)."""
    code = error_code(exc)
    if not code:
        return None
    if code in _NOT_FOUND:
        fix = "the secret was deleted while the fleet was read; run the command again"
    elif code in _DENIED:
        fix = (
            "the caller needs secretsmanager:ListSecretVersionIds on this secret (an IAM "
            "policy, and the secret's resource policy if it has one)"
        )
    elif code in _THROTTLED:
        fix = "Secrets Manager throttled the call past botocore's retries; run the command again"
    else:
        fix = "`rotation status SECRET` reads this secret alone"
    return AgeError(code, fix)


def _created(client: SecretsManagerClient, arn: str, version_id: str) -> datetime.datetime | None:
    """When ``version_id`` was created: ListSecretVersionIds, paged until it is found."""
    kwargs: dict[str, Any] = {"SecretId": arn, "IncludeDeprecated": False, "MaxResults": 100}
    while True:
        page = client.list_secret_version_ids(**kwargs)
        for version in page.get("Versions", []):
            if version.get("VersionId") == version_id:
                created = version.get("CreatedDate")
                return created if isinstance(created, datetime.datetime) else None
        token = page.get("NextToken")
        if not token:
            return None
        kwargs["NextToken"] = token


def collect_fleet(
    client: SecretsManagerClient,
    *,
    now: datetime.datetime,
    filters: Iterable[FleetFilter] = (),
    progress: ProgressFn | None = None,
    workers: int = _AGE_WORKERS,
) -> list[FleetRow]:
    """Every secret with rotation configured (matching every filter), classified at ``now``
    (timezone-aware), sorted by name.

    Calls: one ``ListSecrets`` per 100 secrets, and one ``ListSecretVersionIds`` per secret
    with a rotation in progress.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    entries = list(_list_configured(client, list(filters), progress))
    in_progress = [(entry, pending_version(entry)) for entry in entries]
    # A service-owned secret's state does not depend on the age: no call for it.
    ages_needed = [
        (str(entry["ARN"]), version)
        for entry, version in in_progress
        if version is not None and not entry.get("OwningService")
    ]
    since: dict[str, datetime.datetime | None] = {}
    errors: dict[str, AgeError] = {}
    if ages_needed:
        total = len(ages_needed)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {
                arn: pool.submit(_created, client, arn, version) for arn, version in ages_needed
            }
            for done, (arn, future) in enumerate(futures.items(), start=1):
                try:
                    since[arn] = future.result()
                except Exception as exc:
                    # One secret deleted meanwhile, denied or throttled keeps its row.
                    error = age_error(exc)
                    if error is None:
                        raise
                    errors[arn] = error
                if progress is not None:
                    progress(done, total, "reading the age of rotations in progress")
    rows = [
        classify(
            entry,
            now=now,
            pending_since=since.get(str(entry["ARN"])),
            age_error=errors.get(str(entry["ARN"])),
        )
        for entry in entries
    ]
    return sorted(rows, key=lambda row: row.name)


def _date(value: datetime.datetime | None) -> str:
    return f"{value.astimezone(datetime.UTC):%Y-%m-%d %H:%M}" if value else "-"


def _function_name(arn: str | None) -> str:
    return arn.rsplit(":function:", 1)[-1] if arn else "-"


def render_fleet(rows: Sequence[FleetRow], console: Any) -> None:
    if not rows:
        console.line("No secret has rotation configured or a rotation in progress here.")
        return
    styles = {FleetState.OK: "ok", FleetState.ROTATING: "dim", FleetState.SERVICE_OWNED: "dim"}
    console.table(
        [
            "secret",
            "state",
            "strategy",
            "function",
            "last rotated (UTC)",
            "next rotation (UTC)",
            "detail",
        ],
        [
            [
                row.name,
                row.state.value,
                row.strategy,
                _function_name(row.function),
                _date(row.last_rotated),
                _date(row.next_rotation),
                row.detail,
            ]
            for row in rows
        ],
    )
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state.value] = counts.get(row.state.value, 0) + 1
    summary = ", ".join(
        console.paint(f"{counts[s.value]} {s.value}", styles.get(s, "warn"))
        for s in FleetState
        if s.value in counts
    )
    attention = sum(1 for row in rows if row.needs_attention)
    console.line()
    console.line(
        f"{len(rows)} secrets with rotation configured or in progress: {summary or 'none'}"
    )
    if attention:
        console.line(f"{attention} need attention; `rotation status SECRET` shows one in detail")
