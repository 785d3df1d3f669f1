"""Secrets Manager failures told apart, on the error shapes AWS (and moto) answer with."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from rotation.errors import SecretsManagerError
from rotation_tools.aws_problems import explain


def _client_error(code: str, message: str, status: int, operation: str) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)  # type: ignore[arg-type]


CASES = [
    (
        _client_error(
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
            400,
            "DescribeSecret",
        ),
        "not-found",
        "name or ARN",
    ),
    (
        _client_error(
            "AccessDeniedException",
            "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: "
            "secretsmanager:GetSecretValue on resource: app/db",
            400,
            "GetSecretValue",
        ),
        "access-denied",
        "secretsmanager:GetSecretValue",
    ),
    (  # moto: a bare 403 whose message is an XML document
        _client_error("403", "<ErrorResponse>...AccessDenied...</ErrorResponse>", 403, "X"),
        "access-denied",
        "secretsmanager:GetSecretValue",
    ),
    (
        _client_error("AccessDeniedException", "Access to KMS is not allowed", 400, "X"),
        "kms",
        "kms:Decrypt",
    ),
    (
        _client_error(
            "DecryptionFailure",
            "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
            400,
            "GetSecretValue",
        ),
        "kms",
        "kms:Decrypt",
    ),
    (
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
        "unreachable",
        "--endpoint-url",
    ),
    (
        ReadTimeoutError(endpoint_url="http://127.0.0.1:9"),
        "unreachable",
        "network path",
    ),
    (
        _client_error("UnrecognizedClientException", "The security token ...", 400, "X"),
        "credentials",
        "AWS_PROFILE",
    ),
]


@pytest.mark.parametrize(
    ("error", "kind", "fix"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_cause_gets_its_own_fix(error: Exception, kind: str, fix: str) -> None:
    problem = explain(error, secret_id="app/db", operation="GetSecretValue")
    assert problem is not None
    assert problem.kind == kind
    assert fix in problem.fix


def test_a_handler_error_is_explained_by_the_botocore_error_it_was_raised_from() -> None:
    cause = _client_error("DecryptionFailure", "can't decrypt", 400, "GetSecretValue")
    try:
        raise SecretsManagerError("reading AWSCURRENT failed") from cause
    except SecretsManagerError as wrapped:
        problem = explain(wrapped, secret_id="app/db")
    assert problem is not None
    assert problem.kind == "kms"


def test_a_database_error_is_not_an_aws_problem() -> None:
    assert explain(ValueError("no"), secret_id="app/db") is None
