"""What every AWS call of this project carries and how long it may take, on both sides.

Shared by the rotation function (:mod:`rotation.clients`) and the application client
(:mod:`rotation_client`): each imports this module, neither imports the other's side.

- The user agent: each side's calls carry ``<distribution>/<version>`` in botocore's
  ``user_agent_extra`` (as aws-secretsmanager-caching does with ``AwsSecretCache/<version>``),
  so CloudTrail tells the rotation function's reads from an application's.
- The time: one attempt's connect and read timeouts are the configured ones, each cut to
  the time its caller has left, so that a call against an endpoint that accepts
  connections and never answers ends when the caller's time does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import Distribution

__all__ = [
    "CLIENT_DISTRIBUTION",
    "ROTATION_DISTRIBUTION",
    "attempt_timeouts",
    "running_version",
    "user_agent_extra",
]

# The distributions, as their pyproject.toml files name them.
ROTATION_DISTRIBUTION = "pg-secrets-rotation"
CLIENT_DISTRIBUTION = "pg-secrets-rotation-client"


@functools.cache
def user_agent_extra(distribution: str) -> str:
    """``<distribution>/<version>`` for botocore's ``user_agent_extra``: the side's name
    and the version of the code that runs (:func:`running_version`)."""
    return f"{distribution}/{running_version()}"


def running_version(distributions: Iterable[Distribution] | None = None) -> str:
    """The version of whichever of this repository's distributions provides the running
    code: the one whose installed files hold this module, else the one installed (an
    editable install lists no module files), the client's first; ``unknown`` only when
    neither is installed (the files run from a checkout).

    Both distributions ship these files (README: one or the other per environment), so an
    application that installed the rotation distribution still reports a version.
    ``distributions`` is for tests (default: the installed ones of these names).
    """
    found = list(_ours() if distributions is None else distributions)
    here = Path(__file__).resolve()
    for dist in found:
        for file in dist.files or ():
            if file.name == here.name and _same_file(dist.locate_file(file), here):
                return dist.version
    return found[0].version if found else "unknown"


def _ours() -> Iterator[Distribution]:
    from importlib.metadata import PackageNotFoundError, distribution  # noqa: PLC0415

    for name in (CLIENT_DISTRIBUTION, ROTATION_DISTRIBUTION):
        try:
            yield distribution(name)
        except PackageNotFoundError:
            continue


def _same_file(path: object, here: Path) -> bool:
    try:
        return Path(str(path)).resolve() == here
    except OSError:
        return False


def attempt_timeouts(configured: tuple[float, float], remaining_s: float) -> tuple[float, float]:
    """The (connect, read) timeouts of one attempt: the configured ones, each cut to the
    time the caller has left."""
    connect, read = configured
    return min(connect, remaining_s), min(read, remaining_s)
