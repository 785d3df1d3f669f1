"""Where the master credential logs in: one rule for every path that uses it (single-user
recovery, multi-user setSecret, ``rotation verify --reconcile``).

A master secret with a ``host`` logs in there; one made by RDS (only ``username`` and
``password``) at the primary its ``aws:rds:primaryDb*Arn`` tag names, asked of the RDS API
(:class:`handlers.rds.RdsTopology`). Either way that host must be the user's host, or the
primary the user's host reads from (asked of the RDS API too): otherwise the master's
credential would be sent to a server the secret's writer chose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from handlers.rds import RdsTopology
from rotation.errors import SecretFormatError
from rotation.pg.secret import PostgresSecret, master_login, parse_postgres_secret
from rotation.retry import Deadline

__all__ = ["locate_master"]


def locate_master(
    current: PostgresSecret,
    master_value: Mapping[str, Any],
    *,
    tags: Callable[[], Mapping[str, str]],
    rds: RdsTopology,
    deadline: Deadline,
) -> PostgresSecret:
    """The master's credential, logging in at the user's host or the primary it reads from.

    Parameters
    ----------
    current:
        AWSCURRENT of the secret being rotated or reconciled.
    master_value:
        The master secret's AWSCURRENT value.
    tags:
        The master secret's tags, asked only for an RDS-managed master (no ``host``).

    Raises
    ------
    SecretFormatError
        The master is for another host; or it has neither host nor RDS tag.
    RdsError
        The RDS API failed or does not know the tagged instance or cluster.
    """
    master = parse_postgres_secret(master_value, "the master secret", require_engine=False)
    if master.host:
        host, port = master.host, master.port
    else:
        # Made by RDS: only username and password; the database is in the tags.
        host, port = rds.primary_endpoint(tags(), deadline)
    if host.lower() != current.host.lower() and not rds.is_reader_of(current.host, host, deadline):
        raise SecretFormatError(
            f"the master secret is for host {host!r}, which is neither the user's host "
            f"({current.host!r}) nor the primary it reads from; refusing to use it"
        )
    return master_login(current, master, host=host, port=port, dbname=master_value.get("dbname"))
