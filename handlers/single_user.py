"""PostgreSQL single-user rotation: change one user's password in place.

Simple and needs no extra privileges, at the price of a short window in which clients that
still hold the old password cannot open new connections (between setSecret and the moment
they read the new AWSCURRENT). Use the multi-user strategy where that window matters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.master import locate_master, open_master
from handlers.pg_config import (
    ENV_PREVIOUS_PASSWORD_TTL,
    ManagedRoles,
    master_managed_roles,
    previous_password_ttl,
)
from handlers.pg_connect import PostgresConnector
from handlers.pg_errors import ReadOnlyHostError
from handlers.rds import RdsTopology
from rotation.observability import logger
from rotation.retry import Deadline
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS
from rotation.strategy import (
    CreateRequest,
    CreateResult,
    FinishRequest,
    FinishResult,
    SetRequest,
    SetResult,
    TestRequest,
    TestResult,
)
from rotation_contract.pg.errors import AuthenticationError, DatabaseError
from rotation_contract.pg.secret import (
    PostgresSecret,
    check_no_weaker_tls,
    check_same_target,
    parse_postgres_secret,
)
from rotation_contract.pg.settings import PostgresSettings

if TYPE_CHECKING:
    import psycopg

    from handlers.master import MasterSession
    from handlers.pg_authority import MasterAction

__all__ = ["PostgresSingleUser"]

# SQLSTATE read_only_sql_transaction: what a standby answers to ALTER ROLE.
_READ_ONLY = "25006"
# SQLSTATE feature_not_supported: what a standby answers to BEGIN READ WRITE (the
# transaction that changes a password asks for it: handlers.pg_roles.read_write).
_NO_READ_WRITE = "0A000"
# PREVIOUS_PASSWORD_TTL is said to be ignored once per container, not on every step.
_ttl_noted: list[bool] = []


def _note_ttl_ignored() -> None:
    if _ttl_noted or previous_password_ttl() is None:
        return
    _ttl_noted.append(True)
    logger.warning(
        f"{ENV_PREVIOUS_PASSWORD_TTL} is set but single-user rotation ignores it: the old "
        "password stops logging in at setSecret already (it is changed in place). Unset it, "
        "or use the multi-user strategy, where it bounds AWSPREVIOUS"
    )


def _set_password(
    conn: psycopg.Connection[Any] | MasterSession,
    secret: PostgresSecret,
    role: str,
    password: str,
    *,
    as_master: MasterAction | None = None,
) -> None:
    """``ALTER ROLE`` with the pending password, by the role itself (``conn``) or
    (``as_master``) by the master's session through its guard; a read-only host gets its
    own error."""
    # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
    from handlers.master import MasterSession
    from handlers.pg_modes import server_default_mode
    from handlers.pg_roles import (
        in_recovery,
        master_set_password,
        set_own_password,
    )

    try:
        if isinstance(conn, MasterSession):
            assert as_master is not None  # noqa: S101  # the master acts through its guard
            master_set_password(conn, as_master, password)
        else:
            set_own_password(conn, role, password)
    except DatabaseError as exc:
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
        if sqlstate not in (_READ_ONLY, _NO_READ_WRITE):
            raise
        where = f"{secret.host}:{secret.port}"
        if isinstance(conn, MasterSession):
            with conn.transaction(writes=False) as pinned:
                standby = in_recovery(pinned)
        else:
            server_default_mode(conn)
            standby = in_recovery(conn)
        if standby:
            raise ReadOnlyHostError(
                f"the secret's host ({where}) is a read-only standby (a read replica), where "
                f"no password can be changed: {exc.problem}. Point 'host' at the writer (the "
                "primary instance, or the cluster's writer endpoint); an application that "
                "reads from a replica can use the multi-user strategy, whose master changes "
                "passwords on the primary while the users log in at the replica"
            ) from exc
        if sqlstate == _NO_READ_WRITE:
            raise  # not the standby's refusal of BEGIN READ WRITE: some other feature
        raise ReadOnlyHostError(
            f"the session at {where} is read-only although the host is the primary: "
            f"{exc.problem}. Something made the transaction read-only after it began (a "
            "function or trigger setting transaction_read_only); "
            "default_transaction_read_only alone does not (the rotation asks for READ "
            "WRITE). Find what sets it for this role or database and remove it"
        ) from exc


class PostgresSingleUser:
    """The single-user strategy (see the module docstring).

    Parameters
    ----------
    connector:
        Opens connections; inject one with a counting ``connect`` in tests.
    rds:
        The RDS API, for an RDS-managed master secret (recovery only).
    managed_roles:
        The roles the master may repair (``MASTER_MANAGED_ROLES``); by default read from
        the environment at each setSecret, before any login.
    """

    name = "postgres-single-user"

    def __init__(
        self,
        connector: PostgresConnector | None = None,
        rds: RdsTopology | None = None,
        *,
        managed_roles: ManagedRoles | None = None,
    ) -> None:
        self.connector = connector or PostgresConnector()
        self.rds = rds or RdsTopology()
        self.managed_roles = managed_roles

    @property
    def settings(self) -> PostgresSettings:
        return self.connector.settings

    # -- createSecret -----------------------------------------------------------------

    def create(self, request: CreateRequest) -> CreateResult:
        """A copy of the current value with a new password; every other key is kept."""
        value = request.current.json()
        parse_postgres_secret(value, "the AWSCURRENT version")
        return CreateResult(value={**value, "password": request.new_password()})

    # -- setSecret --------------------------------------------------------------------

    def set(self, request: SetRequest) -> SetResult:
        """Give the user the pending password.

        Tries, in order, and stops at the first login that succeeds:

        1. AWSCURRENT: the normal case; log in as the user and change its own password.
        2. AWSPENDING: a re-attempt after a crash that came after the change; nothing to do.
        3. AWSPREVIOUS: the database still has the password before the current one.
        4. the secret named by ``masterarn``, when the secret has one, and only for a role
           listed in ``MASTER_MANAGED_ROLES`` that is neither the master's own nor a
           privileged one (:mod:`handlers.pg_authority`): no label proved the user's
           credential in this rotation, so nothing but the operator's list says the master
           may give this role a password the secret's writer chose.

        Only a refused credential moves on to the next one: a missing database, pg_hba.conf,
        TLS or a server that stays unreachable is the same for every credential, so it fails
        the step at once with its own message (see :mod:`rotation_contract.pg.login`).

        Only a login that succeeds may change the password, and every version must point at
        the same host, port, database and user as AWSCURRENT. Every login uses at least
        AWSCURRENT's TLS mode (an AWSPREVIOUS written before TLS was turned on must not
        send ``ALTER ROLE`` in clear).
        """
        current = parse_postgres_secret(request.current.json(), "the AWSCURRENT version")
        pending = parse_postgres_secret(request.pending.json(), "the AWSPENDING version")
        check_same_target(current, pending, AWSPENDING)
        _note_ttl_ignored()
        # Resolved before any login: a malformed list fails the step before anything happens.
        managed = self.managed_roles or master_managed_roles()
        deadline = request.deadline
        refused: list[AuthenticationError] = []

        outcome = self._change_as(
            current, pending, deadline, AWSCURRENT, refused, floor=current.sslmode
        )
        if outcome is not None:
            return outcome
        login = self.connector.try_login(pending, deadline, who=AWSPENDING, floor=current.sslmode)
        if not isinstance(login, AuthenticationError):
            login.close()
            return SetResult(changed=False, via=AWSPENDING)
        refused.append(login)

        previous_version = request.secrets.version_with_label(AWSPREVIOUS)
        if previous_version is not None:
            previous = parse_postgres_secret(previous_version.json(), "the AWSPREVIOUS version")
            check_same_target(current, previous, AWSPREVIOUS)
            outcome = self._change_as(
                previous, pending, deadline, AWSPREVIOUS, refused, floor=current.sslmode
            )
            if outcome is not None:
                return outcome

        if current.masterarn:
            return self._change_as_master(request, current, pending, refused, managed)
        tried = "; ".join(error.problem for error in refused)
        raise AuthenticationError(
            f"no labelled credential logs in any more, so the password cannot be changed "
            f"({tried}). Reset the user's password to AWSCURRENT's by hand (or create the "
            "user, if the server's log says it does not exist), or add a 'masterarn' to the "
            "secret so rotation can repair it"
        )

    def _change_as(
        self,
        login_as: PostgresSecret,
        pending: PostgresSecret,
        deadline: Deadline,
        who: str,
        refused: list[AuthenticationError],
        *,
        floor: str,
    ) -> SetResult | None:
        """Log in as ``login_as`` and give the user (the same in every version, checked)
        the pending password; None, with the refusal recorded, when the login is refused."""
        login = self.connector.try_login(login_as, deadline, who=who, floor=floor)
        if isinstance(login, AuthenticationError):
            refused.append(login)
            return None
        with login:
            _set_password(login, login_as, pending.username, pending.password)
        return SetResult(changed=True, via=who)

    def _change_as_master(
        self,
        request: SetRequest,
        current: PostgresSecret,
        pending: PostgresSecret,
        refused: list[AuthenticationError],
        managed: ManagedRoles,
    ) -> SetResult:
        assert current.masterarn is not None  # noqa: S101  # checked by the caller
        # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
        from handlers.pg_authority import AuthorityError, MasterAction, precheck

        arn = current.masterarn
        # The rule setSecret of multi-user applies: the master's host, or its RDS-managed
        # database found through the RDS API, must be the user's host or its primary.
        as_master = locate_master(
            current,
            request.secrets.current_of(arn).json(),
            tags=lambda: request.secrets.describe(arn).tags,
            rds=self.rds,
            deadline=request.deadline,
        )
        action = MasterAction(role=current.username, what="single-user recovery", managed=managed)
        tried = "; ".join(error.problem for error in refused)
        try:
            # Before the master logs in: an unlisted role sends its credential nowhere.
            precheck(action, master_user=as_master.username)
        except AuthorityError as exc:
            problem = f"no labelled credential logs in ({tried}); {exc.problem}"
            raise AuthorityError(problem) from exc
        logger.warning(
            "no labelled credential logs in; repairing with the master secret",
            extra={"refused": [error.problem for error in refused]},
        )
        with open_master(
            self.connector, as_master, request.deadline, floor=current.sslmode
        ) as session:
            _set_password(session, as_master, current.username, pending.password, as_master=action)
        return SetResult(changed=True, via="masterarn")

    # -- testSecret -------------------------------------------------------------------

    def test(self, request: TestRequest) -> TestResult:
        """Log in with AWSPENDING (at least AWSCURRENT's TLS) and run the probe query."""
        pending = parse_postgres_secret(request.pending.json(), "the AWSPENDING version")
        floor = parse_postgres_secret(request.current.json(), "the AWSCURRENT version").sslmode
        with self.connector.connect(pending, request.deadline, who=AWSPENDING, floor=floor) as conn:
            # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
            from handlers.pg_roles import run_probe

            run_probe(conn, self.settings.test_query)
        return TestResult()

    # -- finishSecret -----------------------------------------------------------------

    def finish(self, request: FinishRequest) -> FinishResult:
        """Refuse to promote a pending value that is not a secret for the same target."""
        current = parse_postgres_secret(request.current.json(), "the AWSCURRENT version")
        pending = parse_postgres_secret(request.pending.json(), "the AWSPENDING version")
        check_same_target(current, pending, AWSPENDING)
        check_no_weaker_tls(current, pending)
        return FinishResult()
