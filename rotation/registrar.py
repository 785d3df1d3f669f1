"""The seam for a token nobody registered: empty in a Lambda, filled by the command.

Secrets Manager registers each rotation's token before it invokes the function (RotateSecret
makes it an AWSPENDING version without a value), so a rotation function's :class:`Rotator`
accepts no other token, and only with rotation enabled on the secret. A rotation run from a
workstation without a function (``rotation rotate``, direct mode) has nobody to register
its token: its createSecret does, through a :class:`PendingRegistrar` the command injects
(``rotation_tools.direct``). Registering races with any rotation Secrets Manager may start
meanwhile, which is why it lives with the command and never on the Lambda's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from rotation.secret import AWSCURRENT, AWSPENDING, SecretDescription
from rotation.store import StoreSession
from rotation.strategy import SecretContext

__all__ = ["PendingRegistrar", "pending_elsewhere"]


class PendingRegistrar(Protocol):
    """Registers createSecret's token when no RotateSecret did.

    With one, :class:`~rotation.Rotator` also runs on a secret whose rotation is not
    enabled (no function rotates it: nothing to race with).
    """

    def check(self, description: SecretDescription, token: str) -> None:
        """createSecret for ``token``, which is no version yet: raise
        :class:`~rotation.StagingError` when it may not be registered now (another rotation
        in progress). Writes nothing."""

    def register(
        self,
        session: StoreSession,
        context: SecretContext,
        secret_string: str,
        rotation_token: str | None,
    ) -> None:
        """Store ``secret_string`` as ``context.token``'s version and make it AWSPENDING; or
        stand back, taking nothing from another rotation, and raise
        :class:`~rotation.StagingError`."""

    def resumed(self, session: StoreSession, context: SecretContext) -> None:
        """createSecret ran again for a token whose value is stored: finish what an
        interrupted :meth:`register` left (nothing when it was not interrupted)."""


def pending_elsewhere(versions: Mapping[str, tuple[str, ...]], token: str) -> list[str]:
    """Versions other than ``token`` holding AWSPENDING for a rotation in progress (that is,
    not merely left on the current version by a finished one)."""
    return [
        version_id
        for version_id, stages in versions.items()
        if version_id != token and AWSPENDING in stages and AWSCURRENT not in stages
    ]
