"""``rotation doctor``: preflight a secret before deploying, or after a failure.

One check per line, in the order a connection fails: the secret, DNS, TCP, TLS, login; then,
for multi-user, the master secret and its privileges on this PostgreSQL version. Each failed
check says how to fix it. Checks after a failed prerequisite are skipped, not failed.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from handlers.master import MasterSession, open_master
from handlers.multi_user import alternate_username, owner_role
from handlers.pg_config import postgres_settings
from handlers.pg_connect import PostgresConnector
from handlers.pg_roles import in_recovery
from handlers.rds import RdsTopology
from rotation import (
    Deadline,
    RetryPolicy,
    RotationError,
)
from rotation.secret import SecretVersion
from rotation_contract.pg.secret import (
    MasterSecret,
    PostgresSecret,
    master_login,
    parse_postgres_secret,
)
from rotation_contract.pg.settings import PostgresSettings
from rotation_contract.pg.tls import tls_parameters
from rotation_tools.aws_problems import explain
from rotation_tools.rds_proxy import proxy_check
from rotation_tools.remedies import Remedies, fix_for, secret_format_fix

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["Check", "run_doctor"]

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class _Fixes:
    """What a fix needs: the command lines' builder, and the secret as the user named it."""

    remedies: Remedies
    secret_id: str


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str = ""
    hint: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _read(client: SecretsManagerClient, secret_id: str, what: str) -> tuple[Check, Any]:
    try:
        response = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")
    except (ClientError, BotoCoreError) as exc:
        # Not found, access denied, KMS and an unreachable endpoint each have their own fix.
        problem = explain(
            exc,
            secret_id=secret_id,
            operation="GetSecretValue",
            endpoint=client.meta.endpoint_url,
            region=client.meta.region_name,
        )
        assert problem is not None  # noqa: S101  # exc is a botocore error
        return Check(f"{what} readable", False, problem.problem, problem.fix), None
    version = SecretVersion(
        response["ARN"], response["VersionId"], response.get("SecretString", ""), "AWSCURRENT"
    )
    return Check(f"{what} readable", True, f"version {version.version_id}"), version


def _tls_probe(secret: PostgresSecret, settings: PostgresSettings) -> Check:
    if secret.sslmode in ("disable", "allow", "prefer"):
        return Check("TLS", None, f"sslmode {secret.sslmode}: no TLS required")
    params = tls_parameters(secret.sslmode, settings)
    try:
        with socket.create_connection((secret.host, secret.port), timeout=_TIMEOUT_S) as sock:
            sock.sendall(_SSL_REQUEST)
            if sock.recv(1) != b"S":
                return Check(
                    "TLS",
                    False,
                    "the server does not offer TLS",
                    'enable TLS on the server (RDS: it is on), or set "ssl": false in the '
                    "secret if the network path is trusted",
                )
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if "sslrootcert" in params:
                context.load_verify_locations(cafile=params["sslrootcert"])
                context.check_hostname = secret.sslmode == "verify-full"
            else:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(sock, server_hostname=secret.host) as tls:
                verified = "certificate verified" if "sslrootcert" in params else "not verified"
                return Check("TLS", True, f"{tls.version()}, {verified} ({secret.sslmode})")
    except ssl.SSLCertVerificationError as exc:
        return Check(
            "TLS",
            False,
            f"certificate verification failed: {exc.verify_message}",
            'trust the server\'s CA with PGSSLROOTCERT, or use "ssl": "verify-ca" when the '
            "host name is a CNAME not in the certificate",
        )
    except TimeoutError:
        # Accepted and then silent: not a TLS setting, but not a PostgreSQL server answering.
        return Check(
            "TLS",
            False,
            f"{secret.host}:{secret.port} accepted the connection and did not answer the TLS "
            f"request within {_TIMEOUT_S:.0f} s",
            "check that this host and port are the PostgreSQL server's (not a proxy or "
            "another service), and that the server is not overloaded or paused",
        )
    except (OSError, ssl.SSLError) as exc:
        return Check("TLS", False, f"handshake failed: {exc}", "check the server's TLS settings")


def _network(secret: PostgresSecret) -> Iterator[Check]:
    try:
        addresses = sorted({str(a[4][0]) for a in socket.getaddrinfo(secret.host, secret.port)})
        yield Check("DNS", True, f"{secret.host} -> {', '.join(addresses)}")
    except OSError as exc:
        yield Check(
            "DNS",
            False,
            f"{secret.host}: {exc}",
            "check the host name; in a VPC, the function needs the VPC's DNS resolver",
        )
        return
    try:
        with socket.create_connection((secret.host, secret.port), timeout=_TIMEOUT_S):
            yield Check("TCP", True, f"port {secret.port} answers")
    except OSError as exc:
        yield Check(
            "TCP",
            False,
            f"{secret.host}:{secret.port}: {exc}",
            "check the port, the database's security group (allow the function's security "
            "group) and that the server listens",
        )


def _login(
    connector: PostgresConnector, secret: PostgresSecret, who: str, remedies: _Fixes
) -> tuple[Check, psycopg.Connection[Any] | None]:
    try:
        # ``secret`` is AWSCURRENT, or the master already raised to its TLS mode.
        conn = connector.connect(secret, Deadline.in_seconds(20), who=who, floor=secret.sslmode)
    except RotationError as exc:
        # The fix follows the classified cause (rotation_contract.pg.login); the message
        # names details.
        hint = fix_for(exc, remedies.remedies, remedies.secret_id)
        return Check(f"login as {who}", False, exc.problem, hint), None
    version = conn.info.server_version // 10000
    return Check(f"login as {who}", True, f"{secret.username}, PostgreSQL {version}"), conn


def _master_login(
    connector: PostgresConnector, master: MasterSecret, remedies: _Fixes
) -> tuple[Check, MasterSession | None]:
    who = "the master"
    try:
        # Already raised to AWSCURRENT's TLS mode (master_login).
        session = open_master(connector, master, Deadline.in_seconds(20), floor=master.sslmode)
    except RotationError as exc:
        hint = fix_for(exc, remedies.remedies, remedies.secret_id)
        return Check(f"login as {who}", False, exc.problem, hint), None
    version = session.info.server_version // 10000
    return Check(f"login as {who}", True, f"{master.username}, PostgreSQL {version}"), session


def _writable(conn: psycopg.Connection[Any]) -> Check:
    """Single-user changes the password where ``host`` points: a standby cannot."""
    if not in_recovery(conn):
        return Check("host is writable", True, "not a standby")
    return Check(
        "host is writable",
        False,
        "the host is a read-only standby (a read replica): setSecret cannot change a "
        "password there",
        "point 'host' at the writer (the primary, or the cluster's writer endpoint), or "
        "rotate with --strategy multi-user (its master works on the primary)",
    )


def _master_privileges(master: MasterSession, user: str) -> Iterator[Check]:
    # The master's reads, like its changes, run in its pinned transactions only.
    with master.transaction(writes=False) as conn:
        yield from _master_privileges_in(conn, user)


def _master_privileges_in(conn: psycopg.Connection[Any], user: str) -> Iterator[Check]:
    row = conn.execute(
        "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    superuser, createrole = row if row else (False, False)
    if not (superuser or createrole):
        yield Check(
            "master may create roles",
            False,
            "no CREATEROLE",
            "ALTER ROLE <master> CREATEROLE (as a superuser)",
        )
        return
    yield Check("master may create roles", True, "superuser" if superuser else "CREATEROLE")
    if superuser or conn.info.server_version < 160000:
        yield Check(
            "master may grant the user",
            True,
            "PostgreSQL < 16: CREATEROLE suffices" if not superuser else "superuser",
        )
        return
    owner = owner_role(user)
    for role in (owner, alternate_username(owner)):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            continue
        admin = conn.execute(
            "SELECT pg_has_role(current_user, %s, 'MEMBER WITH ADMIN OPTION')", (role,)
        ).fetchone()
        if admin and admin[0]:
            yield Check(f"master has ADMIN on {role}", True, "PostgreSQL 16+ rule met")
        else:
            yield Check(
                f"master has ADMIN on {role}",
                False,
                "PostgreSQL 16+: CREATEROLE no longer implies admin over roles others made",
                f"GRANT {role} TO <master> WITH ADMIN OPTION (as a superuser)",
            )


def _multi_user(
    client: SecretsManagerClient,
    connector: PostgresConnector,
    secret: PostgresSecret,
    rds: RdsTopology,
    fixes: _Fixes,
) -> Iterator[Check]:
    try:
        clone = alternate_username(secret.username)
        yield Check("clone name fits", True, f"{clone} ({len(clone.encode())} bytes)")
    except RotationError as exc:
        yield Check("clone name fits", False, exc.problem, "shorten the username")
    if not secret.masterarn:
        yield Check(
            "masterarn",
            False,
            "the secret has no 'masterarn'",
            "add the ARN of the master user's secret",
        )
        return
    check, version = _read(client, secret.masterarn, "master secret")
    yield check
    if version is None:
        return
    try:
        value = version.json()
        master = parse_postgres_secret(value, "the master secret", require_engine=False)
        host, port = master.host, master.port
        if not host:
            tags = {
                t["Key"]: t["Value"]
                for t in client.describe_secret(SecretId=secret.masterarn).get("Tags", [])
            }
            host, port = rds.primary_endpoint(tags, Deadline.in_seconds(20))
    except RotationError as exc:
        yield Check(
            "master secret format", False, exc.problem, secret_format_fix("the master secret")
        )
        return
    yield Check("master secret format", True, f"{master.username}@{host}:{port}")
    as_master = master_login(secret, master, host=host, port=port, dbname=value.get("dbname"))
    check, session = _master_login(connector, as_master, fixes)
    yield check
    if session is not None:
        with session:
            yield from _master_privileges(session, secret.username)


def run_doctor(
    client: SecretsManagerClient,
    secret_id: str,
    *,
    strategy: str = "single-user",
    settings: PostgresSettings | None = None,
    rds: RdsTopology | None = None,
    remedies: Remedies | None = None,
) -> list[Check]:
    """Run every check that can run; stop a branch at its first failure. ``remedies``
    builds the commands the fixes print, with the flags the command was given."""
    fixes = _Fixes(remedies or Remedies(strategy=strategy), secret_id)
    settings = settings or postgres_settings()
    connector = PostgresConnector(settings, retry_policy=RetryPolicy(attempts=1))
    checks: list[Check] = []
    check, version = _read(client, secret_id, "secret")
    checks.append(check)
    if version is None:
        return checks
    try:
        secret = parse_postgres_secret(version.json(), "the secret")
    except RotationError as exc:
        checks.append(Check("secret format", False, exc.problem, secret_format_fix()))
        return checks
    checks.append(
        Check(
            "secret format",
            True,
            f"{secret.engine}, {secret.username}@{secret.host}:"
            f"{secret.port}/{secret.dbname}, sslmode {secret.sslmode}",
        )
    )
    proxy = proxy_check(secret, strategy)
    if proxy is not None:
        checks.append(Check("RDS Proxy", proxy.ok, proxy.detail, proxy.hint))
    network = list(_network(secret))
    checks.extend(network)
    if not all(c.ok for c in network):
        return checks
    checks.append(_tls_probe(secret, settings))
    if checks[-1].ok is False:
        return checks
    check, conn = _login(connector, secret, "AWSCURRENT", fixes)
    checks.append(check)
    if conn is not None:
        with conn:
            if strategy == "single-user":
                checks.append(_writable(conn))
    if strategy == "multi-user":
        checks.extend(_multi_user(client, connector, secret, rds or RdsTopology(), fixes))
    return checks
