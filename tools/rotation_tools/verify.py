"""``rotation verify``: the credentials' check (:mod:`handlers.verify`) from a workstation,
and ``--reconcile``, which repairs drift with the master credential.

Reconciling sets the database back to what Secrets Manager holds, never the other way round:
applications read AWSCURRENT, so the database must accept it.

Drift means no stored password logs in, so nothing proves the secret's writer may have the
master act on the role it names: the master acts only on a role listed in
``MASTER_MANAGED_ROLES`` (the environment, or ``--master-managed-roles``), never on its own
role or a privileged one (the guard, :mod:`handlers.pg_authority`).

- single-user: the master sets the user's password to AWSCURRENT's (a SCRAM verifier
  computed here, as setSecret does: ``handlers.pg_roles.master_set_password``);
- multi-user: the master resets each drifted user of an existing, verified pair with its
  version's password, through setSecret's own ``ensure_alternate_user``; AWSPREVIOUS must
  name AWSCURRENT's partner, and a user that does not exist is reported, not created (only
  a rotation, whose AWSCURRENT logs in, creates a clone).

Only drift is reconciled: an unreachable or misconfigured secret is not a password problem.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from handlers.master import locate_master, open_master
from handlers.multi_user import CLONE_SUFFIX, owner_role
from handlers.pg_authority import MasterAction, PairError, precheck
from handlers.pg_config import ManagedRoles, master_managed_roles, postgres_settings
from handlers.pg_connect import PostgresConnector
from handlers.pg_roles import ensure_alternate_user, master_set_password
from handlers.rds import RdsTopology
from handlers.verify import CredentialState, Verification, Verifier
from rotation.errors import RotationError
from rotation.retry import Deadline, RetryPolicy
from rotation.secret import AWSCURRENT, AWSPREVIOUS
from rotation.store import SecretStore, StoreSession
from rotation_contract.pg.secret import MasterSecret, PostgresSecret
from rotation_contract.pg.settings import PostgresSettings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["render_verifications", "verify_secrets"]

# Per secret: a server that does not answer is reported after a few seconds, not a minute.
_PER_SECRET_S = 30.0
_RETRIES = RetryPolicy(attempts=2, initial_wait_s=0.2, max_wait_s=1.0, jitter_s=0.1)


def _master(
    session: StoreSession, current: PostgresSecret, deadline: Deadline, rds: RdsTopology
) -> MasterSecret:
    """The master credential, logging in at the user's host or the primary it reads from
    (the rule setSecret applies: :func:`handlers.master.locate_master`)."""
    assert current.masterarn is not None  # noqa: S101  # checked by the caller
    arn = current.masterarn
    return locate_master(
        current,
        session.get_current_of(arn).json(),
        tags=lambda: session.describe(arn).tags,
        rds=rds,
        deadline=deadline,
    )


_WHAT = "rotation verify --reconcile"


def _action(
    strategy: str, secret: PostgresSecret, current: PostgresSecret, managed: ManagedRoles
) -> MasterAction:
    """What the master is asked to do for one drifted version (see the module docstring)."""
    if strategy == "single-user":
        return MasterAction(role=secret.username, what=_WHAT, managed=managed)
    owner = owner_role(current.username)
    # AWSPREVIOUS must be AWSCURRENT's partner: MasterAction refuses a role outside the pair.
    pair = (owner, owner + CLONE_SUFFIX)
    if secret.username not in pair:
        raise PairError(
            f"AWSPREVIOUS names user {secret.username!r}, which is not in AWSCURRENT's pair "
            f"({pair[0]!r}, {pair[1]!r}); refusing to reconcile it. Nothing was changed"
        )
    return MasterAction(role=secret.username, what=_WHAT, pair=pair, managed=managed)


def _reconcile(
    verifier: Verifier,
    result: Verification,
    secret_id: str,
    rds: RdsTopology,
    managed: ManagedRoles,
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
    # Every drifted version is asked of the guard by name before the master logs in: an
    # unlisted role, or the master's own, sends the master's credential nowhere.
    planned = [
        (label, secret, _action(verifier.strategy, secret, current, managed))
        for label in (AWSCURRENT, AWSPREVIOUS)
        if label in drifted and (secret := versions[label]) is not None
    ]
    for _, _, action in planned:
        precheck(action, master_user=master.username)
    actions = []
    with open_master(verifier.connector, master, deadline, floor=current.sslmode) as as_master:
        for label, secret, action in planned:
            if action.pair is None:
                master_set_password(as_master, action, secret.password)
                actions.append(
                    f"set the password of {secret.username!r} back to {label}'s, as the master"
                )
            else:
                ensure_alternate_user(as_master, action, password=secret.password)
                actions.append(
                    f"reset the password of {secret.username!r} with {label}'s password, "
                    "as the master"
                )
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
    managed_roles: ManagedRoles | None = None,
) -> list[Verification]:
    """Verify each secret in turn; with ``reconcile``, repair the ones that drifted, as the
    master, for the roles ``managed_roles`` lists (``MASTER_MANAGED_ROLES`` by default).

    Raises
    ------
    ConfigurationError
        ``MASTER_MANAGED_ROLES`` is malformed (with ``reconcile`` only).
    """
    connector = connector or PostgresConnector(
        settings or postgres_settings(), retry_policy=_RETRIES
    )
    verifier = Verifier(SecretStore(client), connector, strategy)
    rds = rds or RdsTopology()
    managed = (managed_roles or master_managed_roles()) if reconcile else ManagedRoles()
    results = []
    for secret_id in secret_ids:
        result = verifier.verify(secret_id, Deadline.in_seconds(_PER_SECRET_S))
        # A rotation in progress is told apart from drift; _reconcile says why it does not
        # touch it.
        if reconcile and result.state in (CredentialState.DRIFT, CredentialState.ROTATING):
            try:
                result = _reconcile(verifier, result, secret_id, rds, managed)
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
