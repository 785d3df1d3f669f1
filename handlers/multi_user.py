"""PostgreSQL multi-user rotation: alternate between a user and its clone.

Each rotation changes the password of the user that is *not* current (``name`` ⇄
``name_clone``), with the master credential named by ``masterarn``. Clients holding
AWSCURRENT keep working throughout: their user's password does not change in this rotation.

Ownership, done better than the AWS reference. The reference grants the original role to the
clone, so tables the clone creates are owned by the clone and a migration run under one user
breaks the other. Here the clone is a member of the original *and* its sessions start as the
original (``ALTER ROLE clone SET role = original``): whatever either user creates is owned by
the original role, and both can use and alter all of it. ``session_user`` still tells the
two apart in logs and ``pg_stat_activity``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.master import locate_master, open_master
from handlers.pg_authorised import CLONE_SUFFIX
from handlers.pg_config import ENV_PREVIOUS_PASSWORD_TTL, previous_password_ttl, straggler_policy
from handlers.pg_connect import PostgresConnector
from handlers.pg_errors import ReplicaLagError
from handlers.rds import RdsTopology
from rotation.errors import SecretFormatError
from rotation.observability import logger
from rotation.retry import Deadline, RetryPolicy, call_with_retries
from rotation.secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS
from rotation.strategy import (
    CreateRequest,
    CreateResult,
    FinishRequest,
    FinishResult,
    PromotedRequest,
    SecretReader,
    SetRequest,
    SetResult,
    TestRequest,
    TestResult,
)
from rotation_contract.pg.errors import AuthenticationError, DatabaseError
from rotation_contract.pg.secret import (
    MasterSecret,
    PostgresSecret,
    check_no_weaker_tls,
    check_same_target,
    parse_postgres_secret,
)

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "CLONE_SUFFIX",
    "REPLICA_WAIT",
    "PostgresMultiUser",
    "alternate_username",
    "owner_role",
]

# PostgreSQL truncates identifiers longer than NAMEDATALEN - 1 bytes (not characters).
MAX_IDENTIFIER_BYTES = 63
# How testSecret waits for the new password to reach a standby ``host``: until it logs in or
# the step's deadline (which always bounds it) is near; the attempts only cap a long deadline.
REPLICA_WAIT = RetryPolicy(attempts=60, initial_wait_s=0.2, max_wait_s=2.0, jitter_s=0.2)


def owner_role(username: str) -> str:
    """The role that owns what both users create: the name without ``_clone``."""
    return username.removesuffix(CLONE_SUFFIX)


def alternate_username(username: str) -> str:
    """``name`` -> ``name_clone`` -> ``name``.

    Raises
    ------
    SecretFormatError
        When the clone's name would pass PostgreSQL's 63-byte identifier limit (which would
        silently truncate it into another name).
    """
    if username.endswith(CLONE_SUFFIX):
        return owner_role(username)
    clone = username + CLONE_SUFFIX
    size = len(clone.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise SecretFormatError(
            f"the clone user name {clone!r} would be {size} bytes, over PostgreSQL's "
            f"{MAX_IDENTIFIER_BYTES}-byte limit; shorten the username"
        )
    return clone


class PostgresMultiUser:
    """The multi-user strategy (see the module docstring).

    Parameters
    ----------
    connector:
        Opens connections; inject one with a counting ``connect`` in tests.
    rds:
        The RDS API, for RDS-managed master secrets and read-replica hosts.
    replica_wait:
        How testSecret waits for the new password to reach a standby ``host``
        (:data:`REPLICA_WAIT`); inject one with a recording ``sleep`` in tests.
    stragglers:
        ``warn`` or ``refuse``: what setSecret does when the user it is about to change
        still has sessions (:mod:`handlers.pg_sessions`); ``STRAGGLER_POLICY`` by default,
        read at each setSecret.
    previous_ttl:
        Seconds after finishSecret after which AWSPREVIOUS's password stops logging in
        (:mod:`handlers.pg_expiry`); ``PREVIOUS_PASSWORD_TTL`` by default, read at each
        finishSecret; None (unset): it works until the next rotation.
    """

    name = "postgres-multi-user"

    def __init__(
        self,
        connector: PostgresConnector | None = None,
        rds: RdsTopology | None = None,
        *,
        replica_wait: RetryPolicy | None = None,
        stragglers: str | None = None,
        previous_ttl: int | None = None,
    ) -> None:
        self.connector = connector or PostgresConnector()
        self.rds = rds or RdsTopology()
        self.replica_wait = replica_wait or REPLICA_WAIT
        self.stragglers = stragglers
        self.previous_ttl = previous_ttl

    # -- createSecret -----------------------------------------------------------------

    def create(self, request: CreateRequest) -> CreateResult:
        """The current value with the other user's name and a new password."""
        value = request.current.json()
        current = parse_postgres_secret(value, "the AWSCURRENT version")
        if not current.masterarn:
            raise SecretFormatError(
                "multi-user rotation needs a 'masterarn' (the ARN of the secret with the "
                "credential that creates and alters the users)"
            )
        return CreateResult(
            value={
                **value,
                "username": alternate_username(current.username),
                "password": request.new_password(),
            }
        )

    # -- setSecret --------------------------------------------------------------------

    def set(self, request: SetRequest) -> SetResult:
        """Create the other user, or change its password, as the master.

        Refuses before changing anything when the pending version points at another host,
        port or database, or names a user other than the current one's alternate, or when
        the master secret is for another server; and refuses unless the current credential
        logs in (so nobody who can only write a pending version can make the master act on
        a database the secret is not about).

        Quiet (the contract's *Quiet rotation*): it logs in only with passwords that work,
        AWSCURRENT then the master, and never tries AWSPENDING first, which on every first
        attempt would leave a refused login in the server's log. A re-attempt after the
        change runs the same statements again and they change nothing: the verifier is
        salted by the token (:mod:`handlers.pg_scram`), so the same bytes are stored again,
        and the rest finds its change made (see the README, *Quiet rotation*).
        """
        current = parse_postgres_secret(request.current.json(), "the AWSCURRENT version")
        pending = parse_postgres_secret(request.pending.json(), "the AWSPENDING version")
        self._check_pending(current, pending)
        # Resolved before any login: a bad value fails the step before anything happens.
        policy = self.stragglers or straggler_policy()
        # Checked before any login: a master secret for another server is refused without
        # touching the database, re-attempts included.
        master = self._master(request.secrets, request.deadline, current)
        floor = current.sslmode
        # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
        from handlers.pg_authority import MasterAction, precheck

        owner = owner_role(current.username)
        # The guard's grounds (handlers.pg_authority): the master may change the partner of
        # the user whose AWSCURRENT logs in below, and only that. What needs no database
        # (the master's own user) is refused before any login.
        action = MasterAction(
            role=pending.username,
            what="multi-user setSecret",
            pair=(owner, owner + CLONE_SUFFIX),
            proven=current.username,
            may_create=True,
        )
        precheck(action, master_user=master.username)

        login = self.connector.try_login(current, request.deadline, who=AWSCURRENT, floor=floor)
        if isinstance(login, AuthenticationError):
            # Not a clean rotation any more. A re-attempt whose change was made may still
            # complete: if AWSPENDING logs in, there is nothing to do (one more login, and a
            # refused one is already in the log). The master is never used without grounds.
            already = self.connector.try_login(
                pending, request.deadline, who=AWSPENDING, floor=floor
            )
            if not isinstance(already, AuthenticationError):
                already.close()
                return SetResult(changed=False, via=AWSPENDING)
            raise AuthenticationError(
                f"{login.problem}; the current credential must log in before the master may "
                "change the other user (confused-deputy guard)"
            )
        login.close()

        with open_master(self.connector, master, request.deadline, floor=floor) as session:
            # Imported by the steps that log in only: they load psycopg (~100 ms of cold start).
            from handlers.pg_roles import ensure_alternate_user
            from handlers.pg_sessions import check_stragglers

            # Before the change, on the master's session: no extra connection. Refusing
            # here changes nothing, and the re-attempt runs this again.
            check_stragglers(session, user=pending.username, policy=policy, strategy=self.name)
            created = ensure_alternate_user(
                session, action, password=pending.password, token=request.context.token
            )
        if created:
            logger.info("created the alternate user", extra={"user": pending.username})
        return SetResult(changed=True, via="masterarn")

    @staticmethod
    def _check_pending(current: PostgresSecret, pending: PostgresSecret) -> None:
        check_same_target(current, pending, AWSPENDING, same_user=False)
        expected = alternate_username(current.username)
        if pending.username != expected:
            raise SecretFormatError(
                f"the AWSPENDING version names user {pending.username!r}, but the alternate "
                f"of {current.username!r} is {expected!r}; refusing"
            )

    def _master(
        self, secrets: SecretReader, deadline: Deadline, current: PostgresSecret
    ) -> MasterSecret:
        """The master credential, logging in at the primary the user's host belongs to
        (:func:`handlers.master.locate_master`: the same rule on every path)."""
        if current.masterarn is None:
            raise SecretFormatError(
                "multi-user rotation needs a 'masterarn' (the ARN of the secret with the "
                "credential that creates and alters the users)"
            )
        arn = current.masterarn
        return locate_master(
            current,
            secrets.current_of(arn).json(),
            tags=lambda: secrets.describe(arn).tags,
            rds=self.rds,
            deadline=deadline,
        )

    # -- testSecret -------------------------------------------------------------------

    def test(self, request: TestRequest) -> TestResult:
        """Log in as the pending user (at least AWSCURRENT's TLS), run the probe, and check it
        acts as the owner role.

        ``host`` may be a read replica while the master changed the password on the primary:
        the change reaches the replica a moment later. So when the pending login is refused,
        AWSCURRENT (whose password this rotation did not touch) logs in to ask whether the
        host is a standby; if it is, the pending login is retried until it succeeds or the
        step's time runs out (:class:`ReplicaLagError`). On a primary a refusal is final.
        Safe to re-run: it changes nothing.
        """
        pending = parse_postgres_secret(request.pending.json(), "the AWSPENDING version")
        current = parse_postgres_secret(request.current.json(), "the AWSCURRENT version")
        floor = current.sslmode
        with self._pending_login(pending, current, request.deadline, floor=floor) as conn:
            # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
            from handlers.pg_roles import acting_role, run_probe

            run_probe(conn, self.connector.settings.test_query)
            acting = acting_role(conn)
        owner = owner_role(pending.username)
        if acting != owner:
            raise DatabaseError(
                f"the pending user {pending.username!r} acts as {acting!r}, "
                f"not as the owner role {owner!r}"
            )
        return TestResult()

    def _pending_login(
        self, pending: PostgresSecret, current: PostgresSecret, deadline: Deadline, *, floor: str
    ) -> psycopg.Connection[Any]:
        login = self.connector.try_login(pending, deadline, who=AWSPENDING, floor=floor)
        if not isinstance(login, AuthenticationError):
            return login
        if not self._is_standby(current, deadline, floor=floor):
            raise login
        logger.info(
            "the pending password has not reached the standby yet; waiting",
            extra={"host": pending.host, "port": pending.port},
        )
        attempts = {"n": 1}

        def attempt() -> psycopg.Connection[Any]:
            attempts["n"] += 1
            again = self.connector.try_login(pending, deadline, who=AWSPENDING, floor=floor)
            if isinstance(again, AuthenticationError):
                raise again
            return again

        try:
            return call_with_retries(
                attempt,
                retry_on=AuthenticationError,
                deadline=deadline,
                policy=self.replica_wait,
                what="waiting for the pending password on the standby",
            )
        except AuthenticationError as still:
            raise ReplicaLagError(
                f"the new password has not reached the standby at {pending.host}:"
                f"{pending.port} after {attempts['n']} logins within the step's time "
                f"({still.problem}). The secret's host is a read replica and the master "
                "changed the password on the primary: replication is lagging or stopped. "
                "Secrets Manager's re-attempt tests again; if it never arrives, check "
                "replication (pg_stat_replication on the primary, the replica's ReplicaLag)"
            ) from still

    def _is_standby(self, current: PostgresSecret, deadline: Deadline, *, floor: str) -> bool:
        """Whether ``host`` is in recovery, asked as AWSCURRENT (False when that is refused
        too: then nothing says the refusal is a matter of time)."""
        login = self.connector.try_login(current, deadline, who=AWSCURRENT, floor=floor)
        if isinstance(login, AuthenticationError):
            return False
        # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
        from handlers.pg_roles import in_recovery

        with login:
            return in_recovery(login)

    # -- finishSecret -----------------------------------------------------------------

    def finish(self, request: FinishRequest) -> FinishResult:
        """Refuse to promote a pending value that is not a secret for the same target."""
        current = parse_postgres_secret(request.current.json(), "the AWSCURRENT version")
        pending = parse_postgres_secret(request.pending.json(), "the AWSPENDING version")
        self._check_pending(current, pending)
        check_no_weaker_tls(current, pending)
        return FinishResult()

    # -- after the label move ------------------------------------------------------------

    def promoted(self, request: PromotedRequest) -> None:
        """With ``PREVIOUS_PASSWORD_TTL``: give the AWSPREVIOUS user a ``VALID UNTIL`` at
        most N seconds ahead (:mod:`handlers.pg_expiry`), as the master, and warn about its
        sessions still open, with the time. One more login (the master's); none when unset.

        The master's grounds are the pair of the new AWSCURRENT user, whose password logged
        in for this token (``request.prove``: free after testSecret in this container).
        """
        ttl = self.previous_ttl if self.previous_ttl is not None else previous_password_ttl()
        if ttl is None or request.previous is None:
            return
        current = parse_postgres_secret(request.current.json(), "the AWSCURRENT version")
        previous = parse_postgres_secret(request.previous.json(), "the AWSPREVIOUS version")
        check_same_target(current, previous, AWSPREVIOUS, same_user=False)
        if previous.username != alternate_username(current.username):
            logger.warning(
                f"{ENV_PREVIOUS_PASSWORD_TTL}: AWSPREVIOUS is not the pair's other user; no "
                "expiry set",
                extra={"previous_user": previous.username},
            )
            return
        master = self._master(request.secrets, request.deadline, current)
        # Imported by the steps that log in only: it loads psycopg (~100 ms of cold start).
        from handlers.pg_authority import MasterAction, precheck
        from handlers.pg_roles import expire_previous
        from handlers.pg_sessions import report_open_sessions

        owner = owner_role(current.username)
        action = MasterAction(
            role=previous.username,
            what="multi-user finishSecret (AWSPREVIOUS's expiry)",
            pair=(owner, owner + CLONE_SUFFIX),
            proven=current.username,
        )
        precheck(action, master_user=master.username)
        request.prove()
        with open_master(
            self.connector, master, request.deadline, floor=current.sslmode
        ) as session:
            expiry = expire_previous(
                session, action, seconds=ttl, still_promoted=request.still_promoted
            )
            if expiry is None:
                return
            logger.info(
                "the previous user's password expires",
                extra={"user": previous.username, "valid_until": expiry, "ttl_s": ttl},
            )
            report_open_sessions(
                session, user=previous.username, valid_until=expiry, strategy=self.name
            )
