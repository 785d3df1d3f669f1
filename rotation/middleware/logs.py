"""The log's side of each invocation: the keys every line carries, and the outcome line."""

from __future__ import annotations

from rotation.middleware.chain import CallNext, Invocation
from rotation.observability import logger

__all__ = ["LogKeys", "LogOutcome"]

_LOG_KEYS = ("secret_arn", "step", "token", "strategy", "function_request_id")


class LogKeys:
    """Adds the secret, step, token, strategy and request id to every line logged during
    the invocation (Powertools' appended keys), the secret's ARN as soon as it is known, and
    takes them off afterwards, so that a warm container's next invocation starts clean.

    Outermost: the lines of every other layer carry the keys too.
    """

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        logger.thread_safe_append_keys(
            secret_arn=invocation.raw_field("SecretId"),
            step=invocation.raw_field("Step"),
            token=invocation.raw_field("ClientRequestToken"),
            strategy=invocation.strategy,
            function_request_id=getattr(invocation.context, "aws_request_id", None),
        )
        invocation.on_arn(lambda arn: logger.thread_safe_append_keys(secret_arn=arn))
        try:
            return call_next(invocation)
        finally:
            logger.thread_safe_remove_keys(_LOG_KEYS)


class LogOutcome:
    """One line per invocation: ``rotation step finished`` with the outcome, or ``rotation
    step failed`` with the error (scrubbed and complete when it runs outside
    :class:`~rotation.middleware.sanitise.SanitiseErrors`)."""

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        try:
            outcome = call_next(invocation)
        except Exception as exc:
            failure = exc
        else:
            logger.info("rotation step finished", extra={"outcome": outcome})
            return outcome
        logger.error(
            "rotation step failed: %s", failure, extra={"error_type": type(failure).__name__}
        )
        raise failure
