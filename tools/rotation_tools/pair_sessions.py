"""``rotation status``'s sessions section: who is logged in as each user of a multi-user pair.

The same reading multi-user setSecret makes before it changes the AWSPREVIOUS user's
password (:mod:`handlers.pg_sessions`), as the master, so that an operator sees the
stragglers a rotation would cut off (or refuse for) before it runs, and when AWSPREVIOUS's
password expires (``PREVIOUS_PASSWORD_TTL``, or the operator's ``VALID UNTIL``). Read-only:
one login as the master, two catalog queries. Anything that keeps it from reading (no
``masterarn``, a master that does not log in) is a line in the report, never a failure of
``status``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from handlers.master import open_master
from handlers.multi_user import alternate_username, owner_role
from handlers.pg_connect import PostgresConnector
from handlers.pg_errors import statement_error
from handlers.pg_sessions import READ_ALL_STATS, find_sessions
from handlers.rds import RdsTopology
from rotation import Deadline, RetryPolicy, RotationError
from rotation.errors import SecretFormatError
from rotation.scrub import Scrubber
from rotation.secret import AWSCURRENT, AWSPREVIOUS, SecretVersion
from rotation_contract.pg.secret import (
    MasterSecret,
    PostgresSecret,
    master_login,
    parse_postgres_secret,
)
from rotation_tools.previous_expiry import read_expiry

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["collect_pair_sessions", "master_credential", "render_pair_sessions"]

# `status` is a quick look: one login attempt, bounded.
_BUDGET_S = 15.0


def _current(client: SecretsManagerClient, secret_id: str) -> SecretVersion:
    response = client.get_secret_value(SecretId=secret_id, VersionStage=AWSCURRENT)
    return SecretVersion(
        response["ARN"], response["VersionId"], response.get("SecretString", ""), AWSCURRENT
    )


def master_credential(
    client: SecretsManagerClient,
    current: PostgresSecret,
    deadline: Deadline,
    rds: RdsTopology | None = None,
) -> MasterSecret:
    """How the master logs in for ``current`` (the handlers' rule: its host, or the RDS
    primary its tags name; at least AWSCURRENT's TLS), read with the command's client.

    Raises
    ------
    SecretFormatError
        The master secret is for another host than the user's (nor the primary the user's
        host reads from): it is not used, as ``rotation verify --reconcile`` does not.
    """
    assert current.masterarn is not None  # noqa: S101  # callers check
    rds = rds or RdsTopology()
    value = _current(client, current.masterarn).json()
    master = parse_postgres_secret(value, "the master secret", require_engine=False)
    host, port = master.host, master.port
    if not host:  # an RDS-managed master secret: the database is in its tags
        tags = {
            tag["Key"]: tag["Value"]
            for tag in client.describe_secret(SecretId=current.masterarn).get("Tags", [])
        }
        host, port = rds.primary_endpoint(tags, deadline)
    if host.lower() != current.host.lower() and not rds.is_reader_of(current.host, host, deadline):
        raise SecretFormatError(
            f"the master secret ({current.masterarn}) is for host {host!r}, which is neither "
            f"the user's host ({current.host!r}) nor the primary it reads from; it is not "
            "used: point masterarn at the master secret of the user's database"
        )
    return master_login(current, master, host=host, port=port, dbname=value.get("dbname"))


def _previous_username(client: SecretsManagerClient, secret_id: str) -> str | None:
    """AWSPREVIOUS's user, or None when the secret has no AWSPREVIOUS (or it is unreadable:
    then only an existing role is shown as the other user of the pair)."""
    try:
        response = client.get_secret_value(SecretId=secret_id, VersionStage=AWSPREVIOUS)
        version = SecretVersion(
            response["ARN"], response["VersionId"], response.get("SecretString", ""), AWSPREVIOUS
        )
        return parse_postgres_secret(version.json(), "the AWSPREVIOUS version").username
    except (RotationError, ClientError):
        return None


def collect_pair_sessions(
    client: SecretsManagerClient,
    secret_id: str,
    *,
    connector: PostgresConnector | None = None,
    rds: RdsTopology | None = None,
) -> dict[str, Any]:
    """The live sessions of the secret's user pair, as a JSON-ready report.

    ``{"checked": bool, "reason": str | None, "details_visible": bool, "users": [{"user",
    "label", "exists", "sessions": [...]}]}``: ``label`` is AWSCURRENT for the current user
    and AWSPREVIOUS for the other one (the one the next rotation changes), which also has
    ``password_expiry`` (:func:`rotation_tools.previous_expiry.expiry_report`; None when
    its role does not exist). The other one is listed only when its role exists or
    AWSPREVIOUS names it (a pair whose member is gone): a single-user secret has no pair.
    A master secret for another host is not used.
    """
    scrubber = Scrubber()
    try:
        return _collect(client, secret_id, connector, rds, scrubber)
    except RotationError as exc:
        scrubber.scrub_exception_chain(exc)
        return _unchecked(exc.problem)
    except (ClientError, BotoCoreError) as exc:
        return _unchecked(scrubber.scrub(f"{type(exc).__name__}: {exc}"))


def _unchecked(reason: str) -> dict[str, Any]:
    return {"checked": False, "reason": reason, "details_visible": False, "users": []}


def _collect(
    client: SecretsManagerClient,
    secret_id: str,
    connector: PostgresConnector | None,
    rds: RdsTopology | None,
    scrubber: Scrubber,
) -> dict[str, Any]:
    current = parse_postgres_secret(_current(client, secret_id).json(), "the AWSCURRENT version")
    scrubber.add(current.password)
    if not current.masterarn:
        return _unchecked(
            "no masterarn: sessions are read as the master (multi-user secrets), and a "
            "single-user rotation changes the current user's own password"
        )
    deadline = Deadline.in_seconds(_BUDGET_S)
    as_master = master_credential(client, current, deadline, rds)
    scrubber.add(as_master.password)
    connector = connector or PostgresConnector(retry_policy=RetryPolicy(attempts=1))
    owner = owner_role(current.username)
    other = next(user for user in (owner, alternate_username(owner)) if user != current.username)
    with open_master(connector, as_master, deadline, floor=current.sslmode) as session:
        try:
            with session.transaction(writes=False) as conn:
                # Whether the other user exists, and when its password expires
                # (PREVIOUS_PASSWORD_TTL), on the server's clock: one pg_roles query.
                expiry = read_expiry(conn, other)
            other_exists = expiry is not None
        except psycopg.Error as exc:
            raise statement_error(exc, "looking up the pair as the master") from exc
        # A single-user secret (AWSPREVIOUS is the same user, or none) has no pair: its
        # "<user>_clone" does not exist and is nobody's AWSPREVIOUS.
        paired = other_exists or _previous_username(client, secret_id) == other
        users = [current.username, other] if paired else [current.username]
        found = find_sessions(session, users)
    return {
        "checked": True,
        "reason": None,
        "details_visible": found.visible,
        "users": [
            {
                "user": user,
                "label": AWSCURRENT if user == current.username else AWSPREVIOUS,
                "exists": True if user == current.username else other_exists,
                "sessions": [session.as_json() for session in found.of(user)],
                **({"password_expiry": expiry} if user == other else {}),
            }
            for user in users
        ],
    }


def render_pair_sessions(report: dict[str, Any], console: Any) -> None:
    """The report as ``status`` prints it."""
    console.heading("Sessions")
    if not report["checked"]:
        console.line(f"  not checked: {report['reason']}")
        return
    if len(report["users"]) == 1:
        console.line(
            "  no user pair: AWSPREVIOUS is not another user (a single-user secret, or one "
            "not rotated multi-user yet)"
        )
    for entry in report["users"]:
        if not entry.get("exists", True):
            console.line(f"  {entry['user']} ({entry['label']}): the role does not exist")
            continue
        sessions = entry["sessions"]
        count = f"{len(sessions)} session{'s' if len(sessions) != 1 else ''}"
        expiry = entry.get("password_expiry")
        shown = f"; {expiry['summary']}" if expiry else ""
        console.line(f"  {entry['user']} ({entry['label']}): {count}{shown}")
        for session in sessions:
            address = session["address"] or "address hidden"
            application = session["application"] or "-"
            since = session["since"] or "since ?"
            console.line(f"    {address}  {application}  {since}")
    stragglers = [e for e in report["users"] if e["label"] == AWSPREVIOUS and e["sessions"]]
    for entry in stragglers:
        console.line(
            "  "
            + console.paint(
                f"The next rotation changes {entry['user']}'s password: these clients fail at "
                "their next login unless they move to AWSCURRENT first (STRAGGLER_POLICY="
                "refuse makes setSecret wait for them).",
                "warn",
            )
        )
    if not report["details_visible"]:
        console.line(
            f"  The master cannot see other roles' session details: GRANT {READ_ALL_STATS} "
            "TO <master> to see addresses and start times."
        )
