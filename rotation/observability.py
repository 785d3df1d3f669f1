"""The framework's one logger, its metrics, and the scrubber both pass through.

Built once per process (a Lambda container) at import: Powertools' ``Logger`` is a
process-wide singleton per service name anyway. Every module of the framework and of the
handlers logs through :data:`logger`, so the scrubbing filter sees every line.
Tracer is deliberately absent: it needs aws-xray-sdk and costs ~200 ms at cold start.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

from rotation import metric_names
from rotation.scrub import Scrubber, ScrubbingFilter

__all__ = ["METRICS_NAMESPACE", "SERVICE", "logger", "metrics", "publish_count", "scrubber"]

SERVICE = metric_names.SERVICE
METRICS_NAMESPACE = metric_names.NAMESPACE


class _ScrubbingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, blanking secrets out of the finished document.

    The filter below cleans each record; this catches what a record does not hold: keys
    added with ``append_keys``, and records of child loggers (``Logger(child=True)`` in a
    strategy's module), which propagate to this handler without passing the logger's
    filters. Scrubbing the document before serialisation, not the JSON text after it,
    also catches secrets whose characters JSON would escape.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self._scrubber = scrubber

    def serialize(self, log: Any) -> str:
        return super().serialize(self._scrubber.scrub_value(log))


scrubber = Scrubber()
logger = Logger(service=SERVICE, logger_formatter=_ScrubbingFormatter(scrubber))
# A logger-level filter runs before any handler, including ones tests or users add later,
# and rewrites the record itself: every handler and formatter after it sees blanked text.
logger.addFilter(ScrubbingFilter(scrubber))
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


def publish_count(
    name: str,
    value: float,
    dimensions: dict[str, str],
    *,
    metadata: dict[str, str] | None = None,
) -> None:
    """Emit one metric now, as its own EMF document with its own dimensions.

    Not through :data:`metrics`: that set is process-wide and flushed by the dispatcher
    once per step with the step's dimensions; a strategy adding to it from another thread
    (the CLI, benchmarks) could mix invocations. Honours ``POWERTOOLS_METRICS_DISABLED``.
    Used for ``StragglerSessions`` (multi-user setSecret) and ``EventsNotPublished``.
    """
    emf = AmazonCloudWatchEMFProvider(namespace=METRICS_NAMESPACE, service=SERVICE)
    for key, dimension in dimensions.items():
        emf.add_dimension(name=key, value=dimension)
    emf.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for key, item in (metadata or {}).items():  # searchable in the log, not a dimension
        emf.add_metadata(key=key, value=item)
    emf.flush_metrics()


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
