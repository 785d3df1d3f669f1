"""Why a Secrets Manager call failed, told apart, with the fix for each cause.

The command's user sees one line; it must point at the real cause. A secret that does not
exist, a caller without permission, a KMS key the caller may not use and an endpoint that
does not answer each need a different fix, and botocore reports them in different shapes:
an error code (``ResourceNotFoundException``, ``AccessDeniedException``,
``DecryptionFailure``), an HTTP status (moto answers a denied call with a bare 403), or a
transport exception raised before any answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from rotation_contract.aws_errors import (
    BAD_CREDENTIALS_CODES,
    DENIED_CODES,
    KMS_CODES,
    NOT_FOUND_CODES,
    error_code,
    error_message,
    http_status,
)

__all__ = ["AwsProblem", "aws_cause", "explain"]


@dataclass(frozen=True)
class AwsProblem:
    """One failed call: ``kind`` (``not-found``, ``access-denied``, ``kms``, ``unreachable``,
    ``credentials``, ``region``, ``other``), what happened, and what to do."""

    kind: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}: {self.fix}" if self.fix else self.problem


def aws_cause(exc: BaseException) -> ClientError | BotoCoreError | None:
    """The botocore error ``exc`` is or was raised from (a handler wraps it in its own)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ClientError | BotoCoreError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


@dataclass(frozen=True)
class _Where:
    endpoint: str | None
    region: str | None

    @property
    def at(self) -> str:
        return f" at {self.endpoint}" if self.endpoint else ""

    def note(self, cause: str) -> str:
        """``(cause, region r)``: the error's own name, and the region (often the wrong one)."""
        return f" ({cause}, region {self.region})" if self.region else f" ({cause})"


def explain(
    exc: BaseException,
    *,
    secret_id: str,
    operation: str | None = None,
    endpoint: str | None = None,
    region: str | None = None,
) -> AwsProblem | None:
    """What a failed Secrets Manager call on ``secret_id`` means, or None when ``exc`` is not
    (and was not raised from) a botocore error.

    Parameters
    ----------
    operation:
        The API operation, when the caller knows it better than the error does.
    endpoint, region:
        Where the call went, for the message (the wrong one is a common cause).
    """
    cause = aws_cause(exc)
    if cause is None:
        return None
    where = _Where(endpoint, region)
    if isinstance(cause, ClientError):
        return _answered(cause, secret_id, operation or cause.operation_name or "the call", where)
    return _unanswered(cause, where)


def _answered(cause: ClientError, secret_id: str, operation: str, where: _Where) -> AwsProblem:
    """Secrets Manager answered, with an error."""
    code = error_code(cause)
    message = error_message(cause)
    denied = code in DENIED_CODES or http_status(cause) == 403
    if code in NOT_FOUND_CODES:
        return AwsProblem(
            "not-found",
            f"Secrets Manager{where.at} has no secret {secret_id}{where.note(code)}",
            "check the secret's name or ARN, the region (--region, AWS_REGION or "
            "AWS_DEFAULT_REGION) and the endpoint (--endpoint-url)",
        )
    if code in KMS_CODES or (denied and "kms" in message.lower()):
        return AwsProblem(
            "kms",
            f"Secrets Manager could not use the KMS key of {secret_id} for {operation} "
            f"({code or http_status(cause)})",
            "the caller needs kms:Decrypt on the secret's KMS key (granted in the key policy, "
            "not only in IAM), and the key must be enabled; `aws secretsmanager "
            "describe-secret` shows its KmsKeyId",
        )
    if denied:
        return AwsProblem(
            "access-denied",
            f"not allowed to call {operation} on {secret_id} ({code or 403})",
            f"the caller's credentials need secretsmanager:{operation} on it (an IAM policy, "
            "and the secret's resource policy if it has one)",
        )
    if code in BAD_CREDENTIALS_CODES:
        return AwsProblem(
            "credentials",
            f"Secrets Manager{where.at} refused the AWS credentials{where.note(code)}",
            "check AWS_PROFILE or --profile, and that the credentials have not expired",
        )
    return AwsProblem("other", f"{operation} on {secret_id} failed: {code}: {message}", "")


def _unanswered(cause: BotoCoreError, where: _Where) -> AwsProblem:
    """No answer: botocore failed before or instead of one."""
    if isinstance(cause, NoCredentialsError):
        return AwsProblem(
            "credentials",
            "no AWS credentials were found",
            "configure them (aws configure, AWS_PROFILE or --profile); an emulator such as "
            "moto accepts any: AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
        )
    if isinstance(cause, NoRegionError):
        return AwsProblem(
            "region",
            "no AWS region is configured",
            "pass --region, or set AWS_REGION or AWS_DEFAULT_REGION (the AWS CLI v1 reads "
            "only AWS_DEFAULT_REGION), or a region in the profile",
        )
    transport = EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError
    if isinstance(cause, transport | ConnectionClosedError):
        what = "did not answer" if isinstance(cause, ReadTimeoutError) else "could not be reached"
        return AwsProblem(
            "unreachable",
            f"Secrets Manager {what}{where.at}{where.note(type(cause).__name__)}",
            "check --endpoint-url (is the emulator running?), the region, and the network path "
            "to Secrets Manager (proxy, VPC endpoint)",
        )
    return AwsProblem("other", f"{type(cause).__name__}: {cause}", "")
