"""``rotation plan``: what a rotation would do, step by step, changing nothing.

For each step: the Secrets Manager calls, which credential logs in where (TLS mode,
authentication methods allowed), and the SQL statements, rendered by the very builders the
handlers execute (:mod:`handlers.pg_sql`, :mod:`handlers.pg_sessions`,
:mod:`handlers.pg_parity`), so the plan cannot drift from what runs. Passwords and their
verifiers are shown as ``<redacted>``. Then the checks ``rotation doctor`` would fail.

What it reads: the secret's description and AWSCURRENT (and the master secret), and, to
know what multi-user's setSecret will find, the pair's roles and settings as the master
(read-only catalog queries; ``doctor`` logs in the same way). What it never does: write to
Secrets Manager, or change anything in the database.
"""

from __future__ import annotations

import argparse
import datetime
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from handlers.master import open_master
from handlers.multi_user import alternate_username, owner_role
from handlers.pg_authority import PRIVILEGED_ROLE_NAMES, planned
from handlers.pg_connect import APPLICATION_NAME, PostgresConnector
from handlers.pg_errors import statement_error
from handlers.pg_parity import RoleState, _plan, read_states
from handlers.pg_sessions import find_sessions, sees_all_sessions, sessions_of
from handlers.pg_sql import (
    alter_password,
    bound_transaction,
    create_login_role,
    default_role,
    grant_membership,
    is_member_of,
    pair_lock,
    pin_search_path,
    privileged_closure,
    probe,
    role_exists,
    role_limits,
    role_memberships,
    role_settings,
    session_role,
)
from rotation import Deadline, RetryPolicy, RotationError, SecretFormatError
from rotation.config import event_bus_name
from rotation.scrub import Scrubber
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, SecretDescription, SecretVersion
from rotation_contract.aws_errors import error_code
from rotation_contract.pg.secret import MasterSecret, PostgresSecret, parse_postgres_secret
from rotation_tools.doctor import Check, run_doctor
from rotation_tools.fleet import list_rotating
from rotation_tools.pair_sessions import master_credential
from rotation_tools.plan_windows import WindowReport, window_report
from rotation_tools.previous_expiry import read_expiry
from rotation_tools.rds_proxy import proxy_check

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from psycopg import sql

    from rotation_tools.remedies import Remedies

__all__ = [
    "BOUND_PARAMS",
    "LOCK_KEY_PARAM",
    "REDACTED",
    "Plan",
    "build_plan",
    "cmd_plan",
    "render_plan",
]

REDACTED = "<redacted>"
# The bounds' values in a plan: known only when the transaction starts.
BOUND_PARAMS = ("<ms left>", "<ms left, less the lock's lead>")
# The pair lock's key (handlers.pg_lock): an HMAC of a password, never shown.
LOCK_KEY_PARAM = "<pair lock key>"
_NEW_TOKEN = "<new token>"  # noqa: S105  # a placeholder, not a password
_BUDGET_S = 20.0


@dataclass(frozen=True)
class Login:
    credential: str
    user: str
    where: str
    sslmode: str
    require_auth: str
    outcome: str

    def line(self) -> str:
        return (
            f"{self.credential} logs in as {self.user} at {self.where} (sslmode "
            f"{self.sslmode}, require_auth {self.require_auth}, application_name "
            f"{APPLICATION_NAME}): {self.outcome}"
        )


@dataclass(frozen=True)
class Statement:
    """One statement as the server's log shows it: ``$n`` placeholders and their values."""

    sql: str
    params: list[Any] = field(default_factory=list)
    session: str = ""

    def line(self) -> str:
        shown = f"{self.sql};"
        if self.params:
            shown += "   -- " + ", ".join(f"${i} = {p!r}" for i, p in enumerate(self.params, 1))
        return shown


@dataclass
class PlannedStep:
    step: str
    secrets_manager: list[str] = field(default_factory=list)
    logins: list[Login] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    secret: str
    name: str
    strategy: str
    token: str
    steps: list[PlannedStep]
    checks: list[Check]
    notes: list[str] = field(default_factory=list)
    windows: WindowReport | None = None
    # multi-user: when AWSPREVIOUS's user's password expires
    # (rotation_tools.previous_expiry.expiry_report); None when not read (no pair yet, no
    # master, single-user).
    previous_password_expiry: dict[str, Any] | None = None

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if check.ok is False]

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["checks"] = [check.as_json() for check in self.checks]
        document["failed_checks"] = [check.as_json() for check in self.failed_checks]
        document["ok"] = not self.failed_checks
        document["windows"] = self.windows.as_json() if self.windows is not None else None
        return document


def _render(
    composable: sql.Composable, params: tuple[Any, ...] = (), session: str = ""
) -> Statement:
    """The statement as the server receives it: psycopg sends ``%s`` as ``$1``, ``$2``..."""
    text = composable.as_string(None)
    counter = iter(range(1, len(params) + 1))
    text = re.sub(r"%s", lambda _: f"${next(counter)}", text)
    return Statement(text, list(params), session)


def _where(secret: PostgresSecret) -> str:
    return f"{secret.host}:{secret.port}/{secret.dbname}"


def _login(credential: str, secret: PostgresSecret, floor: str, auth: str, outcome: str) -> Login:
    return Login(
        credential, secret.username, _where(secret), secret.with_tls_floor(floor).sslmode, auth,
        outcome,
    )  # fmt: skip


# A transaction that changes a role asks for READ WRITE (handlers.pg_roles.read_write).
WRITES = "BEGIN READ WRITE"


def _transaction(
    statements: list[Statement], session: str, *, begin: str = "BEGIN"
) -> list[Statement]:
    # Every transaction starts with the step's bounds (handlers.pg_bounds): their values
    # are the time left when it starts.
    bounds = _render(bound_transaction(), BOUND_PARAMS, session)
    return [Statement(begin, [], session), bounds, *statements, Statement("COMMIT", [], session)]


def _master_transaction(
    statements: list[Statement], session: str, *, writes: bool
) -> list[Statement]:
    """A transaction of the master's: its first statement pins search_path
    (handlers.master.MasterSession); one that changes a role asks for READ WRITE."""
    return _transaction(
        [_render(pin_search_path(), (), session), *statements],
        session,
        begin=WRITES if writes else "BEGIN",
    )


def build_plan(
    client: SecretsManagerClient,
    secret_id: str,
    *,
    strategy: str,
    connector: PostgresConnector | None = None,
    remedies: Remedies | None = None,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> Plan:
    """Read what a rotation of ``secret_id`` would find, and describe what it would do.

    Raises
    ------
    RotationError
        The secret's current value cannot be read as a PostgreSQL secret.
    """
    connector = connector or PostgresConnector(retry_policy=RetryPolicy(attempts=1))
    described = client.describe_secret(SecretId=secret_id)
    description = SecretDescription.from_api(described)
    arn = description.arn
    current_id = description.version_with(AWSCURRENT)
    response = client.get_secret_value(SecretId=arn, VersionStage=AWSCURRENT)
    # The one parser of a secret's value: not JSON, or not an object, is said as such.
    version = SecretVersion(
        response["ARN"], response["VersionId"], response.get("SecretString", ""), AWSCURRENT
    )
    current = parse_postgres_secret(version.json(), "the AWSCURRENT version")
    token = _NEW_TOKEN
    notes: list[str] = []
    for version_id, stages in description.versions.items():
        if AWSPENDING in stages and AWSCURRENT not in stages:
            token = version_id
            notes.append(
                f"A rotation is in progress (version {version_id} holds AWSPENDING): a "
                "rotation now resumes it with that token; createSecret keeps the value it "
                "already stored, if any"
            )
    checks = run_doctor(
        client, secret_id, strategy=strategy, settings=connector.settings, remedies=remedies
    )
    proxy = proxy_check(current, strategy)
    if proxy is not None and proxy.ok:
        notes.append(proxy.detail)  # a failing one is among the checks already
    expiry: dict[str, Any] | None = None
    if strategy == "single-user":
        steps = _single_user(arn, token, current_id, current, connector)
    else:
        steps, expiry = _multi_user(
            client, arn=arn, token=token, current_id=current_id, current=current,
            connector=connector,
        )  # fmt: skip
    bus = event_bus_name()
    if bus:
        steps[-1].notes.append(
            f"then EventBridge PutEvents(EventBusName={bus}, DetailType=RotationSucceeded); "
            "a failed step publishes RotationStepFailed"
        )
    windows = _windows(client, described, now())
    return Plan(arn, description.name, strategy, token, steps, checks, notes, windows, expiry)


def _windows(client: SecretsManagerClient, described: Any, now: datetime.datetime) -> WindowReport:
    """The next windows, and the account's secrets sharing the first (ListSecrets: one call
    per 100 secrets); without ListSecrets permission, the windows alone."""
    try:
        return window_report(described, list(list_rotating(client)), now)
    except (ClientError, BotoCoreError) as exc:
        report = window_report(described, [], now)
        report.notes.append(
            f"could not list the account's secrets ({error_code(exc) or type(exc).__name__}): "
            "secrets sharing the window not counted (needs secretsmanager:ListSecrets)"
        )
        return report


def _create(arn: str, token: str, current_id: str | None, username: str) -> PlannedStep:
    return PlannedStep(
        "createSecret",
        secrets_manager=[
            f"DescribeSecret(SecretId={arn})",
            f"GetSecretValue(VersionId={token}, VersionStage=AWSPENDING): no value yet",
            f"GetSecretValue(VersionId={current_id}, VersionStage=AWSCURRENT)",
            f"PutSecretValue(ClientRequestToken={token}, VersionStages=[AWSPENDING], "
            f"SecretString=AWSCURRENT's value with username {username} and a new "
            f"password {REDACTED})",
        ],
        notes=["no database login"],
    )


def _finish(arn: str, token: str, current_id: str | None) -> PlannedStep:
    return PlannedStep(
        "finishSecret",
        secrets_manager=[
            f"DescribeSecret(SecretId={arn})",
            f"UpdateSecretVersionStage(VersionStage=AWSCURRENT, MoveToVersionId={token}, "
            f"RemoveFromVersionId={current_id})",
        ],
        notes=[
            "no database login: testSecret's login, in this same run, proved the new "
            "password (finishSecret run alone logs in with it once first); Secrets Manager "
            f"then takes AWSPENDING off the new version and {current_id} becomes AWSPREVIOUS"
        ],
    )


def _single_user(
    arn: str,
    token: str,
    current_id: str | None,
    current: PostgresSecret,
    connector: PostgresConnector,
) -> list[PlannedStep]:
    auth, floor, user = connector.settings.require_auth, current.sslmode, current.username
    session = f"{AWSCURRENT} ({user})"
    set_step = PlannedStep(
        "setSecret",
        secrets_manager=[f"DescribeSecret(SecretId={arn})"],
        logins=[_login(AWSCURRENT, current, floor, auth, "changes its own password")],
        statements=_transaction(
            [
                _render(pair_lock(), (LOCK_KEY_PARAM,), session),
                _render(alter_password(planned(user), REDACTED), (), session),
            ],
            session,
            begin=WRITES,
        ),
        notes=[
            "only if AWSCURRENT is refused: AWSPENDING (already set: nothing to do), then "
            "AWSPREVIOUS, then the masterarn secret log in and make the same change",
        ],
    )
    test_step = PlannedStep(
        "testSecret",
        secrets_manager=[f"DescribeSecret(SecretId={arn})"],
        logins=[_login(AWSPENDING, current, floor, auth, "the new password")],
        statements=_transaction(
            [_render(probe(connector.settings.test_query), (), f"{AWSPENDING} ({user})")],
            f"{AWSPENDING} ({user})",
        ),
    )
    return [
        _create(arn, token, current_id, user),
        set_step,
        test_step,
        _finish(arn, token, current_id),
    ]


def _multi_user(
    client: SecretsManagerClient,
    *,
    arn: str,
    token: str,
    current_id: str | None,
    current: PostgresSecret,
    connector: PostgresConnector,
) -> tuple[list[PlannedStep], dict[str, Any] | None]:
    """The steps, and when AWSPREVIOUS's user's password expires (None: not read)."""
    auth, floor = connector.settings.require_auth, current.sslmode
    owner = owner_role(current.username)
    user = alternate_username(current.username)  # the pending user: AWSPREVIOUS's
    pending = PostgresSecret(**{**asdict(current), "username": user})
    set_step = PlannedStep(
        "setSecret",
        secrets_manager=[
            f"DescribeSecret(SecretId={arn})",
            f"GetSecretValue(SecretId={current.masterarn}, VersionStage=AWSCURRENT)",
        ],
        logins=[
            _login(AWSPENDING, pending, floor, auth, "refused on a first attempt (a re-attempt "
                   "that logs in stops here: nothing to do)"),
            _login(AWSCURRENT, current, floor, auth, "must log in (confused-deputy guard), "
                   "closed at once"),
        ],
    )  # fmt: skip
    test_step = PlannedStep(
        "testSecret",
        secrets_manager=[f"DescribeSecret(SecretId={arn})"],
        logins=[_login(AWSPENDING, pending, floor, auth, "the new password")],
        statements=_transaction(
            [
                _render(probe(connector.settings.test_query), (), f"{AWSPENDING} ({user})"),
                Statement("SELECT current_user", [], f"{AWSPENDING} ({user})"),
            ],
            f"{AWSPENDING} ({user})",
        ),
        notes=[f"the session must act as {owner!r}"],
    )
    steps = [_create(arn, token, current_id, user), set_step, test_step]
    steps.append(_finish(arn, token, current_id))
    if not current.masterarn:
        set_step.notes.append("the secret has no masterarn: createSecret refuses to start")
        return steps, None
    try:
        master = master_credential(client, current, Deadline.in_seconds(_BUDGET_S))
    except (RotationError, ClientError, BotoCoreError) as exc:
        set_step.notes.append(
            f"the master secret cannot be used: {_scrubber(current).scrub(str(exc))}"
        )
        return steps, None
    session = f"the master ({master.username})"
    set_step.logins.append(_login("the master secret", master, floor, auth, "changes the pair"))
    set_step.statements, found, expiry = _master_statements(
        connector, master, floor=floor, owner=owner, user=user, session=session
    )
    set_step.notes.extend(found)
    return steps, expiry


def _scrubber(*secrets: PostgresSecret) -> Scrubber:
    """Blanks these secrets' passwords out of an error before it is printed."""
    scrubber = Scrubber()
    for secret in secrets:
        scrubber.add(secret.password)
    return scrubber


def _fresh_clone(owner: str) -> RoleState:
    """What a clone looks like right after CREATE ROLE, GRANT owner and SET role."""
    return RoleState({(None, "role"): owner}, -1, "infinity", {owner: (True, True)})


def _master_statements(
    connector: PostgresConnector,
    master: MasterSecret,
    *,
    floor: str,
    owner: str,
    user: str,
    session: str,
) -> tuple[list[Statement], list[str], dict[str, Any] | None]:
    """multi-user setSecret's statements as the master, from what the catalog holds now
    (read-only queries; nothing is changed), and when ``user``'s password expires."""
    notes: list[str] = []
    clone = f"{owner}_clone"
    try:
        as_master = open_master(connector, master, Deadline.in_seconds(_BUDGET_S), floor=floor)
    except RotationError as exc:
        _scrubber(master).scrub_exception_chain(exc)
        notes.append(f"the master does not log in now ({exc.problem}): statements not known")
        return [], notes, None
    try:
        with as_master:
            with as_master.transaction(writes=False) as conn:
                exists = conn.execute(role_exists(), (user,)).fetchone() is not None
            sessions = find_sessions(as_master, [user])
            version = as_master.info.server_version
            with as_master.transaction(writes=False) as conn:
                states = read_states(conn, (owner, clone))
                # The plan's own read, not a statement the rotation makes: when the
                # AWSPREVIOUS user's password expires, judged on the server's clock.
                expiry = read_expiry(conn, user)
    except psycopg.Error as exc:
        # A master without the catalog privileges, a server that went away: the CLI's
        # one-line error with the cause and its fix, not a traceback.
        error = statement_error(exc, f"reading the catalog as the master ({master.username})")
        _scrubber(master).scrub_exception_chain(error)
        raise error from exc
    statements = _master_transaction(
        [_render(sees_all_sessions(), (), session), _render(sessions_of(), ([user],), session)],
        session,
        writes=False,  # the straggler check reads (handlers.pg_sessions)
    )
    if sessions.sessions:
        notes.append(
            f"{len(sessions.sessions)} session(s) are logged in as {user!r} now: stragglers "
            "(STRAGGLER_POLICY=refuse would fail setSecret until they leave)"
        )
    # The master's guard (handlers.pg_authority) reads these in the same transaction.
    target = planned(user)
    changes = [
        _render(pair_lock(), (LOCK_KEY_PARAM,), session),
        _render(role_exists(), (user,), session),
        _render(session_role(), (), session),
        _render(privileged_closure(), ([owner, clone], list(PRIVILEGED_ROLE_NAMES)), session),
    ]
    if exists:
        changes.append(_render(is_member_of(), (owner, clone), session))
        changes.append(_render(alter_password(target, REDACTED), (), session))
    else:
        changes.append(_render(create_login_role(target, REDACTED), (), session))
    if user != owner:
        changes += [
            _render(grant_membership(owner, target), (), session),
            _render(default_role(target, owner), (), session),
        ]
    # The rotation's expiry comes off the user rotated in (handlers.pg_roles
    # _restore_validity reads the pair's validity; PREVIOUS_PASSWORD_TTL).
    changes.append(_render(role_limits(), ([owner, clone],), session))
    if user != owner:
        reads = [
            _render(role_settings(), ([owner, clone],), session),
            _render(role_memberships(version), ([owner, clone],), session),
            _render(role_limits(), ([owner, clone],), session),
        ]
        changes += reads
        parity = _plan(
            states[owner], states.get(clone) or _fresh_clone(owner), owner=owner, clone=target,
            master=master.username, with_options=version >= 160000,
        )  # fmt: skip
        for change in parity:
            # match_owner runs each change in a nested transaction: psycopg names the
            # savepoint after the nesting depth (2, inside setSecret's transaction).
            savepoint = '"_pg3_2"'
            changes += [
                Statement(f"SAVEPOINT {savepoint}", [], session),
                _render(change.statement, (), session),
                Statement(f"RELEASE {savepoint}", [], session),
            ]
        if parity:
            changes += reads  # the exact check after copying
        notes.append(
            f"the clone is made to match {owner!r}: "
            + (", ".join(change.item for change in parity) or "nothing differs")
        )
    else:
        notes.append(f"{owner!r} is rotated back in: the clone (AWSCURRENT) is not touched")
    if expiry is not None and expiry["set_by"] == "rotation":
        notes.append(
            f"{user!r} carries the last rotation's expiry (PREVIOUS_PASSWORD_TTL): this "
            "setSecret gives it a new password and the operator's validity back"
        )
    return statements + _master_transaction(changes, session, writes=True), notes, expiry


# -- output -------------------------------------------------------------------------------


def _render_header(plan: Plan, console: Any) -> None:
    console.line(f"Plan for {plan.name} ({plan.strategy}), token {plan.token}")
    console.line(f"ARN  {plan.secret}")
    for note in plan.notes:
        console.line(f"  {note}")
    if plan.previous_password_expiry is not None:
        expiry = plan.previous_password_expiry
        console.line(f"  {expiry['user']} ({AWSPREVIOUS}): {expiry['summary']}")


def render_plan(plan: Plan, console: Any) -> None:
    _render_header(plan, console)
    for step in plan.steps:
        console.heading(step.step)
        for call in step.secrets_manager:
            console.line(f"  call  {call}")
        for login in step.logins:
            console.line(f"  login {login.line()}")
        for statement in step.statements:
            console.line(f"  sql   [{statement.session}] {statement.line()}")
        for note in step.notes:
            console.line(f"  note  {note}")
    if plan.windows is not None:
        _render_windows(plan.windows, console)
    console.heading("Checks (rotation doctor)")
    if not plan.failed_checks:
        console.line("  every check passed")
    for check in plan.failed_checks:
        console.check(check.ok, check.name, check.detail, check.hint)
    console.line("Nothing was changed.")


def _render_windows(report: WindowReport, console: Any) -> None:
    rules = report.schedule or "no schedule"
    if report.duration:
        rules += f", window {report.duration}"
    console.heading(f"Rotation windows ({rules})")
    for start, end in report.windows:
        console.line(f"  {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC")
    if report.windows:
        console.line(
            f"  secrets of this account rotating in the first window: {len(report.sharing)}"
            + (
                f" ({report.unplaced} more with rotation on could not be placed)"
                if report.unplaced
                else ""
            )
        )
    for note in report.notes:
        console.line(f"  note  {note}")
    if report.warning:
        console.line(f"  warning  {report.warning}")


def cmd_plan(args: argparse.Namespace, console: Any) -> int:
    """``rotation plan SECRET --strategy ...``: 0 when doctor finds nothing, else 1."""
    from rotation_tools.cli_session import secrets_manager
    from rotation_tools.infer import strategy_for_command
    from rotation_tools.remedies import Remedies, secret_format_fix

    strategy = strategy_for_command(secrets_manager(args), args.secret, args.strategy, console)
    if strategy is None:
        return 2  # bad usage: the message says which --strategy to pass
    args.strategy = strategy

    try:
        plan = build_plan(
            secrets_manager(args),
            args.secret,
            strategy=args.strategy,
            remedies=Remedies.from_args(args),
        )
    except SecretFormatError as exc:
        # As doctor and verify say it: the one parser's message, and the fix.
        message = f"{exc.problem}: {secret_format_fix()}"
        console.error(message)
        console.result({"ok": False, "error": message})
        return 1
    render_plan(plan, console)
    console.result({"ok": not plan.failed_checks, **plan.as_json()})
    return 1 if plan.failed_checks else 0
