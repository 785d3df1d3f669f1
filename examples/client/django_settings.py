"""Django 4.2 or later with psycopg 3 (extra ``django``): a ``settings.py`` fragment."""

from __future__ import annotations

from typing import Any

DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "rotation_client.django",
        "NAME": "",  # empty: the secret's dbname
        "OPTIONS": {"secret_id": "myapp/prod/db", "max_age": 300},
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}
