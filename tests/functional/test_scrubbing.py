"""Every part of a log line is scrubbed: extra fields, nested ones, exception chains.

A third-party strategy logs the pending password every way a logger allows, through the
framework's logger, while the real dispatcher runs its setSecret. What Powertools writes
(CloudWatch's input) is captured at DEBUG from its own handler, and so is what any other
handler (here pytest's) receives.
"""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from rotation import AWSCURRENT, Deadline, Rotator, SecretStore, Step
from rotation.observability import SERVICE, logger
from rotation.scrub import REDACTED, Scrubber, renderings
from rotation.strategy import CreateRequest, CreateResult, SetRequest, SetResult, TestRequest
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


@pytest.fixture
def powertools_output() -> Iterator[io.StringIO]:
    """The Powertools handler's own output (stdout in Lambda), with the logger at DEBUG."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    stream = handler.setStream(buffer)
    level = logging.getLogger(SERVICE).level
    logger.setLevel("DEBUG")
    try:
        yield buffer
    finally:
        handler.setStream(stream)
        logger.setLevel(level)


def _lines(buffer: io.StringIO) -> dict[str, dict[str, Any]]:
    """The JSON lines, by message (a structured message by its JSON text)."""
    lines = map(json.loads, buffer.getvalue().splitlines())
    return {
        line["message"] if isinstance(line["message"], str) else json.dumps(line["message"]): line
        for line in lines
    }


class ChattyStrategy:
    """A user strategy that logs its pending password in every way it can."""

    name = "chatty"

    def __init__(self, log_set: Any) -> None:
        self.log_set = log_set

    def create(self, request: CreateRequest) -> CreateResult:
        return CreateResult(value={**request.current.json(), "password": request.new_password()})

    def set(self, request: SetRequest) -> SetResult:
        self.log_set(request.pending.json()["password"])
        return SetResult(changed=True, via="AWSCURRENT")

    def test(self, request: TestRequest) -> Any:
        raise NotImplementedError


def _set_with(bed: Bed, log_set: Any) -> str:
    """Run createSecret and setSecret of the chatty strategy; returns the pending password."""
    arn = bed.secret({"engine": "postgres", "host": "h", "username": "u", "password": "p0-initial"})
    rotator = Rotator(ChattyStrategy(log_set), SecretStore(bed.handler_client))
    driver = bed.driver(rotator)
    token = driver.begin(arn)
    driver.run(arn, token, [Step.CREATE, Step.SET])
    return str(bed.value(arn, "AWSPENDING")["password"])


def test_a_secret_in_extra_fields_and_arguments_is_blanked(
    bed: Bed, powertools_output: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def log_set(password: str) -> None:
        logger.debug(
            "about to set it",
            extra={
                "new_password": password,
                "attempt": {"user": "u", "tried": [password, {"deep": f"pw={password}"}]},
                "as_tuple": ("u", password),
            },
        )
        logger.info("set %s for %s", password, "u", extra={"count": 1})
        logger.info({"structured": {"password": password}})  # a dict message

    password = _set_with(bed, log_set)
    text = powertools_output.getvalue()
    assert password not in text
    assert password not in caplog.text
    lines = _lines(powertools_output)
    extra = lines["about to set it"]
    assert extra["new_password"] == REDACTED
    assert extra["attempt"] == {"user": "u", "tried": [REDACTED, {"deep": f"pw={REDACTED}"}]}
    assert extra["as_tuple"] == ["u", REDACTED]
    assert lines[f"set {REDACTED} for u"]["count"] == 1
    assert json.dumps({"structured": {"password": REDACTED}}) in lines
    for record in caplog.records:  # every other handler sees the blanked record too
        assert password not in str(vars(record))


def test_a_secret_in_a_logged_exception_chain_is_blanked(
    bed: Bed, powertools_output: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []

    def log_set(password: str) -> None:
        try:
            try:
                raise ValueError(f"server refused {password}")
            except ValueError as cause:
                cause.add_note(f"hint: the password was {password}")
                raise RuntimeError("could not set the password") from cause
        except RuntimeError as exc:
            raised.append(exc)
            logger.exception("explicitly chained", extra={"why": password})
        try:
            try:
                _ = dict[str, str]()[password]
            except KeyError:
                raise ConnectionError("lost the server while reporting") from None
        except ConnectionError:
            logger.exception("cause suppressed")
        try:
            try:
                _ = dict[str, str]()[password]
            except KeyError:
                raise ConnectionError("lost the server while reporting")  # noqa: B904
        except ConnectionError:
            logger.error("implicitly chained", exc_info=True, stack_info=True)

    password = _set_with(bed, log_set)
    text = powertools_output.getvalue()
    assert password not in text
    assert password not in caplog.text
    lines = _lines(powertools_output)
    explicit = lines["explicitly chained"]
    assert explicit["why"] == REDACTED
    assert explicit["exception_name"] == "RuntimeError"
    assert f"ValueError: server refused {REDACTED}" in explicit["exception"]
    assert f"hint: the password was {REDACTED}" in explicit["exception"]
    assert "direct cause of the following exception" in explicit["exception"]
    assert "RuntimeError: could not set the password" in explicit["exception"]
    assert explicit["stack_trace"]["type"] == "RuntimeError"
    assert explicit["stack_trace"]["frames"][0]["function"] == "log_set"
    implicit = lines["implicitly chained"]
    assert f"KeyError: '{REDACTED}'" in implicit["exception"]
    assert "During handling of the above exception" in implicit["exception"]
    assert "ConnectionError: lost the server while reporting" in implicit["exception"]
    assert "KeyError" not in lines["cause suppressed"]["exception"]  # rendered as before
    # The program's own exception is left as it was.
    assert password in str(raised[0].__cause__)
    assert f"ValueError: server refused {REDACTED}" in caplog.text


def test_child_loggers_and_appended_keys_are_blanked(
    bed: Bed, powertools_output: io.StringIO
) -> None:
    """A strategy module with its own child Logger, or one that appends a key."""

    def log_set(password: str) -> None:
        child = Logger(service=SERVICE, child=True)
        child.warning("child says %s", password, extra={"leak": [password]})
        try:
            raise ValueError(f"child saw {password}")
        except ValueError:
            child.exception("child failed")
        logger.append_keys(leaked_key=password)
        try:
            logger.info("with an appended key")
        finally:
            logger.remove_keys(["leaked_key"])

    password = _set_with(bed, log_set)
    assert password not in powertools_output.getvalue()
    lines = _lines(powertools_output)
    assert lines[f"child says {REDACTED}"]["leak"] == [REDACTED]
    assert f"ValueError: child saw {REDACTED}" in lines["child failed"]["exception"]
    assert lines["with an appended key"]["leaked_key"] == REDACTED


def test_a_cached_version_is_blanked_after_the_scrubber_forgot_it(bed: Bed) -> None:
    """A long-lived container: the scrubber's LRU drops a version's values while the version
    cache still holds it; reading it from the cache registers them again."""
    scrubber = Scrubber(max_values=8)
    store = SecretStore(bed.handler_client, scrubber=scrubber)
    session = store.session(Deadline.in_seconds(60))
    first = "first-pw-kept-in-cache"
    arn = bed.secret({"engine": "postgres", "host": "h", "username": "u", "password": first})
    (first_id,) = bed.labels(arn)
    session.get_version(arn, first_id, AWSCURRENT)
    for n in range(12):  # many versions later, each read once (a rotation's reads)
        version_id = str(uuid.uuid4())
        value = {"engine": "postgres", "host": "h", "username": "u", "password": f"pw-{n}-x"}
        bed.sm.put_secret_value(
            SecretId=arn, ClientRequestToken=version_id, SecretString=json.dumps(value)
        )
        session.get_version(arn, version_id)
    assert scrubber.scrub(f"pw {first}") == f"pw {first}"  # the LRU forgot it...
    bed.calls.reset()

    version = session.get_version(arn, first_id, AWSCURRENT)

    assert bed.calls.names == []  # ...the version cache did not
    assert version.json()["password"] == first
    assert scrubber.scrub(f"pw {first}") == f"pw {REDACTED}"
    assert scrubber.scrub(version.secret_string) == REDACTED


def _leaves(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON log line, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)


class EscapingStrategy(ChattyStrategy):
    """Writes the current password into messages itself: repr, %r, JSON, a URL."""

    def set(self, request: SetRequest) -> SetResult:
        password = request.current.json()["password"]
        logger.info("tried %r", password)
        logger.info(f"tried {password!r} as {request.current.json()!r}")
        logger.info("document %s", json.dumps(request.current.json()))
        logger.warning("attempt", extra={"attempt": repr({"user": "u", "password": password})})
        logger.info("url postgresql://u:%s@h/db", urllib.parse.quote(password, safe=""))
        try:
            raise ValueError(f"refused {password!r}")
        except ValueError:
            logger.exception("failed")
        return SetResult(changed=True, via="AWSCURRENT")


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("""pa\\ss'w"rd-XY""", id="backslash-and-quotes"),
        pytest.param("q7", id="short"),
        pytest.param("""a'\\""", id="short-escaped"),
    ],
)
def test_a_password_rendered_escaped_or_short_is_blanked(
    bed: Bed, powertools_output: io.StringIO, caplog: pytest.LogCaptureFixture, password: str
) -> None:
    caplog.set_level(logging.DEBUG)
    value = {"engine": "postgres", "host": "h", "username": "u", "password": password}
    arn = bed.secret(value)
    rotator = Rotator(EscapingStrategy(None), SecretStore(bed.handler_client))
    driver = bed.driver(rotator)
    driver.run(arn, driver.begin(arn), [Step.CREATE, Step.SET])

    forms = renderings(password)
    token = re.compile("|".join(rf"(?<![^\W_]){re.escape(form)}(?![^\W_])" for form in forms))
    lines = [json.loads(line) for line in powertools_output.getvalue().splitlines()]
    messages = [line.get("message") for line in lines]
    assert f"tried '{REDACTED}'" in messages or f'tried "{REDACTED}"' in messages
    for text in [leaf for line in lines for leaf in _leaves(line)] + [caplog.text]:
        assert not token.search(text), text
