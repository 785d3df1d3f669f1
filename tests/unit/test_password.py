from __future__ import annotations

import string

import pytest

from rotation import ConfigurationError, PasswordPolicy, generate_password, password_policy_from_env
from rotation.password import PUNCTUATION


def test_defaults_match_the_aws_reference() -> None:
    policy = password_policy_from_env({})
    assert policy == PasswordPolicy(length=32, exclude_characters=":/@\"'\\")
    for _ in range(200):
        password = generate_password(policy)
        assert len(password) == 32
        assert not set(password) & set(":/@\"'\\")
        # REQUIRE_EACH_INCLUDED_TYPE defaults to true.
        assert set(password) & set(string.ascii_lowercase)
        assert set(password) & set(string.ascii_uppercase)
        assert set(password) & set(string.digits)
        assert set(password) & set(PUNCTUATION)


def test_passwords_differ() -> None:
    policy = PasswordPolicy()
    assert len({generate_password(policy) for _ in range(100)}) == 100


@pytest.mark.parametrize(
    ("env", "allowed"),
    [
        ({"EXCLUDE_PUNCTUATION": "true"}, string.ascii_letters + string.digits),
        ({"EXCLUDE_NUMBERS": "YES", "EXCLUDE_PUNCTUATION": "1"}, string.ascii_letters),
        ({"EXCLUDE_UPPERCASE": "y", "EXCLUDE_LOWERCASE": "True", "EXCLUDE_PUNCTUATION": "1"},
         string.digits),
        ({"EXCLUDE_CHARACTERS": "abc", "EXCLUDE_PUNCTUATION": "true"},
         (string.ascii_letters + string.digits).replace("a", "").replace("b", "").replace("c", "")),
    ],
    ids=["no-punctuation", "letters-only", "digits-only", "exclude-chars"],
)  # fmt: skip
def test_exclusions_are_honoured(env: dict[str, str], allowed: str) -> None:
    policy = password_policy_from_env(env)
    for _ in range(100):
        assert set(generate_password(policy)) <= set(allowed)


def test_require_each_type_off_allows_a_short_password() -> None:
    policy = password_policy_from_env({"PASSWORD_LENGTH": "2", "REQUIRE_EACH_INCLUDED_TYPE": "no"})
    assert len(generate_password(policy)) == 2


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"PASSWORD_LENGTH": "0"}, "between 1 and 4096"),
        ({"PASSWORD_LENGTH": "-3"}, "between 1 and 4096"),
        ({"PASSWORD_LENGTH": "5000"}, "between 1 and 4096"),
        ({"PASSWORD_LENGTH": "3.5"}, "whole number"),
        ({"EXCLUDE_LOWERCASE": "sometimes"}, "EXCLUDE_LOWERCASE"),
    ],
)
def test_invalid_settings_are_configuration_errors(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        password_policy_from_env(env)


@pytest.mark.parametrize(
    ("policy", "fragment"),
    [
        (PasswordPolicy(exclude_numbers=True, exclude_punctuation=True, exclude_uppercase=True,
                        exclude_lowercase=True), "excludes every character"),
        (PasswordPolicy(exclude_characters=string.printable), "excludes every character"),
        (PasswordPolicy(length=3), "shorter than the 4 character types"),
    ],
    ids=["all-classes", "all-characters", "too-short"],
)  # fmt: skip
def test_impossible_policies_are_configuration_errors(
    policy: PasswordPolicy, fragment: str
) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        generate_password(policy)
