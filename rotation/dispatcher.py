"""The step dispatcher: checks the event and the token's labels, then calls the strategy.

One ``DescribeSecret`` per invocation answers every label question; version values come
from the store's cache when this container has already seen them. Logging, metrics, the
scrubbing of secret values out of errors, keeping driver errors out of what is raised, and
the proof a pending password logged in before finishSecret promotes it happen here, around
the strategy, so that strategies contain only engine code.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from rotation.config import password_policy_from_env
from rotation.driver_errors import detach_driver_errors
from rotation.errors import RotationError, SecretsManagerError, StagingError
from rotation.event import RotationEvent, Step, parse_event
from rotation.events import RotationEvents
from rotation.metric_names import (
    INVALID_STEP,
    STEP_DIMENSION,
    STEP_DURATION,
    STEP_FAILED,
    STEP_SUCCEEDED,
    STRATEGY_DIMENSION,
)
from rotation.observability import logger, metrics
from rotation.password import generate_password
from rotation.proofs import ProofMemo
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

_metrics_lock = threading.Lock()
# The label a direct rotation stores its new version under until it holds AWSPENDING
# (see Rotator._register_direct); removed again at once. Named for the command that uses
# it, so that one left by a crash explains itself in `rotation status`.
_DIRECT_CLAIM = "rotation-rotate-claim"
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
_LOG_KEYS = ("secret_arn", "step", "token", "strategy", "function_request_id")


class Outcome:
    """What an invocation did, as the word the log and the local driver show."""

    ALREADY_CURRENT = "already-current"
    DONE = "done"
    KEPT = "kept-existing"


@dataclass
class _Facts:
    """What one invocation learned that its rotation events report (never a value)."""

    arn: str | None = None
    # Set when finishSecret moved AWSCURRENT: (previous version id, seconds since created).
    promoted: tuple[str | None, float | None] | None = None


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
    direct:
        For rotating from a workstation without a rotation function (``rotation rotate``):
        rotation need not be enabled on the secret, and createSecret may register a new
        token itself (PutSecretValue creates the AWSPENDING version). Never in a Lambda.
    events:
        Where ``RotationSucceeded`` / ``RotationStepFailed`` go (:mod:`rotation.events`);
        by default ``EVENT_BUS_NAME``, unset meaning none.

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
        direct: bool = False,
        events: RotationEvents | None = None,
    ) -> None:
        self.strategy = strategy
        self.store = store
        self.margin_s = margin_s
        self.clock = clock
        self.direct = direct
        self.events = events if events is not None else RotationEvents.from_env()
        # Which pending values logged in for their token in this container (see _prove).
        self._proofs = ProofMemo(clock=clock)

    # -- the invocation ---------------------------------------------------------------

    def handle(self, event: object, context: object = None) -> str:
        """Run the step the event asks for. Returns an :class:`Outcome` word.

        Raises
        ------
        RotationError
            Any failure, with the secret, step and token filled in and every secret value
            blanked out of the message (and out of every exception it chains to). No
            database driver's error is in its chain (:mod:`rotation.driver_errors`); the
            message names the driver error's class and SQLSTATE instead.
        """
        started = self.clock()
        deadline = Deadline.from_context(context, margin_s=self.margin_s, clock=self.clock)
        parsed: RotationEvent | None = None
        facts = _Facts()
        with self._log_keys(event, context):
            try:
                parsed = parse_event(event)
                outcome = self._dispatch(parsed, deadline, facts)
            except Exception as exc:
                failure = self._contextualise(exc, parsed, event)
            else:
                self._succeeded(parsed, outcome, started, facts, context)
                return outcome
            self._record(parsed, started, succeeded=False)
            logger.error(
                "rotation step failed: %s", failure, extra={"error_type": type(failure).__name__}
            )
            # After the error is complete and scrubbed; never raises, never masks it.
            self.events.step_failed(
                context,
                secret_arn=facts.arn or failure.secret_id,
                step=failure.step,
                token=failure.token,
                strategy=self.strategy.name,
                error=failure,
            )
            # Outside the except block: there, Python would chain the exception being handled
            # (perhaps the driver's, holding the password it tried) to it as __context__.
            raise failure

    def _succeeded(
        self, event: RotationEvent, outcome: str, started: float, facts: _Facts, context: object
    ) -> None:
        self._record(event, started, succeeded=True)
        logger.info("rotation step finished", extra={"outcome": outcome})
        if facts.promoted is not None and facts.arn is not None:
            previous, duration_s = facts.promoted
            self.events.succeeded(
                context,
                secret_arn=facts.arn,
                version_id=event.client_request_token,
                previous_version_id=previous,
                strategy=self.strategy.name,
                duration_s=duration_s,
            )

    def _dispatch(self, event: RotationEvent, deadline: Deadline, facts: _Facts) -> str:
        session = self.store.session(deadline)
        description = session.describe(event.secret_id)
        facts.arn = description.arn
        logger.thread_safe_append_keys(secret_arn=description.arn)
        stages = self._check_labels(event, description, direct=self.direct)
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
        return self._finish(session, context, facts)

    @staticmethod
    def _check_labels(
        event: RotationEvent, description: SecretDescription, *, direct: bool
    ) -> tuple[str, ...]:
        if not description.rotation_enabled and not direct:
            raise StagingError("rotation is not enabled for this secret")
        stages = description.versions.get(event.client_request_token)
        if stages is None and direct and event.step is Step.CREATE:
            # A direct rotation registers its token itself; never while another rotation
            # (Secrets Manager's, or an interrupted one) holds AWSPENDING: taking the
            # label would strand that rotation's password on an unlabelled version.
            holders = _pending_elsewhere(description.versions, event.client_request_token)
            if holders:
                raise StagingError(
                    f"version {holders[0]} already holds AWSPENDING: another rotation is in "
                    "progress, and a direct rotation never takes the label from it. Let it "
                    "finish (`rotation status` shows it), or resume it with its own token "
                    "(`rotation rotate` resumes a rotation in progress by itself)"
                )
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
            if _DIRECT_CLAIM in context.description.versions.get(context.token, ()):
                # A direct rotation stopped between claiming AWSPENDING and dropping its
                # own label (see _register_direct): tidy up as it would have.
                session.remove_stage(context.arn, _DIRECT_CLAIM, context.token)
            return Outcome.KEPT
        current = self._current(session, context)
        policy = password_policy_from_env()
        result = self.strategy.create(
            CreateRequest(
                context=context, current=current, new_password=lambda: generate_password(policy)
            )
        )
        ours = dump_secret_value(result.value)
        if self.direct and context.token not in context.description.versions:
            self._register_direct(session, context, ours, rotation_token)
        else:
            stored = session.put_pending(context.arn, context.token, ours, rotation_token)
            if stored.secret_string != ours:
                logger.info("a concurrent invocation stored the pending value first; keeping it")
                return Outcome.KEPT
        logger.info("stored the pending version")
        return Outcome.DONE

    def _register_direct(
        self,
        session: StoreSession,
        context: SecretContext,
        secret_string: str,
        rotation_token: str | None,
    ) -> None:
        """Store a direct rotation's new version and make it AWSPENDING, or stand back.

        Nobody registered this token (no RotateSecret), so createSecret does. The danger
        is a rotation Secrets Manager starts meanwhile (on its schedule, or someone's
        RotateSecret): it registers its own token as AWSPENDING, and its function may be
        past setSecret, the database already on that token's password. Taking AWSPENDING
        from it would leave that password on an unlabelled version: a lockout without a
        master credential. So AWSPENDING is never taken from another rotation's version:

        1. The value is stored under a label of our own (``_DIRECT_CLAIM``): a new version
           must carry some label, and AWSPENDING would move silently.
        2. AWSPENDING is claimed with UpdateSecretVersionStage, a compare-and-swap on
           Secrets Manager: it names the version we saw holding the label (only ever the
           current version, a finished rotation's leftover: taking it from there loses
           nothing) or none, and fails if the label has moved since. Once we hold it,
           RotateSecret refuses to start ("previous rotation isn't complete").
        3. A second DescribeSecret checks the outcome, for endpoints that do not enforce
           the swap (moto attaches the label to a second version instead): if any other
           version holds AWSPENDING, we take it off ours and stand back.

        Whichever step a concurrent rotation's registration falls between, it keeps its
        label (step 2 fails, or step 3 backs out, removing only our own), AWSCURRENT and
        AWSPREVIOUS are never touched, and the database has not been touched yet (setSecret
        comes later): every labelled credential that worked still works. A crash anywhere
        here leaves at worst our version holding AWSPENDING with a value nothing uses yet
        (the next `rotation rotate` resumes it), or our version with only our own label (the
        next direct rotation's label moves off it).
        """
        arn, token = context.arn, context.token
        leftover = next(
            (
                version_id
                for version_id, stages in context.description.versions.items()
                if AWSPENDING in stages and AWSCURRENT in stages
            ),
            None,
        )
        session.put_pending(arn, token, secret_string, rotation_token, stage=_DIRECT_CLAIM)
        try:
            session.claim_stage(arn, AWSPENDING, token, leftover)
        except SecretsManagerError:
            # The swap failed. Another rotation holding the label now is the usual reason
            # (and then it is a StagingError saying so); else this error stands.
            self._stand_back_if_contested(session, context, claimed=False)
            raise
        self._stand_back_if_contested(session, context, claimed=True)
        session.remove_stage(arn, _DIRECT_CLAIM, token)

    @staticmethod
    def _stand_back_if_contested(
        session: StoreSession, context: SecretContext, *, claimed: bool
    ) -> None:
        """Back out of a direct registration (raising StagingError) when another version
        holds AWSPENDING, or when ours lost it. Returns when the claim stands (``claimed``),
        or when nothing contests a claim that failed for some other reason."""
        arn, token = context.arn, context.token
        after = session.describe(arn)
        others = _pending_elsewhere(after.versions, token)
        ours = after.versions.get(token, ())
        if not others and (AWSPENDING in ours or not claimed):
            if not claimed and _DIRECT_CLAIM in ours:
                session.remove_stage(arn, _DIRECT_CLAIM, token)
            return
        # Only our own version's labels are touched: the other rotation keeps AWSPENDING.
        if AWSPENDING in ours:
            session.remove_stage(arn, AWSPENDING, token)
        if _DIRECT_CLAIM in ours:
            session.remove_stage(arn, _DIRECT_CLAIM, token)
        what = (
            f"version {others[0]} was registered as AWSPENDING by another rotation (Secrets "
            "Manager's rotation function, on its schedule or on request)"
            if others
            else "AWSPENDING was taken off this rotation's version by someone else"
        )
        raise StagingError(
            f"{what} while this direct rotation was starting. This one stood back: the "
            "other rotation keeps its label and goes on undisturbed, and the database was "
            "not touched. Let it finish (`rotation status` shows it); rotate again "
            "afterwards if you still need to"
        )

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

    def _finish(self, session: StoreSession, context: SecretContext, facts: _Facts) -> str:
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
        facts.promoted = (current.version_id, duration_s)
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
            return not _pending_elsewhere(versions, context.token)

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

    # -- cross-cutting ----------------------------------------------------------------

    @contextmanager
    def _log_keys(self, event: object, context: object) -> Iterator[None]:
        raw: dict[str, Any] = event if isinstance(event, dict) else {}
        logger.thread_safe_append_keys(
            secret_arn=raw.get("SecretId"),
            step=raw.get("Step"),
            token=raw.get("ClientRequestToken"),
            strategy=self.strategy.name,
            function_request_id=getattr(context, "aws_request_id", None),
        )
        try:
            yield
        finally:
            logger.thread_safe_remove_keys(_LOG_KEYS)

    def _contextualise(
        self, exc: Exception, event: RotationEvent | None, raw: object
    ) -> RotationError:
        scrubber = self.store.scrubber
        scrubber.scrub_exception_chain(exc)
        if isinstance(exc, RotationError):
            error = exc
        else:
            # A bug or an unmapped driver error: keep its class and (scrubbed) message.
            error = RotationError(f"unexpected {type(exc).__name__}: {scrubber.scrub(str(exc))}")
            error.__cause__ = exc
        # No driver error (whose connection holds the password tried) leaves the handler.
        detach_driver_errors(error)
        error.problem = scrubber.scrub(error.problem)
        raw_map: dict[str, Any] = raw if isinstance(raw, dict) else {}
        return error.with_context(
            secret_id=event.secret_id if event else _str_or_none(raw_map.get("SecretId")),
            step=event.step.value if event else _str_or_none(raw_map.get("Step")),
            token=event.client_request_token
            if event
            else _str_or_none(raw_map.get("ClientRequestToken")),
        )

    def _record(self, event: RotationEvent | None, started: float, *, succeeded: bool) -> None:
        step = event.step.value if event else INVALID_STEP
        elapsed_ms = (self.clock() - started) * 1000.0
        # Powertools' metric set is process-wide: one invocation's dimensions and metrics go
        # out together even where several rotators share a process (the CLI, benchmarks).
        with _metrics_lock:
            metrics.add_dimension(name=STEP_DIMENSION, value=step)
            metrics.add_dimension(name=STRATEGY_DIMENSION, value=self.strategy.name)
            metrics.add_metric(name=STEP_DURATION, unit=MetricUnit.Milliseconds, value=elapsed_ms)
            metrics.add_metric(
                name=STEP_SUCCEEDED if succeeded else STEP_FAILED, unit=MetricUnit.Count, value=1
            )
            metrics.flush_metrics()
            # flush_metrics keeps the set when POWERTOOLS_METRICS_DISABLED is on; a warm
            # container would then pile up dimensions across invocations.
            metrics.clear_metrics()


def _pending_elsewhere(versions: Mapping[str, tuple[str, ...]], token: str) -> list[str]:
    """Versions other than ``token`` holding AWSPENDING for a rotation in progress (that is,
    not merely left on the current version by a finished one)."""
    return [
        version_id
        for version_id, stages in versions.items()
        if version_id != token and AWSPENDING in stages and AWSCURRENT not in stages
    ]


def _restate(error: RotationError, problem: str) -> None:
    """Replace ``error``'s problem in place, keeping its class (which names the cause)."""
    error.problem = problem
    error.args = (problem,)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
