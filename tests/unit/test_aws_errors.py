import pytest
from botocore.exceptions import ClientError

from rotation_contract.aws_errors import error_code, error_message, failure_kind, http_status


def _client_error(error: dict[str, str], status: int = 400) -> ClientError:
    response = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "GetSecretValue")  # type: ignore[arg-type]


def test_reads_code_message_and_status() -> None:
    exc = _client_error({"Code": "ResourceNotFoundException", "Message": "no such secret"}, 404)
    assert error_code(exc) == "ResourceNotFoundException"
    assert error_message(exc) == "no such secret"
    assert http_status(exc) == 404


def test_anything_else_has_no_code() -> None:
    assert error_code(ValueError("x")) == ""
    assert error_code(ValueError("x"), default="UnknownError") == "UnknownError"
    assert error_message(ValueError("x")) == ""
    assert http_status(ValueError("x")) == 0
    assert error_code(_client_error({})) == ""


@pytest.mark.parametrize(
    ("code", "status", "message", "kind"),
    [
        ("ThrottlingException", 400, "", "transient"),
        ("InternalServiceError", 500, "", "transient"),
        ("", 503, "", "transient"),
        ("", 429, "", "transient"),
        ("AccessDeniedException", 400, "not authorized", "access-denied"),
        ("AccessDeniedException", 400, "Access to KMS is not allowed", "kms"),
        ("DecryptionFailure", 400, "", "kms"),
        ("KMSDisabledException", 400, "", "kms"),
        ("ResourceNotFoundException", 400, "", "not-found"),
        ("InvalidRequestException", 400, "marked for deletion", "deleted"),
        ("ExpiredTokenException", 400, "", "credentials"),
        ("InvalidParameterException", 400, "", "other"),
    ],
)
def test_failure_kinds(code: str, status: int, message: str, kind: str) -> None:
    assert failure_kind(code, status, message) == kind
