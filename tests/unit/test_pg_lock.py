"""The pair lock's key (handlers.pg_lock): shared by whoever holds the password, 64-bit."""

from __future__ import annotations

from handlers.pg_lock import lock_secret, pair_lock_key


def test_the_same_password_and_owner_give_the_same_key() -> None:
    assert pair_lock_key(lock_secret("pw-a"), "app") == pair_lock_key(lock_secret("pw-a"), "app")


def test_another_password_or_owner_gives_another_key() -> None:
    key = pair_lock_key(lock_secret("pw-a"), "app")
    assert key != pair_lock_key(lock_secret("pw-b"), "app")
    assert key != pair_lock_key(lock_secret("pw-a"), "app2")


def test_the_key_fits_a_bigint() -> None:
    for owner in ("a", "b", "c", "app", "üñï"):
        assert -(2**63) <= pair_lock_key(lock_secret("x"), owner) < 2**63
