"""Registering a direct rotation's token: what ``rotation rotate`` adds to the Rotator.

A direct rotation runs the handler code from a workstation, without a rotation function:
no RotateSecret registers its token, so its createSecret does, through
:class:`DirectRegistration` (a :class:`rotation.registrar.PendingRegistrar`). Only the
command injects it (:func:`rotation_tools.strategies.build_rotator`); a rotation function's
Rotator has none, and this module is not in the Lambda artifact.
"""

from __future__ import annotations

from rotation.errors import SecretsManagerError, StagingError
from rotation.registrar import pending_elsewhere
from rotation.secret import AWSCURRENT, AWSPENDING, SecretDescription
from rotation.store import StoreSession
from rotation.strategy import SecretContext

__all__ = ["CLAIM", "DirectRegistration"]

# The label a direct rotation stores its new version under until it holds AWSPENDING (see
# DirectRegistration.register); removed again at once. Named for the command that uses it,
# so that one left by a crash explains itself in `rotation status`.
CLAIM = "rotation-rotate-claim"


class DirectRegistration:
    """Registers a direct rotation's token in createSecret, never taking AWSPENDING from
    another rotation (one Secrets Manager starts meanwhile, on its schedule or on request).
    """

    def check(self, description: SecretDescription, token: str) -> None:
        # Never while another rotation (Secrets Manager's, or an interrupted one) holds
        # AWSPENDING: taking the label would strand that rotation's password on an
        # unlabelled version.
        holders = pending_elsewhere(description.versions, token)
        if holders:
            raise StagingError(
                f"version {holders[0]} already holds AWSPENDING: another rotation is in "
                "progress, and a direct rotation never takes the label from it. Let it "
                "finish (`rotation status` shows it), or resume it with its own token "
                "(`rotation rotate` resumes a rotation in progress by itself)"
            )

    def resumed(self, session: StoreSession, context: SecretContext) -> None:
        if CLAIM in context.description.versions.get(context.token, ()):
            # A direct rotation stopped between claiming AWSPENDING and dropping its own
            # label (see register): tidy up as it would have.
            session.remove_stage(context.arn, CLAIM, context.token)

    def register(
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

        1. The value is stored under a label of our own (:data:`CLAIM`): a new version
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
        session.put_pending(arn, token, secret_string, rotation_token, stage=CLAIM)
        try:
            session.claim_stage(arn, AWSPENDING, token, leftover)
        except SecretsManagerError:
            # The swap failed. Another rotation holding the label now is the usual reason
            # (and then it is a StagingError saying so); else this error stands.
            _stand_back_if_contested(session, context, claimed=False)
            raise
        _stand_back_if_contested(session, context, claimed=True)
        session.remove_stage(arn, CLAIM, token)


def _stand_back_if_contested(
    session: StoreSession, context: SecretContext, *, claimed: bool
) -> None:
    """Back out of a direct registration (raising StagingError) when another version holds
    AWSPENDING, or when ours lost it. Returns when the claim stands (``claimed``), or when
    nothing contests a claim that failed for some other reason."""
    arn, token = context.arn, context.token
    after = session.describe(arn)
    others = pending_elsewhere(after.versions, token)
    ours = after.versions.get(token, ())
    if not others and (AWSPENDING in ours or not claimed):
        if not claimed and CLAIM in ours:
            session.remove_stage(arn, CLAIM, token)
        return
    # Only our own version's labels are touched: the other rotation keeps AWSPENDING.
    if AWSPENDING in ours:
        session.remove_stage(arn, AWSPENDING, token)
    if CLAIM in ours:
        session.remove_stage(arn, CLAIM, token)
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
