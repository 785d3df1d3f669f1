"""rotation_client.credentials(): one object per secret *and secret store*, and a later
call's options never silently ignored."""

from __future__ import annotations

import gc
import math
import weakref

import boto3
import pytest

from rotation_client import SecretsManagerSource, connect, credentials
from rotation_client.credentials import registry_size
from tests.fix_aws import new_client
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional


def _login_user(conn: object) -> str:
    with conn:  # type: ignore[attr-defined]
        row = conn.execute("SELECT current_user").fetchone()  # type: ignore[attr-defined]
    return str(row[0])


def test_the_same_name_in_two_stores_gets_two_objects(bed: Bed) -> None:
    """Two stores (as two regions would be) each hold a secret of one name: each source
    gets its own credentials and logs in with its own store's secret."""
    name = f"test/registry-{id(bed)}"
    user_a, password_a = bed.make_user()
    user_b, password_b = bed.make_user()
    bed.secret(bed.pg.secret_value(user_a, password_a), name=name)
    # The second store: the same moto, the secret under the same name, read through a
    # source whose client names the other secret's ARN (as another region's would).
    arn_b = bed.secret(bed.pg.secret_value(user_b, password_b), name=f"{name}-b")
    store_a = SecretsManagerSource(new_client())
    store_b = _RenamingSource(new_client(), {name: arn_b})

    first = credentials(name, source=store_a)
    second = credentials(name, source=store_b)

    assert first is not second
    assert credentials(name, source=store_a) is first
    assert credentials(name, source=store_b) is second
    assert _login_user(connect(name, source=store_a)) == user_a
    assert _login_user(connect(name, source=store_b)) == user_b


class _RenamingSource(SecretsManagerSource):
    """A store in which ``name`` resolves to another secret: stands for another region."""

    def __init__(self, client: object, names: dict[str, str]) -> None:
        super().__init__(client)
        self._names = names

    def get(
        self, secret_id: str, stage: str, *, force: bool = False, timeout_s: float = math.inf
    ) -> str | None:
        name = self._names.get(secret_id, secret_id)
        return super().get(name, stage, force=force, timeout_s=timeout_s)


def test_a_different_max_age_for_the_same_store_is_refused(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    client = new_client()
    made = credentials(arn, client=client, max_age_s=60)
    assert credentials(arn, client=client, max_age_s=60) is made
    assert credentials(arn, client=client) is made  # no max_age asked: the object's
    with pytest.raises(TypeError, match=r"max_age_s=120 differs .* with max_age_s=60"):
        credentials(arn, client=client, max_age_s=120)


def test_a_max_age_other_than_the_default_is_refused_later(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    client = new_client()
    made = credentials(arn, client=client)
    assert credentials(arn, client=client, max_age_s=300) is made  # the default
    with pytest.raises(TypeError, match=r"max_age_s=30 differs .* with max_age_s=300"):
        connect(arn, client=client, max_age=30)


# -- bounded: a client per call does not grow the registry (#21) ---------------------------


def _fresh_client(access_key: str = "testing") -> object:
    return boto3.client(
        "secretsmanager",
        aws_access_key_id=access_key,
        aws_secret_access_key="testing",  # moto's
    )


def test_ten_thousand_calls_with_a_fresh_client_each_keep_one_object(bed: Bed) -> None:
    """An application that builds a boto3 client per call: every call reaches the same store
    (endpoint, region, principal), so they share one object (one cache, one single-flight
    refresh), and the registry does not grow. Counted through credentials(), which every
    connect() goes through (a login per call would only slow the count down)."""
    arn, user, _ = bed.user_secret()
    first = credentials(arn, client=_fresh_client())
    size = registry_size()
    for _ in range(10_000):
        assert credentials(arn, client=_fresh_client()) is first
    assert registry_size() == size
    assert _login_user(connect(arn, client=_fresh_client())) == user  # and it still logs in


def test_distinct_stores_beyond_the_bound_are_dropped_and_released(bed: Bed) -> None:
    """Another principal is another store (it may see another secret under the name): each
    gets its own object, the least recently used dropped past the bound, its client freed."""
    arn, _, _ = bed.user_secret()
    oldest = _fresh_client("AKIDOLDEST")
    released = weakref.ref(oldest)
    credentials(arn, client=oldest)
    del oldest
    for i in range(300):
        credentials(arn, client=_fresh_client(f"AKID{i:06d}"))
        assert registry_size() <= 256
    gc.collect()
    assert released() is None
