"""``rotation verify``: the credentials' check (:mod:`handlers.verify`) from a workstation,
and ``--reconcile``, which repairs drift with the master credential.

Reconciling sets the database back to what Secrets Manager holds, never the other way round:
applications read AWSCURRENT, so the database must accept it.

- single-user: the master sets the user's password to AWSCURRENT's (a SCRAM verifier
  computed here, as setSecret does: ``handlers.pg_roles.set_password``);
- multi-user: the master re-creates each drifted user of the pair with its version's
  password, through setSecret's own ``ensure_alternate_user`` (a dropped clone is created
  again as a member acting as the owner; a role outside the pair is refused).

Only drift is reconciled: an unreachable or misconfigured secret is not a password problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from handlers.multi_user import owner_role
from handlers.pg_connect import PostgresConnector
from handlers.pg_roles import ensure_alternate_user, set_password
from handlers.rds import RdsTopology
from handlers.verify import CredentialState, Verification, Verifier
from rotation.config import postgres_settings
from rotation.errors import RotationError, SecretFormatError
from rotation.pg.secret import PostgresSecret, master_login, parse_postgres_secret
from rotation.pg.settings import PostgresSettings
from rotation.retry import Deadline, RetryPolicy
from rotation.secret import AWSCURRENT, AWSPREVIOUS
from rotation.store import SecretStore, StoreSession

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["render_verifications", "verify_secrets"]

# Per secret: a server that does not answer is reported after a few seconds, not a minute.
_PER_SECRET_S = 30.0
_RETRIES = RetryPolicy(attempts=2, initial_wait_s=0.2, max_wait_s=1.0, jitter_s=0.1)


def _master(
    session: StoreSession, current: PostgresSecret, deadline: Deadline, rds: RdsTopology
) -> PostgresSecret:
    """The master credential, logging in at the user's host or the primary it reads from
    (the rule setSecret applies)."""
    assert current.masterarn is not None  # noqa: S101  # checked by the caller
    version = session.get_current_of(current.masterarn)
    value = version.json()
    master = parse_postgres_secret(value, "the master secret", require_engine=False)
    if master.host:
        host, port = master.host, master.port
    else:  # an RDS-managed master secret: the database is in its tags
        host, port = rds.primary_endpoint(session.describe(current.masterarn).tags, deadline)
    if host.lower() != current.host.lower() and not rds.is_reader_of(current.host, host, deadline):
        raise SecretFormatError(
            f"the master secret is for host {host!r}, which is neither the user's host "
            f"({current.host!r}) nor the primary it reads from; refusing to use it"
        )
    return master_login(current, master, host=host, port=port, dbname=value.get("dbname"))


def _reconcile(
    verifier: Verifier, result: Verification, secret_id: str, rds: RdsTopology
) -> Verification:
    """Repair drift as the master; then check again. Returns the new verdict, with what was
    done in ``actions`` (or why nothing was)."""
    if result.rotating is not None:
        # Resetting AWSCURRENT's password now would undo the rotation's setSecret; the
        # rotation itself converges (Secrets Manager re-attempts it; `rotation rotate`
        # resumes it).
        return _with_actions(
            result,
            f"not reconciled: a rotation is in progress (version {result.rotating} is "
            "AWSPENDING); let it finish (the fix says how), then verify again",
        )
    deadline = Deadline.in_seconds(_PER_SECRET_S)
    session = verifier.store.session(deadline)
    credentials = verifier.read(session, secret_id)
    current = credentials.current
    if not current.masterarn:
        return _with_actions(
            result,
            "not reconciled: the secret has no masterarn (add one, or reset the password "
            "to AWSCURRENT's by hand)",
        )
    drifted = {login.label for login in result.logins if login.state is CredentialState.DRIFT}
    versions = {AWSCURRENT: current, AWSPREVIOUS: credentials.previous}
    master = _master(session, current, deadline, rds)
    actions = []
    with verifier.connector.connect(
        master, deadline, who="the master secret", floor=current.sslmode
    ) as conn:
        for label in (AWSCURRENT, AWSPREVIOUS):
            secret = versions[label]
            if label not in drifted or secret is None:
                continue
            if verifier.strategy == "single-user":
                set_password(conn, secret.username, secret.password)
                actions.append(
                    f"set the password of {secret.username!r} back to {label}'s, as the master"
                )
            else:
                created = ensure_alternate_user(
                    conn,
                    user=secret.username,
                    owner=owner_role(secret.username),
                    password=secret.password,
                )
                what = "re-created" if created else "reset the password of"
                actions.append(f"{what} {secret.username!r} with {label}'s password, as the master")
    after = verifier.verify(secret_id, Deadline.in_seconds(_PER_SECRET_S))
    return _with_actions(after, *actions)


def _with_actions(result: Verification, *actions: str) -> Verification:
    return dataclasses.replace(result, actions=(*result.actions, *actions))


def verify_secrets(
    client: SecretsManagerClient,
    secret_ids: Sequence[str],
    *,
    strategy: str,
    reconcile: bool = False,
    settings: PostgresSettings | None = None,
    connector: PostgresConnector | None = None,
    rds: RdsTopology | None = None,
) -> list[Verification]:
    """Verify each secret in turn; with ``reconcile``, repair the ones that drifted."""
    connector = connector or PostgresConnector(
        settings or postgres_settings(), retry_policy=_RETRIES
    )
    verifier = Verifier(SecretStore(client), connector, strategy)
    rds = rds or RdsTopology()
    results = []
    for secret_id in secret_ids:
        result = verifier.verify(secret_id, Deadline.in_seconds(_PER_SECRET_S))
        # A rotation in progress is told apart from drift; _reconcile says why it does not
        # touch it.
        if reconcile and result.state in (CredentialState.DRIFT, CredentialState.ROTATING):
            try:
                result = _reconcile(verifier, result, secret_id, rds)
            except RotationError as exc:
                verifier.store.scrubber.scrub_exception_chain(exc)
                result = _with_actions(result, f"reconcile failed: {exc.problem}")
        results.append(result)
    return results


def render_verifications(
    results: Sequence[Verification],
    console: Any,
    fix: Callable[[Verification], str] = lambda result: result.fix,
) -> None:
    for result in results:
        console.check(
            result.valid,
            f"{result.name or result.secret}: {result.state.value}",
            result.problem,
            fix(result),
        )
        for login in result.logins:
            if result.valid or login.state is CredentialState.VALID:
                console.line(f"       {login.label} ({login.username}): {login.state.value}")
        for action in result.actions:
            console.line(f"       {console.paint('reconcile:', 'warn')} {action}")
    valid = sum(1 for r in results if r.valid)
    console.line(f"{valid} of {len(results)} secrets valid.")
