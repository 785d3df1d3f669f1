from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from rotation import Deadline, RetryPolicy, RotationError
from rotation.retry import call_with_retries
from rotation.scrub import REDACTED, Scrubber, ScrubbingFilter
from rotation_contract.pg.errors import UnreachableError


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


def _waits(policy: RetryPolicy) -> list[float]:
    """The waits ``policy`` makes between attempts at a call that always fails."""
    waits: list[float] = []

    def down() -> None:
        raise UnreachableError("down")

    with pytest.raises(UnreachableError):
        call_with_retries(
            down,
            retry_on=UnreachableError,
            deadline=Deadline.in_seconds(600),
            policy=replace(policy, sleep=waits.append),
            what="test",
        )
    return waits


def test_backoff_doubles_from_the_initial_wait_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=7, initial_wait_s=0.2, max_wait_s=4.0, jitter_s=0.0)
    assert _waits(policy) == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 4.0])


def test_jitter_adds_a_fraction_of_jitter_s_to_each_wait() -> None:
    # The jitter (0.3 s) is wider than the first gap (0.2 s): waits need not be sorted.
    # tenacity also draws a wait after the last attempt (its stop sees the upcoming sleep).
    fractions = iter([0.999, 0.0, 0.5, 0.0])
    policy = RetryPolicy(attempts=4, initial_wait_s=0.2, jitter_s=0.3, rng=fractions.__next__)
    assert _waits(policy) == pytest.approx([0.2 + 0.2997, 0.4, 0.8 + 0.15])


def test_the_default_jitter_stays_within_its_bounds() -> None:
    policy = RetryPolicy(attempts=6, initial_wait_s=0.2, max_wait_s=1.0, jitter_s=0.3)
    for _ in range(20):
        waits = _waits(policy)
        for base, wait in zip([0.2, 0.4, 0.8, 1.0, 1.0], waits, strict=True):
            assert base <= wait < base + 0.3


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


def test_scrubbing_a_chain_blanks_what_a_rotation_error_renders_from() -> None:
    """``--json`` and the verification summary read ``.problem`` directly, not ``args``."""
    scrubber = Scrubber()
    scrubber.add("s3cret-value")
    inner = UnreachableError("inner s3cret-value", secret_id="id-s3cret-value")
    outer = RotationError("outer s3cret-value: refused", step="setSecret")
    outer.__cause__ = inner
    scrubber.scrub_exception_chain(outer)
    assert outer.problem == f"outer {REDACTED}: refused"
    assert str(outer) == f"step setSecret: outer {REDACTED}: refused"
    assert inner.problem == f"inner {REDACTED}"
    assert inner.secret_id == f"id-{REDACTED}"
    assert "s3cret-value" not in str(inner)
    assert outer.args == (f"outer {REDACTED}: refused",)
