"""The step dispatcher: checks the event and the token's labels, then calls the strategy.

One ``DescribeSecret`` per invocation answers every label question; version values come
from the store's cache when this container has already seen them. Logging, metrics and the
scrubbing of secret values out of errors happen here, around the strategy, so that
strategies contain only engine code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from rotation.config import password_policy_from_env
from rotation.errors import RotationError, SecretFormatError, StagingError
from rotation.event import RotationEvent, Step, parse_event
from rotation.observability import logger, metrics
from rotation.password import generate_password
from rotation.retry import DEFAULT_SAFETY_MARGIN_S, Deadline
from rotation.secret import AWSCURRENT, AWSPENDING, SecretDescription, SecretVersion
from rotation.store import SecretStore, StoreSession
from rotation.strategy import (
    CreateRequest,
    RotationStrategy,
    SecretContext,
    SetRequest,
    TestRequest,
)

__all__ = ["Outcome", "Rotator"]

_metrics_lock = threading.Lock()
_LOG_KEYS = ("secret_arn", "step", "token", "strategy", "function_request_id")


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
    direct:
        For rotating from a workstation without a rotation function (``rotation rotate``):
        rotation need not be enabled on the secret, and createSecret may register a new
        token itself (PutSecretValue creates the AWSPENDING version). Never in a Lambda.

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
    ) -> None:
        self.strategy = strategy
        self.store = store
        self.margin_s = margin_s
        self.clock = clock
        self.direct = direct

    # -- the invocation ---------------------------------------------------------------

    def handle(self, event: object, context: object = None) -> str:
        """Run the step the event asks for. Returns an :class:`Outcome` word.

        Raises
        ------
        RotationError
            Any failure, with the secret, step and token filled in and every secret value
            blanked out of the message (and out of every exception it chains to).
        """
        started = self.clock()
        deadline = Deadline.from_context(context, margin_s=self.margin_s, clock=self.clock)
        parsed: RotationEvent | None = None
        with self._log_keys(event, context):
            try:
                parsed = parse_event(event)
                outcome = self._dispatch(parsed, deadline)
            except Exception as exc:
                error = self._contextualise(exc, parsed, event)
                self._record(parsed, started, succeeded=False)
                logger.error(
                    "rotation step failed: %s", error, extra={"error_type": type(error).__name__}
                )
                if error is exc:
                    raise
                raise error from exc
            self._record(parsed, started, succeeded=True)
            logger.info("rotation step finished", extra={"outcome": outcome})
            return outcome

    def _dispatch(self, event: RotationEvent, deadline: Deadline) -> str:
        session = self.store.session(deadline)
        description = session.describe(event.secret_id)
        logger.thread_safe_append_keys(secret_arn=description.arn)
        stages = self._check_labels(event, description, direct=self.direct)
        if AWSCURRENT in stages:
            # A re-invocation after the rotation already finished: nothing to do.
            logger.info("token is already AWSCURRENT; nothing to do")
            return Outcome.ALREADY_CURRENT
        context = SecretContext(
            secret_id=event.secret_id,
            arn=description.arn,
            name=description.name,
            token=event.client_request_token,
            step=event.step,
            description=description,
        )
        if event.step is Step.CREATE:
            return self._create(session, context, event.rotation_token)
        if event.step is Step.SET:
            return self._set(session, context)
        if event.step is Step.TEST:
            return self._test(session, context)
        return self._finish(session, context)

    @staticmethod
    def _check_labels(
        event: RotationEvent, description: SecretDescription, *, direct: bool
    ) -> tuple[str, ...]:
        if not description.rotation_enabled and not direct:
            raise StagingError("rotation is not enabled for this secret")
        stages = description.versions.get(event.client_request_token)
        if stages is None and direct and event.step is Step.CREATE:
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
            return Outcome.KEPT
        current = self._current(session, context)
        policy = password_policy_from_env()
        result = self.strategy.create(
            CreateRequest(
                context=context, current=current, new_password=lambda: generate_password(policy)
            )
        )
        value = dict(result.value)
        # As UTF-8, the way Secrets Manager stores it: \u escapes would grow each non-ASCII
        # character to up to 12 bytes and push a secret near the limit over it. Without
        # spaces only if the usual form does not fit (a compact original at the limit).
        limit = 65536  # Secrets Manager's SecretString limit, in bytes
        for separators in ((", ", ": "), (",", ":")):
            secret_string = json.dumps(value, ensure_ascii=False, separators=separators)
            # surrogatepass: a lone surrogate (a "\ud800" escape in the original) counts too.
            size = len(secret_string.encode("utf-8", "surrogatepass"))
            if size <= limit:
                break
        else:
            raise SecretFormatError(
                f"the new version would be {size} bytes, over Secrets Manager's limit of "
                f"{limit} bytes for a secret value; nothing was written. Make the secret "
                "smaller (remove keys the application does not need) or lower PASSWORD_LENGTH"
            )
        session.put_pending(context.arn, context.token, secret_string, rotation_token)
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
        self.strategy.test(
            TestRequest(
                context=context,
                pending=self._pending(session, context),
                deadline=session.deadline,
            )
        )
        logger.info("pending credential works")
        return Outcome.DONE

    def _finish(self, session: StoreSession, context: SecretContext) -> str:
        current_id = context.description.version_with(AWSCURRENT)
        session.move_current(context.arn, context.token, current_id)
        # AWSPENDING can sit on one version only, and it is on ours: no other version can
        # carry it. Secrets Manager takes it off ours once this step returns.
        logger.info("moved AWSCURRENT to the pending version", extra={"previous": current_id})
        return Outcome.DONE

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
        step = event.step.value if event else "invalid"
        elapsed_ms = (self.clock() - started) * 1000.0
        # Powertools' metric set is process-wide: one invocation's dimensions and metrics go
        # out together even where several rotators share a process (the CLI, benchmarks).
        with _metrics_lock:
            metrics.add_dimension(name="Step", value=step)
            metrics.add_dimension(name="Strategy", value=self.strategy.name)
            metrics.add_metric(name="StepDuration", unit=MetricUnit.Milliseconds, value=elapsed_ms)
            metrics.add_metric(
                name="StepSucceeded" if succeeded else "StepFailed", unit=MetricUnit.Count, value=1
            )
            metrics.flush_metrics()
            # flush_metrics keeps the set when POWERTOOLS_METRICS_DISABLED is on; a warm
            # container would then pile up dimensions across invocations.
            metrics.clear_metrics()


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
