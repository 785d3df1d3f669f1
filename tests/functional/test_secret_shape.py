"""The secret's shape survives rotation: only the rotated fields change, up to 64 KB."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from rotation import AWSCURRENT, AWSPENDING, SecretFormatError, Step
from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed, SecretInspection

pytestmark = pytest.mark.functional

# Secrets Manager's limit on a SecretString, counted in UTF-8 bytes.
LIMIT = 65536
# What the multi-user rotation adds when it names the clone (``name`` -> ``name_clone``).
CLONE_SUFFIX = len("_clone")
COMPACT = (",", ":")


def _document(pg: Any, username: str, password: str, **extra: Any) -> dict[str, Any]:
    """A secret in an order no serializer would choose, with every kind of JSON value."""
    return {
        "ünïcødé-ключ": "värde ✓ 日本語 🎉",
        "username": username,
        "port": str(pg.port),  # a numeric string stays a string
        "options": {
            "zeta": 1,
            "alpha": [1, 2.5, None, True, "x", {"b": 1, "a": 2}],
            "empty": {},
        },
        "password": password,
        "host": pg.host,
        "ssl": True,  # the test cluster has TLS: a boolean that keeps verify-full
        "replica_ssl": False,
        "engine": "postgres",
        "retired": None,
        "tags": [],
        "float_one": 1.0,
        "big": 2**64 + 1,
        "tiny": 1e-7,
        "blank": "",
        "escapes": 'quote " backslash \\ newline \n tab \t',
        "dbname": "postgres",
        **extra,
        "notes": "",
    }


def _padded(document: dict[str, Any], size: int, separators: tuple[str, str] | None) -> str:
    """``document`` as JSON (UTF-8 as written, not escaped) of exactly ``size`` bytes, made up
    with three-byte characters in its ``notes``."""
    raw = json.dumps(document, ensure_ascii=False, separators=separators)
    missing = size - len(raw.encode())
    assert missing >= 0
    notes = "日" * (missing // 3) + "x" * (missing % 3)
    raw = json.dumps({**document, "notes": notes}, ensure_ascii=False, separators=separators)
    assert len(raw.encode()) == size
    return raw


def _raw(bed: SecretInspection, arn: str, **version: str) -> str:
    stage = {} if version else {"VersionStage": AWSCURRENT}
    return str(bed.sm.get_secret_value(SecretId=arn, **stage, **version)["SecretString"])


def _pairs(raw: str) -> list[tuple[str, Any]]:
    """The document with every object, at any depth, as its list of (key, value) pairs."""
    pairs: list[tuple[str, Any]] = json.loads(raw, object_pairs_hook=list)
    return pairs


def _exact(value: Any) -> str:
    """Equal only for the same JSON: key order kept, and 1, 1.0 and true told apart."""
    return json.dumps(value)


def _changed(before: str, after: str) -> set[str]:
    """The top-level keys whose values differ; fails unless the keys and their order match."""
    old, new = _pairs(before), _pairs(after)
    assert [key for key, _ in new] == [key for key, _ in old]
    return {key for (key, a), (_, b) in zip(new, old, strict=True) if _exact(a) != _exact(b)}


def test_a_single_user_rotation_changes_only_the_password(bed: Bed) -> None:
    user, password = bed.make_user(password=secrets.token_hex(16))  # 32, as generated
    # At the limit: the new password is as long as the old one, so it must still fit.
    raw = _padded(_document(bed.pg, user, password), LIMIT, None)
    arn = str(bed.sm.create_secret(Name=f"shape/{user}", SecretString=raw)["ARN"])
    for _ in range(2):
        before = _raw(bed, arn)
        assert bed.driver(bed.rotator()).rotate(arn).succeeded
        after = _raw(bed, arn)
        assert _changed(before, after) == {"password"}
        assert isinstance(json.loads(after)["password"], str)
        assert bed.logs_in(json.loads(after))
        # Stored as written: UTF-8, not \\u escapes (which would grow it past the limit).
        assert "日本語 🎉" in after
        assert len(after.encode()) <= LIMIT


def test_a_multi_user_rotation_changes_only_the_username_and_password(
    multi_tls: MultiBed,
) -> None:
    bed = multi_tls
    app_arn, user, password = bed.app()
    master = bed.value(app_arn)["masterarn"]
    document = _document(bed.pg, user, password, masterarn=master)
    raw = _padded(document, LIMIT - CLONE_SUFFIX, None)
    arn = str(bed.sm.create_secret(Name=f"shape/{user}", SecretString=raw)["ARN"])
    usernames = []
    for _ in range(2):
        before = _raw(bed, arn)
        assert bed.driver(bed.rotator()).rotate(arn).succeeded
        after = _raw(bed, arn)
        assert _changed(before, after) == {"username", "password"}
        usernames.append(json.loads(after)["username"])
        assert bed.logs_in(json.loads(after))
        assert "日本語 🎉" in after
        assert len(after.encode()) <= LIMIT
    assert usernames == [f"{user}_clone", user]


def test_a_compact_secret_at_the_limit_is_written_compact(bed: Bed) -> None:
    user, password = bed.make_user(password=secrets.token_hex(16))
    raw = _padded(_document(bed.pg, user, password), LIMIT, COMPACT)
    arn = str(bed.sm.create_secret(Name=f"shape/{user}", SecretString=raw)["ARN"])
    assert bed.driver(bed.rotator()).rotate(arn).succeeded
    after = _raw(bed, arn)
    # With ", " and ": " it would be over the limit: it stays as compact as it was.
    assert len(after.encode()) == LIMIT
    assert _changed(raw, after) == {"password"}


def test_a_value_that_would_outgrow_the_limit_fails_create_before_writing(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, password = bed.make_user(password=secrets.token_hex(16))
    raw = _padded(_document(bed.pg, user, password), LIMIT, COMPACT)
    arn = str(bed.sm.create_secret(Name=f"shape/{user}", SecretString=raw)["ARN"])
    monkeypatch.setenv("PASSWORD_LENGTH", "40")  # 8 bytes more than the current password
    rotator = bed.rotator()
    token = bed.driver(rotator).begin(arn)
    with pytest.raises(SecretFormatError, match="65544 bytes") as caught:
        rotator.handle(bed.event(arn, Step.CREATE.value, token))
    message = str(caught.value)
    assert "65536" in message
    assert "PASSWORD_LENGTH" in message
    assert arn in message or f"shape/{user}" in message
    assert "createSecret" in message
    assert password not in message
    # Nothing was written: the token is still the empty placeholder.
    assert bed.labels(arn)[token] == [AWSPENDING]
    with pytest.raises(bed.sm.exceptions.ResourceNotFoundException):
        _raw(bed, arn, VersionId=token, VersionStage=AWSPENDING)
    assert _raw(bed, arn) == raw
    assert bed.labelled_logins(arn) == [AWSCURRENT]
