"""The handlers' JSON log, captured for assertions."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from rotation.observability import logger


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The handlers' JSON log, formatted by Powertools' own formatter."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield buffer
    finally:
        logger._logger.removeHandler(handler)  # Powertools has no removeHandler
