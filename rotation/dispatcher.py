"""The rotation state machine: checks the event and the token's labels, then calls the strategy.

One ``DescribeSecret`` per invocation answers every label question; version values come
from the store's cache when this container has already seen them. Proof before promotion
(finishSecret moves AWSCURRENT only to a version whose password logged in) is part of the
state machine, for every strategy: a security invariant, not an optional layer.

What every step also needs (log keys, metrics, the scrubbing of secret values out of
errors, keeping driver errors out of what is raised, rotation events) wraps the state
machine as middleware (:mod:`rotation.middleware`); registering a token that no RotateSecret
registered is the command's, injected (:mod:`rotation.registrar`). Strategies contain only
engine code.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Sequence

from rotation.config import password_policy_from_env
from rotation.errors import RotationError, SecretsManagerError, StagingError
from rotation.event import RotationEvent, Step, parse_event
from rotation.events import RotationEvents
from rotation.middleware import Invocation, Promotion, StepMiddleware, compose, lambda_stack
from rotation.middleware.sanitise import SanitiseErrors
from rotation.observability import logger
from rotation.password import generate_password
from rotation.proofs import ProofMemo
from rotation.registrar import PendingRegistrar, pending_elsewhere
from rotation.retry import DEFAULT_SAFETY_MARGIN_S, Deadline
from rotation.secret import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    SecretDescription,
    SecretVersion,
    dump_secret_value,
)
from rotation.store import SecretStore, StoreSession
from rotation.strategy import (
    CreateRequest,
    FinishCheck,
    FinishRequest,
    PromotedRequest,
    PromotionFollowUp,
    RotationStrategy,
    SecretContext,
    SetRequest,
    TestRequest,
)

__all__ = ["Outcome", "Rotator"]

_SANITISE = SanitiseErrors()

# Why finishSecret refuses a pending version it could not log in with, and the fix.
_UNPROVEN = (
    "refusing to make the pending version AWSCURRENT: its password has not logged in for "
    "this token (proof before promotion: finishSecret moves AWSCURRENT only to a version "
    "whose password has logged in, in testSecret or in finishSecret itself), and logging in "
    "with it now failed"
)
_UNPROVEN_FIX = (
    "Nothing was changed. Run setSecret and testSecret for this token first (Secrets "
    "Manager's re-attempt of the rotation does)"
)


class Outcome:
    """What an invocation did, as the word the log and the local driver show."""

    ALREADY_CURRENT = "already-current"
    DONE = "done"
    KEPT = "kept-existing"


class _Reader:
    """The extra reads a strategy may make, bound to this invocation's session."""

    def __init__(self, session: StoreSession, description: SecretDescription) -> None:
        self._session = session
        self._description = description

    def version_with_label(self, label: str) -> SecretVersion | None:
        version_id = self._description.version_with(label)
        if version_id is None:
            return None
        return self._session.get_version(self._description.arn, version_id, label)

    def current_of(self, secret_id: str) -> SecretVersion:
        return self._session.get_current_of(secret_id)

    def describe(self, secret_id: str) -> SecretDescription:
        return self._session.describe(secret_id)


class Rotator:
    """Runs one rotation step per invocation for one strategy.

    Parameters
    ----------
    strategy:
        The engine-specific part (see :mod:`rotation.strategy`).
    store:
        Secrets Manager access; build it once per container so its cache survives warm
        invocations.
    margin_s:
        Time kept back from the Lambda's remaining time so that a step fails with its own
        message before Lambda kills it.
    events:
        Where ``RotationSucceeded`` / ``RotationStepFailed`` go (:mod:`rotation.events`);
        by default ``EVENT_BUS_NAME``, unset meaning none. For the default ``middleware``
        only (with your own, pass it to :func:`~rotation.middleware.lambda_stack`).
    middleware:
        The layers around each step, outermost first (:mod:`rotation.middleware`); by
        default :func:`~rotation.middleware.lambda_stack`, what a rotation function runs:
        log keys, events, the outcome line, metrics, error sanitising.
    registrar:
        Registers a createSecret token that no RotateSecret registered
        (:mod:`rotation.registrar`); only a rotation run without a function has one
        (``rotation rotate``). None, in a rotation function: the token must be a version
        of the secret, and rotation enabled on it.

    Example
    -------
    >>> rotator = Rotator(MyStrategy(), SecretStore(boto3.client("secretsmanager")))
    >>> def lambda_handler(event, context):
    ...     rotator.handle(event, context)
    """

    def __init__(
        self,
        strategy: RotationStrategy,
        store: SecretStore,
        *,
        margin_s: float = DEFAULT_SAFETY_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
        events: RotationEvents | None = None,
        middleware: Sequence[StepMiddleware] | None = None,
        registrar: PendingRegistrar | None = None,
    ) -> None:
        if middleware is not None and events is not None:
            raise TypeError("pass events to lambda_stack(events=...) in your middleware")
        self.strategy = strategy
        self.store = store
        self.margin_s = margin_s
        self.clock = clock
        # The layers given, outermost first; the sanitiser is not one of them to choose
        # (see :attr:`layers`): one passed in is dropped, as it always runs innermost.
        self.middleware: tuple[StepMiddleware, ...] = tuple(
            layer
            for layer in (
                middleware if middleware is not None else lambda_stack(events=events, clock=clock)
            )
            if not isinstance(layer, SanitiseErrors)
        )
        self.registrar = registrar
        # Which pending values logged in for their token in this container (see _prove).
        self._proofs = ProofMemo(clock=clock)

    @property
    def layers(self) -> tuple[StepMiddleware, ...]:
        """Every layer an invocation runs through, outermost first: the middleware given,
        then the sanitiser. It is part of the state machine, not a choice: always innermost,
        so that no layer (a custom one included) ever sees an unscrubbed error, a driver's
        error or a BaseException holding a secret value."""
        return (*self.middleware, _SANITISE)

    # -- the invocation ---------------------------------------------------------------

    def handle(self, event: object, context: object = None) -> str:
        """Run the step the event asks for, through the middleware. Returns an
        :class:`Outcome` word.

        Raises
        ------
        RotationError
            Any failure, with the secret, step and token filled in and every secret value
            blanked out of the message (and out of every exception it chains to), and no
            database driver's error in its chain (:mod:`rotation.middleware.sanitise`,
            whatever the middleware).
        """
        invocation = Invocation(
            raw=event, context=context, strategy=self.strategy.name, scrubber=self.store.scrubber
        )
        return compose(self.layers, self._step)(invocation)

    def _step(self, invocation: Invocation) -> str:
        """The state machine, innermost: what the middleware wraps."""
        deadline = Deadline.from_context(
            invocation.context, margin_s=self.margin_s, clock=self.clock
        )
        invocation.event = parse_event(invocation.raw)
        return self._dispatch(invocation.event, deadline, invocation)

    def _dispatch(self, event: RotationEvent, deadline: Deadline, invocation: Invocation) -> str:
        session = self.store.session(deadline)
        description = session.describe(event.secret_id)
        invocation.found_arn(description.arn)
        stages = self._check_labels(event, description)
        context = SecretContext(
            secret_id=event.secret_id,
            arn=description.arn,
            name=description.name,
            token=event.client_request_token,
            step=event.step,
            description=description,
        )
        if AWSCURRENT in stages:
            # A re-invocation after the rotation already finished: nothing to do, except
            # what follows the label move when finishSecret did not get that far (it still
            # holds AWSPENDING: Secrets Manager's re-attempt after a crash there).
            logger.info("token is already AWSCURRENT; nothing to do")
            if event.step is Step.FINISH and AWSPENDING in stages:
                token_version = session.get_version(context.arn, context.token, AWSCURRENT)
                previous = _Reader(session, description).version_with_label(AWSPREVIOUS)
                self._follow_up(session, context, token_version, previous)
            return Outcome.ALREADY_CURRENT
        if event.step is Step.CREATE:
            return self._create(session, context, event.rotation_token)
        if event.step is Step.SET:
            return self._set(session, context)
        if event.step is Step.TEST:
            return self._test(session, context)
        return self._finish(session, context, invocation)

    def _check_labels(
        self, event: RotationEvent, description: SecretDescription
    ) -> tuple[str, ...]:
        if not description.rotation_enabled and self.registrar is None:
            raise StagingError("rotation is not enabled for this secret")
        stages = description.versions.get(event.client_request_token)
        if stages is None and self.registrar is not None and event.step is Step.CREATE:
            # createSecret will register the token itself (see rotation.registrar).
            self.registrar.check(description, event.client_request_token)
            return (AWSPENDING,)
        if stages is None:
            raise StagingError("the token is not a version of this secret")
        if AWSCURRENT not in stages and AWSPENDING not in stages:
            raise StagingError(
                "the token's version is not labelled AWSPENDING (labels: "
                f"{', '.join(stages) or 'none'}); this rotation was superseded or completed"
            )
        return stages

    # -- the steps --------------------------------------------------------------------

    def _current(self, session: StoreSession, context: SecretContext) -> SecretVersion:
        version_id = context.description.version_with(AWSCURRENT)
        if version_id is None:
            raise StagingError("no version of this secret is labelled AWSCURRENT")
        return session.get_version(context.arn, version_id, AWSCURRENT)

    def _pending(self, session: StoreSession, context: SecretContext) -> SecretVersion:
        pending = session.get_pending(context.arn, context.token)
        if pending is None:
            raise StagingError("the pending version has no value yet; createSecret must run first")
        return pending

    def _create(
        self, session: StoreSession, context: SecretContext, rotation_token: str | None
    ) -> str:
        if session.get_pending(context.arn, context.token) is not None:
            # A re-attempt: the value for this token was stored before; a version's value
            # is immutable, and generating another would desynchronise a half-done setSecret.
            logger.info("a pending value for this token exists; keeping it")
            if self.registrar is not None:
                self.registrar.resumed(session, context)
            return Outcome.KEPT
        current = self._current(session, context)
        policy = password_policy_from_env()

        def new_password() -> str:
            password = generate_password(policy)
            self.store.scrubber.add(password)  # blanked even if it is never stored
            return password

        result = self.strategy.create(
            CreateRequest(context=context, current=current, new_password=new_password)
        )
        ours = dump_secret_value(result.value)
        if self.registrar is not None and context.token not in context.description.versions:
            self.registrar.register(session, context, ours, rotation_token)
        else:
            stored = session.put_pending(context.arn, context.token, ours, rotation_token)
            if stored.secret_string != ours:
                logger.info("a concurrent invocation stored the pending value first; keeping it")
                return Outcome.KEPT
        logger.info("stored the pending version")
        return Outcome.DONE

    def _set(self, session: StoreSession, context: SecretContext) -> str:
        result = self.strategy.set(
            SetRequest(
                context=context,
                current=self._current(session, context),
                pending=self._pending(session, context),
                secrets=_Reader(session, context.description),
                deadline=session.deadline,
            )
        )
        logger.info(
            "pending credential is in place", extra={"changed": result.changed, "via": result.via}
        )
        return Outcome.DONE if result.changed else Outcome.KEPT

    def _test(self, session: StoreSession, context: SecretContext) -> str:
        pending = self._pending(session, context)
        self.strategy.test(
            TestRequest(
                context=context,
                pending=pending,
                deadline=session.deadline,
                current=self._current(session, context),
            )
        )
        self._proofs.record(context.arn, context.token, pending.secret_string)
        logger.info("pending credential works")
        return Outcome.DONE

    def _finish(self, session: StoreSession, context: SecretContext, invocation: Invocation) -> str:
        # Check what is promoted: a manual or out-of-order invoke must not make a version
        # with no value, or with a value for another target, the one applications read.
        pending = session.get_pending(context.arn, context.token)
        if pending is None:
            raise StagingError(
                "the pending version has no value; refusing to make it AWSCURRENT "
                "(run createSecret, setSecret and testSecret for this token first)"
            )
        pending.json()  # a JSON object, or a SecretFormatError naming the version
        current = self._current(session, context)
        if isinstance(self.strategy, FinishCheck):
            self.strategy.finish(FinishRequest(context=context, current=current, pending=pending))
        self._prove(session, context, current, pending)
        try:
            session.move_current(context.arn, context.token, current.version_id)
        except SecretsManagerError:
            # A concurrent finishSecret may have moved AWSCURRENT first, so that ours named
            # a version that no longer holds it. Converged, if the token is current now.
            if AWSCURRENT in session.describe(context.arn).versions.get(context.token, ()):
                logger.info("a concurrent invocation moved AWSCURRENT first; nothing to do")
                self._follow_up(session, context, pending, current)
                return Outcome.ALREADY_CURRENT
            raise
        # AWSPENDING can sit on one version only, and it is on ours: no other version can
        # carry it. Secrets Manager takes it off ours once this step returns.
        logger.info(
            "moved AWSCURRENT to the pending version", extra={"previous": current.version_id}
        )
        created = session.created_at(context.arn, context.token)
        duration_s = (
            (datetime.datetime.now(datetime.UTC) - created).total_seconds() if created else None
        )
        invocation.promoted = Promotion(current.version_id, duration_s)
        self._follow_up(session, context, pending, current)
        return Outcome.DONE

    def _follow_up(
        self,
        session: StoreSession,
        context: SecretContext,
        promoted: SecretVersion,
        previous: SecretVersion | None,
    ) -> None:
        """The strategy's work after AWSCURRENT moved (:class:`PromotionFollowUp`), if any.
        Its failure fails finishSecret, saying that AWSCURRENT moved and works."""
        if not isinstance(self.strategy, PromotionFollowUp):
            return

        def still_promoted() -> bool:
            versions = session.describe(context.arn).versions
            if AWSCURRENT not in versions.get(context.token, ()):
                return False
            if previous is not None and AWSPREVIOUS not in versions.get(previous.version_id, ()):
                return False
            return not pending_elsewhere(versions, context.token)

        def prove() -> None:
            self._prove(session, context, promoted, promoted)

        request = PromotedRequest(
            context=context,
            current=promoted,
            previous=previous,
            secrets=_Reader(session, context.description),
            deadline=session.deadline,
            still_promoted=still_promoted,
            prove=prove,
        )
        try:
            self.strategy.promoted(request)
        except RotationError as exc:
            _restate(
                exc,
                f"AWSCURRENT is on the new version (its password logged in), but what follows "
                f"the move failed: {exc.problem.rstrip('.')}. Secrets Manager's re-attempt of "
                "the rotation (or finishSecret run again for this token) does it again",
            )
            raise

    def _prove(
        self,
        session: StoreSession,
        context: SecretContext,
        current: SecretVersion,
        pending: SecretVersion,
    ) -> None:
        """Proof before promotion: the pending password must have logged in for this token.

        Secrets Manager runs testSecret just before, usually in this same container: its
        login is the proof, remembered here, and finishSecret costs nothing more. Otherwise
        (a new container, a manual or out-of-order invoke, an old proof) the strategy's own
        test runs now: one login. Done here, once, for every strategy, after the cheap
        checks (a pending value for another target never gets a login).
        """
        if self._proofs.holds(context.arn, context.token, pending.secret_string):
            return
        logger.info("no proof in this container that the pending password logs in; testing")
        request = TestRequest(
            context=context, pending=pending, deadline=session.deadline, current=current
        )
        try:
            self.strategy.test(request)
        except RotationError as exc:
            _restate(exc, f"{_UNPROVEN}: {exc.problem.rstrip('.')}. {_UNPROVEN_FIX}")
            raise
        except Exception as exc:
            raise StagingError(
                f"{_UNPROVEN}: unexpected {type(exc).__name__}: {exc}. {_UNPROVEN_FIX}"
            ) from exc
        self._proofs.record(context.arn, context.token, pending.secret_string)
        logger.info("pending credential works")


def _restate(error: RotationError, problem: str) -> None:
    """Replace ``error``'s problem in place, keeping its class (which names the cause)."""
    error.problem = problem
    error.args = (problem,)
