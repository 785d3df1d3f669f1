"""Keeping the database driver's objects out of the errors that leave the handler.

A driver's error holds the connection it failed on: psycopg's ``Error.pgconn`` is the libpq
connection, and ``pgconn.password`` is the password that was tried. Chained as an error's
``__cause__`` or ``__context__`` (``raise ... from exc``, as every mapping of a driver error
does), it goes wherever the error goes: a log formatter that renders attributes, an error
tracker that pickles the chain, a caller that inspects it. So the dispatcher cuts every
driver error out of the chain of the error it raises, once, here (Vault's sanitising
middleware does the same around its database plugins), after writing what it told (its
class and SQLSTATE) into the message. It also drops any attribute holding a connection and
clears the local variables of the finished frames in each traceback: an error tracker that
records locals (Sentry's Lambda integration does by default) would otherwise send the
secret values that strategy code held in them.

Engine-agnostic: a driver error is recognised by the module of its class (a known driver
package) or by holding a ``pgconn``; nothing here imports a driver.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

from rotation.errors import RotationError

__all__ = ["DRIVER_PACKAGES", "detach_driver_errors", "is_driver_object"]

# Top-level packages whose objects may hold a connection, and with it a password.
DRIVER_PACKAGES = frozenset({"psycopg", "psycopg2", "psycopg_pool", "asyncpg", "pg8000"})


def is_driver_object(value: object) -> bool:
    """Whether ``value`` is a driver's object (an error, a connection, a cursor) or holds a
    libpq connection."""
    if type(value).__module__.partition(".")[0] in DRIVER_PACKAGES:
        return True
    try:
        return getattr(value, "pgconn", None) is not None
    except Exception:  # a property that fails to answer: treat it as holding one
        return True


def detach_driver_errors(
    error: RotationError, blank: Callable[[str], str] | None = None
) -> RotationError:
    """Cut every driver error out of ``error``'s chain (causes, contexts and exception-group
    members), in place; ``blank`` also blanks the messages of the groups it rebuilds.

    The cut errors' class and SQLSTATE are appended to ``error.problem`` when the message
    does not already name them. Attributes and ``args`` of the kept errors that hold a
    driver object are replaced, and their tracebacks' finished frames cleared. Returns
    ``error``.
    """
    facts: list[str] = []
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        pending += _cut_from(link, facts, blank)
    missing = [fact for fact in facts if not _already_said(fact, error.problem)]
    if missing:
        problem = f"{error.problem.rstrip()} ({'; '.join(missing)})"
        error.problem = problem
        error.args = (problem, *error.args[1:])
    return error


def _cut_from(
    link: BaseException, facts: list[str], blank: Callable[[str], str] | None
) -> list[BaseException]:
    """Cut the driver errors ``link`` chains to (and its driver attributes) in place;
    returns what it still renders with, to be walked next."""
    _drop_driver_attributes(link)
    suppress = link.__suppress_context__
    after: list[BaseException] = []
    for name in ("__cause__", "__context__"):
        chained = getattr(link, name)
        if chained is None:
            continue
        if is_driver_object(chained):
            _note(facts, chained)
            setattr(link, name, None)
            continue
        if isinstance(chained, BaseExceptionGroup):
            # A group (a TaskGroup's, say) is immutable: its driver members go by
            # rebuilding it without them.
            chained = _without_drivers(chained, facts, blank)
            setattr(link, name, chained)
        if chained is not None:
            after.append(chained)
    if isinstance(link, BaseExceptionGroup):
        after.extend(link.exceptions)
    link.__suppress_context__ = suppress or link.__cause__ is not None
    if link.__traceback__ is not None:
        # Finished frames only; the ones still running (the dispatcher's) are skipped.
        traceback.clear_frames(link.__traceback__)
    return after


def _note(facts: list[str], driver_error: BaseException) -> None:
    fact = _fact(driver_error)
    if fact not in facts:
        facts.append(fact)


def _without_drivers(
    group: BaseExceptionGroup[BaseException],
    facts: list[str],
    blank: Callable[[str], str] | None,
) -> BaseExceptionGroup[BaseException] | None:
    """``group`` without its driver members, nested groups included, and with its message
    blanked (a group's message is not its ``args``: it takes a new group); its chain,
    traceback and notes carried over. None when nothing else was in it."""
    members: list[BaseException] = []
    for member in group.exceptions:
        if is_driver_object(member):
            _note(facts, member)
        elif isinstance(member, BaseExceptionGroup):
            kept = _without_drivers(member, facts, blank)
            if kept is not None:
                members.append(kept)
        else:
            members.append(member)
    message = blank(group.message) if blank is not None else group.message
    if (
        message == group.message
        and len(members) == len(group.exceptions)
        and all(kept is original for kept, original in zip(members, group.exceptions, strict=True))
    ):
        return group
    if not members:
        return None
    if message != group.message and type(group) in (ExceptionGroup, BaseExceptionGroup):
        derived = BaseExceptionGroup(message, members)  # an ExceptionGroup if all are
    else:
        derived = group.derive(members)
    derived.__cause__, derived.__context__ = group.__cause__, group.__context__
    derived.__suppress_context__ = group.__suppress_context__
    derived.__traceback__ = group.__traceback__
    if hasattr(group, "__notes__"):
        derived.__notes__ = list(group.__notes__)
    return derived


def _fact(exc: BaseException) -> str:
    kind = type(exc)
    sqlstate = getattr(exc, "sqlstate", None)
    where = f"{kind.__module__}.{kind.__qualname__}"
    return f"driver error {where}, SQLSTATE {sqlstate}" if sqlstate else f"driver error {where}"


def _already_said(fact: str, problem: str) -> bool:
    """Whether the message names the class and (if any) the SQLSTATE already."""
    where, _, sqlstate = fact.removeprefix("driver error ").partition(", SQLSTATE ")
    class_name = where.rpartition(".")[2]
    return class_name in problem and (not sqlstate or sqlstate in problem)


def _drop_driver_attributes(exc: BaseException) -> None:
    for name, value in list(vars(exc).items()):
        if not name.startswith("__") and is_driver_object(value):
            setattr(exc, name, None)
    if any(is_driver_object(arg) for arg in exc.args):
        exc.args = tuple(
            f"<{type(arg).__name__}>" if is_driver_object(arg) else arg for arg in exc.args
        )
