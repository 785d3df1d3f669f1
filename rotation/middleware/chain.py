"""The one interface every cross-cutting layer wraps: an invocation in, an outcome word out.

Vault's database plugin middleware is the model: tracing, metrics and error sanitising each
wrap the same interface and hold the next one, and the plugin knows none of them. Here the
interface is one step of a rotation: :class:`Invocation` (what came in, and the facts the
state machine learned on the way, never a secret value) to an :class:`~rotation.Outcome`
word. A layer is any callable ``layer(invocation, call_next)`` that returns what
``call_next(invocation)`` returned, or raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rotation.event import RotationEvent
from rotation.scrub import Scrubber

__all__ = ["CallNext", "Invocation", "Promotion", "StepMiddleware", "compose"]


@dataclass(frozen=True)
class Promotion:
    """finishSecret moved AWSCURRENT: from which version, and how long the rotation took
    (from createSecret's stored value; None when Secrets Manager did not say)."""

    previous_version_id: str | None
    duration_s: float | None


@dataclass
class Invocation:
    """One invocation of the rotation function, as every layer sees it.

    ``raw`` and ``context`` are what Lambda passed (``raw`` is untrusted: a layer reads it
    defensively). The state machine fills in the rest as it learns it: ``event`` once
    parsed, ``arn`` once DescribeSecret answered (layers that care subscribe with
    :meth:`on_arn`), ``promoted`` when finishSecret moved AWSCURRENT. ``scrubber`` knows
    every secret value the invocation has read so far.
    """

    raw: object
    context: object
    strategy: str
    scrubber: Scrubber
    event: RotationEvent | None = None
    arn: str | None = None
    promoted: Promotion | None = None
    _arn_watchers: list[Callable[[str], None]] = field(default_factory=list, repr=False)

    def on_arn(self, watcher: Callable[[str], None]) -> None:
        """Call ``watcher`` with the secret's ARN when the state machine learns it."""
        self._arn_watchers.append(watcher)

    def found_arn(self, arn: str) -> None:
        """The state machine learned the secret's ARN (DescribeSecret)."""
        self.arn = arn
        for watcher in self._arn_watchers:
            watcher(arn)

    def raw_field(self, name: str) -> object:
        """A field of the event as received, or None (when it is not even a dict)."""
        return self.raw.get(name) if isinstance(self.raw, dict) else None


CallNext = Callable[[Invocation], str]


class StepMiddleware(Protocol):
    """A layer around the rotation step: does its work, calls ``call_next`` once, and
    returns its outcome or lets its exception go (re-raised outside any ``except`` block, so
    that Python chains nothing new to it)."""

    def __call__(self, invocation: Invocation, call_next: CallNext) -> str: ...


def compose(layers: Sequence[StepMiddleware], core: CallNext) -> CallNext:
    """``layers[0]`` outermost, ``core`` innermost: ``layers[0](inv, layers[1](inv, ...))``."""
    handler = core
    for layer in reversed(layers):
        handler = _bind(layer, handler)
    return handler


def _bind(layer: StepMiddleware, call_next: CallNext) -> CallNext:
    def step(invocation: Invocation) -> str:
        return layer(invocation, call_next)

    return step
