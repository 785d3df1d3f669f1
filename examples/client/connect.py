"""One connection from a rotated secret: it logs in with whichever labelled version works."""

from __future__ import annotations

import sys

from rotation_client import connect


def current_user(secret_id: str) -> str:
    # Keyword arguments go to psycopg.connect; the secret supplies host, user and password.
    with connect(secret_id, autocommit=True) as conn:
        row = conn.execute("SELECT current_user").fetchone()
    return "" if row is None else str(row[0])


if __name__ == "__main__":
    print(current_user(sys.argv[1] if len(sys.argv) > 1 else "myapp/prod/db"))
