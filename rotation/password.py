"""Password generation.

We generate passwords locally with :mod:`secrets` (the OS CSPRNG) instead of calling
Secrets Manager's ``GetRandomPassword``:

* one API call and one network round trip fewer per rotation (createSecret is on the
  critical path of every rotation, and API calls are what Secrets Manager throttles);
* the function's role needs no ``secretsmanager:GetRandomPassword`` permission;
* the password never travels over the network before it is stored.

The character classes and policy semantics are GetRandomPassword's, so the AWS reference's
environment variables mean exactly what they meant there.
"""

from __future__ import annotations

import secrets
import string

from rotation.config import PasswordPolicy
from rotation.errors import ConfigurationError

__all__ = ["character_classes", "generate_password"]

# GetRandomPassword's punctuation set.
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def character_classes(policy: PasswordPolicy) -> list[str]:
    """The non-empty character classes a password may draw from under ``policy``."""
    wanted = [
        (policy.exclude_lowercase, string.ascii_lowercase),
        (policy.exclude_uppercase, string.ascii_uppercase),
        (policy.exclude_numbers, string.digits),
        (policy.exclude_punctuation, PUNCTUATION),
    ]
    excluded = set(policy.exclude_characters)
    classes = []
    for is_excluded, chars in wanted:
        if is_excluded:
            continue
        kept = "".join(c for c in chars if c not in excluded)
        if kept:
            classes.append(kept)
    return classes


def generate_password(policy: PasswordPolicy) -> str:
    """Return a random password that satisfies ``policy``.

    Raises
    ------
    ConfigurationError
        When the policy leaves no character to draw from, or requires one character of
        each included class but the length is shorter than the number of classes.
    """
    classes = character_classes(policy)
    if not classes:
        raise ConfigurationError(
            "the password policy excludes every character: check EXCLUDE_* and EXCLUDE_CHARACTERS"
        )
    if policy.require_each_included_type and policy.length < len(classes):
        raise ConfigurationError(
            f"PASSWORD_LENGTH {policy.length} is shorter than the {len(classes)} character "
            "types REQUIRE_EACH_INCLUDED_TYPE asks for"
        )
    alphabet = "".join(classes)
    chars = [secrets.choice(alphabet) for _ in range(policy.length)]
    if policy.require_each_included_type:
        # One character of each class at distinct random positions; the rest stay uniform.
        positions = list(range(policy.length))
        for chars_of_class in classes:
            position = positions.pop(secrets.randbelow(len(positions)))
            chars[position] = secrets.choice(chars_of_class)
    return "".join(chars)
