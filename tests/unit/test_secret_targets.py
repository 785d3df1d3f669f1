"""Where a version logs in, compared with AWSCURRENT (rotation_contract.pg.secret): the rule the
rotation function and the application client share."""

from __future__ import annotations

import pytest

from rotation.errors import SecretFormatError
from rotation_contract.pg.secret import (
    PostgresSecret,
    check_same_target,
    paired_username,
    target_mismatch,
)

CURRENT = PostgresSecret("postgres", "DB.example.com", 5432, "app", "pw", "appdb")


def _other(**changes: object) -> PostgresSecret:
    fields = {
        "engine": "postgres",
        "host": "db.example.com",
        "port": 5432,
        "username": "app",
        "password": "other",
        "dbname": "appdb",
        **changes,
    }
    return PostgresSecret(**fields)  # type: ignore[arg-type]


def test_the_pair() -> None:
    assert paired_username("app") == "app_clone"
    assert paired_username("app_clone") == "app"


@pytest.mark.parametrize(
    ("changes", "users", "expected"),
    [
        ({}, "same", None),
        ({"host": "other.example.com"}, "pair", "host"),
        ({"port": 5433}, "pair", "port"),
        ({"dbname": "olddb"}, "pair", "dbname"),
        ({"username": "app_clone"}, "pair", None),
        ({"username": "app_clone"}, "same", "username"),
        ({"username": "stranger"}, "pair", "username"),
        ({"username": "stranger"}, "any", None),
    ],
)
def test_target_mismatch(changes: dict[str, object], users: str, expected: str | None) -> None:
    assert target_mismatch(CURRENT, _other(**changes), users=users) == expected  # type: ignore[arg-type]


def test_check_same_target_names_the_field_not_the_password() -> None:
    with pytest.raises(SecretFormatError, match="dbname") as raised:
        check_same_target(CURRENT, _other(dbname="olddb"), "AWSPENDING")
    assert "other" not in str(raised.value).replace("olddb", "")
    check_same_target(CURRENT, _other(username="app_clone"), "AWSPENDING", same_user=False)


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        # A Unix-socket directory is a case-sensitive path: any local user can create the
        # other one and run a server there.
        ("/run/app/pgsock", "/run/app/PGSOCK"),
        ("/var/run/postgresql", "/VAR/RUN/POSTGRESQL"),
        ("@pgsock", "@PGSOCK"),  # the abstract namespace, likewise
        # str.lower folds the Kelvin sign (U+212A) to k; no resolver does.
        ("kdb.example.com", "\u212adb.example.com"),
        # Lists: element by element, in order, the same number of hosts.
        ("a.example.com,/run/s", "a.example.com,/RUN/S"),
        ("a.example.com,b.example.com", "b.example.com,a.example.com"),
        ("a.example.com,b.example.com", "a.example.com"),
        ("a.example.com", "a.example.com,evil.example.com"),
    ],
)
def test_hosts_that_are_not_the_same(mine: str, theirs: str) -> None:
    current = _other(host=mine)
    assert target_mismatch(current, _other(host=theirs), users="pair") == "host"
    with pytest.raises(SecretFormatError, match="host") as raised:
        check_same_target(current, _other(host=theirs), "AWSPENDING")
    assert repr(theirs) in str(raised.value)  # named as written, not folded


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        ("DB.example.com", "db.example.com"),  # DNS names ignore ASCII case
        ("/run/app/pgsock", "/run/app/pgsock"),
        ("A.example.com,/run/s", "a.example.com,/run/s"),
    ],
)
def test_hosts_that_are_the_same(mine: str, theirs: str) -> None:
    assert target_mismatch(_other(host=mine), _other(host=theirs)) is None
    check_same_target(_other(host=mine), _other(host=theirs), "AWSPENDING")
