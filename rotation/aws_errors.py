"""What an AWS API error says, read in one place.

botocore's ``ClientError`` carries the service's answer in ``response["Error"]``; this module
reads it without importing botocore, so the application client (which ships without the
Lambda side) and the handlers share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["error_code", "error_message", "http_status"]


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
