"""The knobs every integration takes (``max_age``, an injectable source or boto3 client, or
a ready :class:`~rotation_client.RotatingCredentials`), turned into the one
``RotatingCredentials`` its connections share."""

from __future__ import annotations

from typing import Any

from rotation_client.credentials import RotatingCredentials, credentials
from rotation_client.sources import SecretSource

__all__ = ["rotating_credentials"]


def rotating_credentials(
    secret_id: str,
    *,
    credentials_: RotatingCredentials | None = None,
    max_age: int | None = None,
    source: SecretSource | None = None,
    client: Any = None,
) -> RotatingCredentials:
    """``credentials_`` when given; else the process-wide credentials of ``secret_id``
    (:func:`~rotation_client.credentials`), made with the other knobs on first use.

    One object per secret, store and process, whatever the integration, is what makes the
    herd safety hold: a pool, an engine and Django's per-thread connections of one secret share
    one cache, one single-flight refresh and one rate limit.

    Raises
    ------
    TypeError
        ``credentials_`` together with another knob (they would be ignored), or a
        ``max_age`` other than the one the secret's credentials were made with (see
        :func:`~rotation_client.credentials`).
    """
    options: dict[str, Any] = {}
    if max_age is not None:
        options["max_age_s"] = max_age
    if source is not None:
        options["source"] = source
    if client is not None:
        options["client"] = client
    if credentials_ is not None:
        if options:
            given = {"max_age_s": "max_age"}
            names = ", ".join(sorted(given.get(k, k) for k in options))
            raise TypeError(
                f"{secret_id}: give credentials_ or {names}, not both "
                "(the credentials already have their source and cache)"
            )
        return credentials_
    return credentials(secret_id, **options)
