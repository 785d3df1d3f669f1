"""The PostgreSQL secret JSON, per the outside contract, parsed and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from rotation_contract.errors import SecretFormatError
from rotation_contract.pg.tls import at_least, resolve_sslmode

__all__ = [
    "CLONE_SUFFIX",
    "ENGINES",
    "MasterSecret",
    "PostgresSecret",
    "check_no_weaker_tls",
    "check_same_target",
    "master_login",
    "paired_username",
    "parse_postgres_secret",
    "same_host",
    "target_mismatch",
]

ENGINES = frozenset({"postgres", "aurora-postgresql"})
DEFAULT_PORT = 5432
DEFAULT_DBNAME = "postgres"
# Multi-user rotation alternates ``<user>`` and ``<user>_clone``.
CLONE_SUFFIX = "_clone"


@dataclass(frozen=True)
class PostgresSecret:
    """A PostgreSQL credential. ``password`` is kept out of ``repr``."""

    engine: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    dbname: str = DEFAULT_DBNAME
    sslmode: str = "verify-full"
    masterarn: str | None = None

    def target(self) -> tuple[str, int, str]:
        """Where this credential logs in: host, port, database."""
        return (self.host.lower(), self.port, self.dbname)

    def with_tls_floor(self, floor: str) -> PostgresSecret:
        """This credential, with its TLS mode raised to ``floor`` if it asks for less."""
        raised = at_least(self.sslmode, floor)
        return self if raised == self.sslmode else replace(self, sslmode=raised)


@dataclass(frozen=True)
class MasterSecret(PostgresSecret):
    """The master's credential, as :func:`master_login` makes it. A mark, nothing more: the
    Lambda side's connector opens a login with it only for the master's session (which pins
    every transaction's ``search_path``), never as an ordinary connection."""


def _string(value: Mapping[str, Any], key: str, what: str) -> str:
    if key not in value:
        raise SecretFormatError(f"{what} has no {key!r} field")
    item = value[key]
    if not isinstance(item, str) or not item:
        raise SecretFormatError(f"{what}'s {key!r} must be a non-empty string")
    return item


def _port(value: Mapping[str, Any], what: str) -> int:
    raw = value.get("port", DEFAULT_PORT)
    # The contract allows a number or a numeric string; a bool is an int in Python: refuse it.
    if isinstance(raw, bool):
        raise SecretFormatError(f"{what}'s 'port' must be a number")
    try:
        port = int(raw)
    except (TypeError, ValueError) as exc:
        raise SecretFormatError(f"{what}'s 'port' must be a number, got {raw!r}") from exc
    if not 1 <= port <= 65535:
        raise SecretFormatError(f"{what}'s 'port' must be between 1 and 65535, got {port}")
    return port


def parse_postgres_secret(
    value: Mapping[str, Any], what: str = "the secret", *, require_engine: bool = True
) -> PostgresSecret:
    """Check a secret's JSON against the contract and return it typed.

    ``require_engine`` is False for a master secret made by RDS, which holds only
    ``username`` and ``password`` (host and port then come from the RDS API).

    Raises
    ------
    SecretFormatError
        A missing or mistyped field, or an engine other than postgres / aurora-postgresql.
        The message names the field and never quotes the password.
    """
    engine = value.get("engine", "postgres" if not require_engine else None)
    if engine is None:
        raise SecretFormatError(f"{what} has no 'engine' field")
    if engine not in ENGINES:
        raise SecretFormatError(
            f"{what}'s engine {engine!r} is not supported; expected {' or '.join(sorted(ENGINES))}"
        )
    dbname = value.get("dbname", DEFAULT_DBNAME)
    if not isinstance(dbname, str) or not dbname:
        raise SecretFormatError(f"{what}'s 'dbname' must be a non-empty string")
    masterarn = value.get("masterarn")
    if masterarn is not None and (not isinstance(masterarn, str) or not masterarn):
        raise SecretFormatError(f"{what}'s 'masterarn' must be a non-empty string")
    return PostgresSecret(
        engine=str(engine),
        host=_string(value, "host", what) if require_engine or "host" in value else "",
        port=_port(value, what),
        username=_string(value, "username", what),
        password=_string(value, "password", what),
        dbname=dbname,
        sslmode=resolve_sslmode(value.get("ssl"), what),
        masterarn=masterarn,
    )


def paired_username(username: str) -> str:
    """The other user of a multi-user pair: ``name`` <-> ``name_clone``."""
    if username.endswith(CLONE_SUFFIX):
        return username.removesuffix(CLONE_SUFFIX)
    return username + CLONE_SUFFIX


def same_host(mine: str, theirs: str) -> bool:
    """Whether two secrets' ``host`` fields name the same server.

    A DNS name is case-insensitive, so an ASCII name compares without case; nothing else
    does: a Unix-socket directory (``/...``, or ``@...`` in the abstract namespace) is a
    case-sensitive path (``/tmp/PG`` and ``/tmp/pg`` are two sockets, and any local user
    can create the other one), and a non-ASCII name is compared exactly (``str.lower``
    folds the Kelvin sign to ``k``, which no resolver does). A comma-separated list (libpq
    tries each host in turn) matches element by element, in order.
    """
    mine_hosts, their_hosts = mine.split(","), theirs.split(",")
    if len(mine_hosts) != len(their_hosts):
        return False
    return all(map(_same_host_entry, mine_hosts, their_hosts))


def _same_host_entry(mine: str, theirs: str) -> bool:
    if mine == theirs:
        return True
    if mine.startswith(("/", "@")) or theirs.startswith(("/", "@")):
        return False  # a socket path: exactly, or not at all
    if not (mine.isascii() and theirs.isascii()):
        return False
    return mine.lower() == theirs.lower()


def target_mismatch(
    current: PostgresSecret,
    other: PostgresSecret,
    *,
    users: Literal["same", "pair", "any"] = "same",
) -> str | None:
    """The first of host, port, dbname and username in which ``other`` leaves
    ``current``'s target, or None when it logs in where ``current`` does.

    ``users``: ``same`` (the username must match), ``pair`` (it may also be the pair's
    other user, see :func:`paired_username`) or ``any`` (the caller checks it).
    """
    fields = [
        ("host", not same_host(current.host, other.host)),
        ("port", current.port != other.port),
        ("dbname", current.dbname != other.dbname),
    ]
    if users != "any":
        allowed = {current.username}
        if users == "pair":
            allowed.add(paired_username(current.username))
        fields.append(("username", other.username not in allowed))
    return next((name for name, differs in fields if differs), None)


def check_same_target(
    current: PostgresSecret, other: PostgresSecret, label: str, *, same_user: bool = True
) -> None:
    """Refuse a version that points at another server, database or user (confused deputy).

    A pending version planted with another host would otherwise make us log in there with
    the current credential, or set a password on a server the secret is not about.
    ``same_user=False`` leaves the username to the caller (multi-user alternates it). The
    application client applies the same rule to its fallbacks (:func:`target_mismatch`).
    """
    name = target_mismatch(current, other, users="same" if same_user else "any")
    if name is None:
        return
    mine, theirs = getattr(current, name), getattr(other, name)
    raise SecretFormatError(
        f"the {label} version's {name} ({theirs!r}) differs from AWSCURRENT's "
        f"({mine!r}); refusing to rotate across targets"
    )


def check_no_weaker_tls(current: PostgresSecret, pending: PostgresSecret) -> None:
    """Refuse to promote a pending version that asks for weaker TLS than AWSCURRENT's.

    Promoted, it would become the floor: every later login of a rotation, and every
    application reading AWSCURRENT, would use the weaker mode.
    """
    if at_least(pending.sslmode, current.sslmode) != pending.sslmode:
        raise SecretFormatError(
            f"the AWSPENDING version asks for sslmode {pending.sslmode}, weaker than "
            f"AWSCURRENT's {current.sslmode}; making it AWSCURRENT would lower TLS for every "
            "later login and application, so it is refused. Give the pending version the "
            "same 'ssl' as AWSCURRENT (or lower AWSCURRENT's deliberately first)"
        )


def master_login(
    current: PostgresSecret, master: PostgresSecret, *, host: str, port: int, dbname: str | None
) -> MasterSecret:
    """The master's credential, logging in at ``host:port`` (the primary) in its database or
    else the user's, with the master secret's own TLS mode raised to AWSCURRENT's: the most
    privileged credential never travels on weaker TLS than the one it administers.

    The user's database when the master secret names none (RDS-managed master secrets never
    do): that is the database an operator already lets the master reach (pg_hba.conf, a
    PgBouncer's ``[databases]``), where ``postgres`` may be unreachable or dropped. What its
    owner controls there is kept from the master by its session (``handlers.master``)."""
    return MasterSecret(
        engine=current.engine,
        host=host,
        port=port,
        username=master.username,
        password=master.password,
        dbname=dbname or current.dbname,
        sslmode=at_least(master.sslmode, current.sslmode),
    )
