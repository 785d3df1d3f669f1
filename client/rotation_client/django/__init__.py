"""A Django database backend whose every new connection picks credentials as
:func:`~rotation_client.connect` does: Django's own PostgreSQL backend (psycopg 3), with the
login taken from a rotated secret (the client's ``django`` extra; Django 4.2 or later).

Settings::

    DATABASES = {
        "default": {
            "ENGINE": "rotation_client.django",
            "NAME": "",  # empty: the secret's dbname
            "OPTIONS": {"secret_id": "myapp/prod/db", "max_age": 300},
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
        }
    }

The secret supplies the host, port, database, user and password (``USER`` and
``PASSWORD`` are refused; ``NAME``, ``HOST`` and ``PORT``, when set, replace the secret's,
as Django's test runner does for its test database). ``OPTIONS`` takes, besides the keys
Django's PostgreSQL backend takes, ``secret_id`` (required), ``max_age``, ``source``,
``client`` and ``credentials`` (see :func:`~rotation_client.connect_async`); they are
removed before the rest reaches psycopg.

Django opens a connection per thread and request (or keeps it ``CONN_MAX_AGE`` seconds):
each new one logs in with whichever labelled credential the database accepts, so requests
go on through a rotation. The backend lives in :mod:`rotation_client.django.base`, where
Django looks for it; importing this package loads nothing of Django.
"""

# Nothing re-exported: Django imports the backend from .base by the ENGINE's name.
__all__: list[str] = []
