"""``DatabaseWrapper`` for ``"ENGINE": "rotation_client.django"`` (see the package's docstring).

Django's PostgreSQL backend makes a connection in two places, both overridden here and
nowhere else: ``get_connection_params`` (what the settings say: our ``OPTIONS`` keys
removed, the secret standing in for the credentials) and ``get_new_connection`` (the
login, through :meth:`RotatingCredentials.connect
<rotation_client.RotatingCredentials.connect>`, which calls Django's own method for each
credential it tries, so isolation levels and the rest of Django's set-up are untouched).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql import base

from rotation_client._knobs import rotating_credentials
from rotation_client.credentials import RotatingCredentials, check_connect_kwargs

__all__ = ["OWN_OPTIONS", "DatabaseWrapper"]

# The OPTIONS keys this backend reads; none of them is a libpq parameter.
OWN_OPTIONS = ("secret_id", "max_age", "source", "client", "credentials")
# Settings that would replace the secret's credential, and so defeat rotation.
_REFUSED_SETTINGS = ("USER", "PASSWORD")
# What Django's own settings may set in the connection parameters (NAME, HOST, PORT: its
# test runner points NAME at the test database); OPTIONS may set none of the login.
_FROM_SETTINGS = ("dbname", "host", "port")
# Stands in for an empty NAME while Django's checks run (the secret names the database).
_FROM_SECRET = "(the secret's dbname)"  # noqa: S105  # a placeholder, not a password


class DatabaseWrapper(base.DatabaseWrapper):  # type: ignore[misc]  # Django ships no types
    """Django's PostgreSQL ``DatabaseWrapper``, its logins picked from a rotated secret."""

    settings_dict: dict[str, Any]
    alias: str

    def rotating_credentials(self) -> RotatingCredentials:
        """The process-wide credentials of ``OPTIONS["secret_id"]``: every thread's
        connection shares one cache and one single-flight refresh.

        Raises
        ------
        ImproperlyConfigured
            No ``secret_id`` in ``OPTIONS``, or ``USER``/``PASSWORD`` set, or ``pool``, or
            an ``OPTIONS`` key that would replace the secret's login (``user``,
            ``password``, ``host``, ``service``...) or set ``require_auth``.
        """
        options = self.settings_dict["OPTIONS"]
        secret_id = options.get("secret_id")
        where = f"settings.DATABASES[{self.alias!r}]"
        if not secret_id:
            raise ImproperlyConfigured(
                f'{where}: "ENGINE": "rotation_client.django" needs '
                '"OPTIONS": {"secret_id": "<name or ARN of the secret>"}'
            )
        for key in _REFUSED_SETTINGS:
            if self.settings_dict.get(key):
                raise ImproperlyConfigured(
                    f"{where}: remove {key}; the secret {secret_id} supplies it, and follows "
                    "its rotations"
                )
        if options.get("pool"):
            # Django's pool makes its connections with psycopg_pool directly, not through
            # get_new_connection: they would not follow rotations.
            raise ImproperlyConfigured(
                f'{where}: OPTIONS "pool" is not supported with rotation_client.django; '
                "keep connections with CONN_MAX_AGE (and CONN_HEALTH_CHECKS) instead"
            )
        libpq = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
        try:
            check_connect_kwargs(libpq, where='"OPTIONS"')
            return rotating_credentials(
                secret_id,
                credentials_=options.get("credentials"),
                max_age=options.get("max_age"),
                source=options.get("source"),
                client=options.get("client"),
            )
        except TypeError as exc:
            raise ImproperlyConfigured(f"{where}: {exc}") from exc

    def get_connection_params(self) -> dict[str, Any]:
        """Django's connection parameters, less our ``OPTIONS`` keys and the database name
        when ``NAME`` is empty (the secret's then applies)."""
        self.rotating_credentials()  # the configuration's errors, before any login
        own: dict[str, Any] = self.settings_dict
        named = own["NAME"] != ""
        if not named:
            # Django refuses an empty NAME; the secret names the database instead.
            self.settings_dict = {**own, "NAME": _FROM_SECRET}
        try:
            params: dict[str, Any] = super().get_connection_params()
        finally:
            self.settings_dict = own
        if not named:
            del params["dbname"]
        for key in OWN_OPTIONS:
            params.pop(key, None)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        """A connection with whichever labelled credential the database accepts; raises
        what :func:`~rotation_client.connect` raises."""
        django_connect = super().get_new_connection

        def open_with(**params: Any) -> Any:
            return django_connect(params)

        return self.rotating_credentials().connect_with(
            open_with, conn_params, allowed=_FROM_SETTINGS
        )
