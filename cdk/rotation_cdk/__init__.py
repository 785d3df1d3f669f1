"""An AWS CDK (v2, Python) construct that deploys this project's PostgreSQL rotation.

Installed with the ``cdk`` extra (``aws-cdk-lib``, ``constructs``); the Lambda artifact and
the application client never import it. See the README's "Deploying with the AWS CDK".
"""

from rotation_cdk._construct import (
    HANDLERS,
    PostgresRotation,
    Strategy,
    lambda_code,
    password_environment,
)

__all__ = ["HANDLERS", "PostgresRotation", "Strategy", "lambda_code", "password_environment"]
