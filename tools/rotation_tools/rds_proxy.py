"""What ``rotation doctor`` and ``rotation plan`` say about a secret whose host is an RDS Proxy
endpoint (``<name>.proxy-<hash>.<region>.rds.amazonaws.com``, or a proxy's additional
endpoint). One place for the advice, so that both say the same.

RDS Proxy logs clients in with the credentials of the secrets it is given, one user per
secret: the multi-user strategy's second user (``<user>_clone``) has no secret at the
proxy, so a login as it fails ("no credentials for the role"), and so does the
strategy's master. Single-user works through it: the proxy reads the secret it is given
again when a login fails with a password it holds, and the rotation sends no startup
options (which RDS Proxy refuses; its bounds are set inside each transaction). The proxy
presents a certificate from AWS Certificate Manager, not one of the RDS CA bundle.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.rds import parse_rds_endpoint
from rotation_contract.pg.secret import PostgresSecret

__all__ = ["ProxyAdvice", "proxy_check"]


@dataclass(frozen=True)
class ProxyAdvice:
    """``rotation doctor``'s check "RDS Proxy" (and ``rotation plan``'s note)."""

    ok: bool
    detail: str
    hint: str = ""


_TLS = (
    "TLS: the proxy's certificate is issued by AWS Certificate Manager (Amazon Trust "
    "Services roots), not by the RDS CA bundle shipped here: for verify-full, point "
    'PGSSLROOTCERT at Amazon\'s root CAs, or use "ssl": "require". Authentication: the '
    "proxy's ClientPasswordAuthType must be POSTGRES_SCRAM_SHA_256 or POSTGRES_MD5 "
    "(require_auth admits both)"
)


def proxy_check(secret: PostgresSecret, strategy: str) -> ProxyAdvice | None:
    """A check naming the proxy and what works behind it; None when the host is no proxy."""
    endpoint = parse_rds_endpoint(secret.host)
    if endpoint is None or endpoint.kind != "proxy":
        return None
    where = f"host {secret.host} is the RDS Proxy {endpoint.identifier!r}"
    if strategy == "multi-user":
        return ProxyAdvice(
            False,
            f"{where}: it logs in only users it holds a secret for, one per secret, so "
            f"multi-user's alternating users cannot both log in through it (the other user, "
            f"{secret.username}_clone or the one it alternates with, has no secret at the "
            "proxy: 'no credentials for the role'), nor can the master",
            "point the secret's host at the database's endpoint for rotation and give the "
            "proxy the secret of each user applications log in as; or rotate with "
            "--strategy single-user (applications reconnect through the client library, "
            "which falls back to AWSPENDING during a rotation), or use IAM authentication "
            f"at the proxy. {_TLS}",
        )
    return ProxyAdvice(
        True,
        f"{where}: single-user works through it when the proxy is given this secret "
        "(the rotation sends no startup options, which the proxy refuses). " + _TLS,
    )
