"""A secret is blanked however code rendered it before the log saw it (repr, JSON, a URL),
and however short it is (as a whole token, so that ordinary words survive)."""

from __future__ import annotations

import json
import logging
import urllib.parse

import pytest

from rotation.scrub import REDACTED, Scrubber, ScrubbingFilter

# Each holds a character that repr() or json.dumps() escapes: the rendering differs from
# the value, so blanking the value alone would miss it.
AWKWARD = [
    pytest.param("pa\\ss-w0rd-1", id="backslash"),
    pytest.param("pa'ss-w0rd-2", id="single-quote"),
    pytest.param('pa"ss-w0rd-3', id="double-quote"),
    pytest.param("""p'a"s\\s-w0rd-4""", id="all-three"),
    pytest.param("pa\tss-w0rd-\u00e9", id="tab-and-non-ascii"),
]


def _renderings(secret: str) -> dict[str, str]:
    """How a strategy's code might write the secret into a message itself."""
    return {
        "%r": "tried %r" % secret,  # noqa: UP031  # the rendering under test
        "repr": f"tried {secret!r}",
        "repr in a dict": "tried " + repr({"password": secret}),
        "repr in a list with both quotes": repr(['it\'s "quoted"', secret]),
        "json": "tried " + json.dumps({"password": secret}),
        "json, not ascii": "tried " + json.dumps({"password": secret}, ensure_ascii=False),
        "json of json": json.dumps(json.dumps({"password": secret})),
        "repr of json": repr(json.dumps({"password": secret})),
        "url": "postgresql://u:" + urllib.parse.quote(secret, safe="") + "@db/app",
    }


@pytest.mark.parametrize("secret", AWKWARD)
def test_every_rendering_is_blanked(secret: str) -> None:
    scrubber = Scrubber()
    scrubber.add(secret)
    for how, text in _renderings(secret).items():
        blanked = scrubber.scrub(text)
        assert REDACTED in blanked, how
        # Nothing of the secret survives: not its middle, not its escaped form.
        assert "w0rd" not in blanked, (how, blanked)


@pytest.mark.parametrize("secret", AWKWARD)
def test_a_log_record_rendering_the_secret_itself_is_blanked(
    secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    scrubber = Scrubber()
    scrubber.add_secret_json(json.dumps({"password": secret}), {"password": secret})
    log = logging.getLogger("test.scrub.renderings")
    log.addFilter(ScrubbingFilter(scrubber))
    with caplog.at_level(logging.INFO, logger="test.scrub.renderings"):
        log.info("as %%r: %r", secret)
        log.info("as json: %s", json.dumps({"password": secret}))
        log.info("extra", extra={"attempt": repr({"password": secret})})
    assert "w0rd" not in caplog.text
    for record in caplog.records:
        assert "w0rd" not in str(vars(record))


@pytest.mark.parametrize("secret", ["x", "ab", "q7!", "a'"])
def test_a_short_secret_is_blanked_as_a_whole_token(secret: str) -> None:
    scrubber = Scrubber()
    scrubber.add(secret)
    for text in (
        f"password {secret} refused",
        f"password={secret};",
        f"{secret}",
        f"tried {secret!r}",
        json.dumps({"password": secret}),
    ):
        blanked = scrubber.scrub(text)
        assert REDACTED in blanked, text


@pytest.mark.parametrize(
    ("secret", "text"),
    [
        ("a", "a lock held by another session blocked the statement"),
        ("ab", "about the table abc: cab"),
        ("on", "connection to server on host db1 failed"),
        ("42", "role 42x and 1424"),
    ],
)
def test_a_short_secret_does_not_blank_inside_words(secret: str, text: str) -> None:
    """A one-character password costs readability where it stands alone (the price of not
    leaking it), never inside other words."""
    scrubber = Scrubber()
    scrubber.add(secret)
    blanked = scrubber.scrub(text)
    words = [w for w in text.split() if w != secret]
    for word in words:
        assert word in blanked


def test_a_short_secret_of_punctuation_only_is_blanked_only_standing_alone() -> None:
    scrubber = Scrubber()
    scrubber.add("*-")
    assert scrubber.scrub("pw *- refused") == f"pw {REDACTED} refused"
    assert scrubber.scrub("a-b *-* c:*-d") == "a-b *-* c:*-d"
    assert scrubber.scrub(REDACTED) == REDACTED


def test_a_short_secret_never_eats_into_a_redaction() -> None:
    scrubber = Scrubber()
    scrubber.add("*")
    scrubber.add("long-secret-value")
    assert scrubber.scrub("x long-secret-value y") == f"x {REDACTED} y"


def test_a_longer_secret_is_blanked_before_a_shorter_one_inside_it() -> None:
    scrubber = Scrubber()
    scrubber.add("ab")
    scrubber.add("ab-cd-ef-gh")
    assert scrubber.scrub("pw ab-cd-ef-gh") == f"pw {REDACTED}"


def test_the_oldest_values_are_evicted_and_a_re_add_refreshes_one() -> None:
    scrubber = Scrubber(max_values=3)
    for value in ("first-secret", "second-secret", "third-secret"):
        scrubber.add(value)
    scrubber.add("first-secret")  # used again: now the most recent
    scrubber.add("fourth-secret")
    assert scrubber.scrub("first-secret") == REDACTED
    assert scrubber.scrub("second-secret") == "second-secret"
