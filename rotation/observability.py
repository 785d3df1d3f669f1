"""The framework's one logger, its metrics, and the scrubber both pass through.

Built once per process (a Lambda container) at import: Powertools' ``Logger`` is a
process-wide singleton per service name anyway. Every module of the framework and of the
handlers logs through :data:`logger`, so the scrubbing filter sees every line.
Tracer is deliberately absent: it needs aws-xray-sdk and costs ~200 ms at cold start.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics

from rotation.scrub import Scrubber, ScrubbingFilter

__all__ = ["METRICS_NAMESPACE", "SERVICE", "logger", "metrics", "scrubber"]

SERVICE = "rotation"
METRICS_NAMESPACE = "SecretsRotation"

scrubber = Scrubber()
logger = Logger(service=SERVICE)
# A logger-level filter runs before any handler, including ones tests or users add later.
logger.addFilter(ScrubbingFilter(scrubber))
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

# botocore and urllib3 log whole request and response bodies at DEBUG: a GetSecretValue
# answer, a PutSecretValue request. Lambda's advanced logging controls can set the root
# logger to DEBUG, which would put secret values into CloudWatch. Drop those lines.
_WIRE_LOGGERS = (
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.parsers",
    "botocore.auth",
    "botocore.httpsession",
    "botocore.retryhandler",
    "urllib3.connectionpool",
)


class _NoWireDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


for _name in _WIRE_LOGGERS:
    logging.getLogger(_name).addFilter(_NoWireDebug())
