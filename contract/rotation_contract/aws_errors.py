"""What an AWS API error says, read in one place.

botocore's ``ClientError`` carries the service's answer in ``response["Error"]``; this module
reads it without importing botocore, so the application client (which ships without the
Lambda side) and the handlers share it, and says once what kind of failure each code is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "BAD_CREDENTIALS_CODES",
    "DENIED_CODES",
    "KMS_CODES",
    "NOT_FOUND_CODES",
    "SCHEDULED_FOR_DELETION_CODES",
    "TRANSIENT_CODES",
    "FailureKind",
    "error_code",
    "error_message",
    "failure_kind",
    "http_status",
]


def _error(exc: BaseException) -> Mapping[str, Any]:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return {}
    error = response.get("Error")
    return error if isinstance(error, Mapping) else {}


def error_code(exc: BaseException, default: str = "") -> str:
    """The AWS error code of a ``ClientError`` (``default`` for anything without one)."""
    return str(_error(exc).get("Code") or default)


def error_message(exc: BaseException) -> str:
    """The service's message of a ``ClientError`` ("" when it has none). AWS messages name
    resources and actions, never secret values."""
    return str(_error(exc).get("Message") or "")


def http_status(exc: BaseException) -> int:
    """The HTTP status of a ``ClientError``'s response (0 when unknown)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return 0
    meta = response.get("ResponseMetadata")
    status = meta.get("HTTPStatusCode") if isinstance(meta, Mapping) else None
    return status if isinstance(status, int) else 0


# -- what kind of failure an error code is (one place, for both sides and the tooling) -----

# "Try again": throttling and the services' own transient faults (Secrets Manager says
# ThrottlingException, RDS says Throttling). Any HTTP 5xx answer counts as well.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalServiceError",
        "InternalFailure",
        "InternalServiceFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
# The secret's KMS key: Secrets Manager says DecryptionFailure (the key is disabled, pending
# deletion, or its policy does not let the caller decrypt); KMS's own codes pass through in
# some answers.
KMS_CODES = frozenset(
    {
        "DecryptionFailure",
        "EncryptionFailure",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "KMSInvalidKeyUsageException",
        "DisabledException",
    }
)
BAD_CREDENTIALS_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "ExpiredToken",
        "SignatureDoesNotMatch",
    }
)
# GetSecretValue answers InvalidRequestException for a secret scheduled for deletion.
SCHEDULED_FOR_DELETION_CODES = frozenset({"InvalidRequestException"})

FailureKind = Literal[
    "transient", "not-found", "deleted", "kms", "access-denied", "credentials", "other"
]
# HTTP 429: too many requests, whoever answers it (the Lambda extension does).
_TOO_MANY_REQUESTS = 429


def failure_kind(code: str, status: int = 0, message: str = "") -> FailureKind:
    """What an AWS error answer means for whoever asked: ``transient`` (worth asking again
    later: throttled, the service's own fault, any 5xx), ``not-found``, ``deleted``
    (scheduled for deletion), ``kms`` (the key is disabled, deleted or not usable by the
    caller), ``access-denied``, ``credentials`` (refused or expired), or ``other``."""
    denied = code in DENIED_CODES or status == 403
    kinds: list[tuple[bool, FailureKind]] = [
        (code in TRANSIENT_CODES or status >= 500 or status == _TOO_MANY_REQUESTS, "transient"),
        (code in NOT_FOUND_CODES, "not-found"),
        (code in SCHEDULED_FOR_DELETION_CODES, "deleted"),
        (code in KMS_CODES or (denied and "kms" in message.lower()), "kms"),
        (denied, "access-denied"),
        (code in BAD_CREDENTIALS_CODES, "credentials"),
    ]
    return next((kind for matches, kind in kinds if matches), "other")
