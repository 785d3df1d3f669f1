from __future__ import annotations

import logging

import pytest

from rotation import Deadline, RetryPolicy, RotationError, UnreachableError
from rotation.retry import call_with_retries
from rotation.scrub import REDACTED, Scrubber, ScrubbingFilter


def test_scrubber_blanks_registered_values_and_secret_fields() -> None:
    scrubber = Scrubber()
    scrubber.add_secret_json(
        '{"password": "hunter2-xyz"}', {"password": "hunter2-xyz", "host": "db"}
    )
    assert scrubber.scrub("pw hunter2-xyz on db") == f"pw {REDACTED} on db"


def test_scrubber_rewrites_a_chain_of_exceptions() -> None:
    scrubber = Scrubber()
    scrubber.add("s3cret-value")
    outer = RotationError("outer")
    outer.__cause__ = ValueError("inner s3cret-value")
    scrubber.scrub_exception_chain(outer)
    assert str(outer.__cause__) == f"inner {REDACTED}"


def test_scrubbing_filter_renders_and_blanks(caplog: pytest.LogCaptureFixture) -> None:
    scrubber = Scrubber()
    scrubber.add("topsecret-1")
    log = logging.getLogger("test.scrub")
    log.addFilter(ScrubbingFilter(scrubber))
    with caplog.at_level(logging.INFO, logger="test.scrub"):
        log.info("value %s here", "topsecret-1")
    assert "topsecret-1" not in caplog.text
    assert REDACTED in caplog.text


def test_retries_back_off_then_reraise_our_error() -> None:
    waits: list[float] = []
    attempts = []

    def flaky() -> None:
        attempts.append(1)
        raise UnreachableError("down")

    with pytest.raises(UnreachableError, match="down"):
        call_with_retries(
            flaky,
            retry_on=UnreachableError,
            deadline=Deadline.in_seconds(60),
            policy=RetryPolicy(attempts=4, sleep=waits.append),
            what="test",
        )
    assert len(attempts) == 4
    assert len(waits) == 3
    assert waits == sorted(waits)


def test_retries_stop_when_the_deadline_is_near() -> None:
    attempts = []

    def flaky() -> None:
        attempts.append(1)
        raise UnreachableError("down")

    with pytest.raises(UnreachableError):
        call_with_retries(
            flaky,
            retry_on=UnreachableError,
            deadline=Deadline.in_seconds(0.5),
            policy=RetryPolicy(attempts=10, sleep=lambda _: None),
            what="test",
        )
    assert attempts == [1]


def test_other_errors_are_not_retried() -> None:
    attempts = []

    def broken() -> None:
        attempts.append(1)
        raise KeyError("x")

    with pytest.raises(KeyError):
        call_with_retries(
            broken, retry_on=UnreachableError, deadline=Deadline.in_seconds(60), what="t"
        )
    assert attempts == [1]


def test_deadline_from_a_lambda_context_keeps_a_margin() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 10_000

    now = [100.0]
    deadline = Deadline.from_context(Context(), margin_s=2.0, clock=lambda: now[0])
    assert deadline.remaining() == pytest.approx(8.0)
    now[0] += 9
    assert deadline.remaining() == 0.0
