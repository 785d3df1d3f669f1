"""What an invocation raises: a RotationError with its context, no secret value, no driver
error (Vault's sanitising middleware, around the same interface)."""

from __future__ import annotations

from rotation.driver_errors import detach_driver_errors
from rotation.errors import RotationError
from rotation.middleware.chain import CallNext, Invocation

__all__ = ["SanitiseErrors"]


class SanitiseErrors:
    """Turns whatever the step raised into the error that may leave the handler.

    * Every secret value the invocation read is blanked out of the message and out of every
      exception it chains to (:meth:`rotation.scrub.Scrubber.scrub_exception_chain`).
    * Anything but a :class:`RotationError` (a bug, an unmapped driver error) becomes one
      that keeps its class name and (scrubbed) message.
    * No database driver's error, whose connection holds the password it tried, stays in the
      chain (:mod:`rotation.driver_errors`); the message names its class and SQLSTATE.
    * The secret, step and token are filled in, from the parsed event or, when it did not
      parse, from the raw one.

    Innermost: every other layer sees the finished error.
    """

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str:
        failure: BaseException
        try:
            return call_next(invocation)
        except Exception as exc:
            failure = _contextualise(exc, invocation)
        except BaseException as exc:
            # Not turned into a RotationError (it must still stop what it stops), but
            # scrubbed and cut loose from any driver error all the same; a group of them
            # (asyncio's) is rebuilt without its driver members.
            invocation.scrubber.scrub_exception_chain(exc)
            holder = RotationError("")
            holder.__cause__ = exc
            detach_driver_errors(holder, invocation.scrubber.scrub)
            cleaned = holder.__cause__
            if cleaned is exc or cleaned is None:
                raise
            failure = cleaned
        # Outside the except block: there, Python would chain the exception being handled
        # (perhaps the driver's, holding the password it tried) to it as __context__.
        raise failure


def _contextualise(exc: Exception, invocation: Invocation) -> RotationError:
    scrubber = invocation.scrubber
    scrubber.scrub_exception_chain(exc)
    if isinstance(exc, RotationError):
        error = exc
    else:
        # A bug or an unmapped driver error: keep its class and (scrubbed) message.
        error = RotationError(f"unexpected {type(exc).__name__}: {scrubber.scrub(str(exc))}")
        error.__cause__ = exc
    detach_driver_errors(error, scrubber.scrub)
    error.problem = scrubber.scrub(error.problem)
    event = invocation.event
    return error.with_context(
        secret_id=event.secret_id if event else _str_or_none(invocation.raw_field("SecretId")),
        step=event.step.value if event else _str_or_none(invocation.raw_field("Step")),
        token=event.client_request_token
        if event
        else _str_or_none(invocation.raw_field("ClientRequestToken")),
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
