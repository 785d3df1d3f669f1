"""The PostgreSQL side's settings, parsed in one place.

libpq's own variables keep their meaning: because we always pass ``sslrootcert``,
``connect_timeout``, ``require_auth``, ``channel_binding`` and ``options`` explicitly (to ship
the RDS bundle, to bound every step, to state the authentication rules), their environment
counterparts ``PGSSLROOTCERT``, ``PGCONNECT_TIMEOUT``, ``PGREQUIREAUTH``,
``PGCHANNELBINDING`` and ``PGOPTIONS`` are parsed here and folded in, instead of being
silently overridden.

Parsed, not read: :meth:`PostgresSettings.from_env` takes the environment as an argument.
The handlers and the application client share this module, and each side resolves its own
environment in one place (:func:`handlers.pg_config.postgres_settings` for the Lambda side).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rotation_contract.errors import ConfigurationError

__all__ = [
    "CHANNEL_BINDINGS",
    "DEFAULT_CHANNEL_BINDING",
    "DEFAULT_REQUIRE_AUTH",
    "ENV_CHANNEL_BINDING",
    "ENV_CONNECT_TIMEOUT",
    "ENV_OPTIONS",
    "ENV_REQUIRE_AUTH",
    "ENV_SSLROOTCERT",
    "ENV_TEST_QUERY",
    "MIN_CONNECT_TIMEOUT_S",
    "PostgresSettings",
]

# psycopg's (and libpq's) smallest connect_timeout: a smaller one is raised to it.
MIN_CONNECT_TIMEOUT_S = 2

ENV_SSLROOTCERT = "PGSSLROOTCERT"
ENV_CONNECT_TIMEOUT = "PGCONNECT_TIMEOUT"
ENV_REQUIRE_AUTH = "PGREQUIREAUTH"
ENV_OPTIONS = "PGOPTIONS"
ENV_CHANNEL_BINDING = "PGCHANNELBINDING"
# Ours, not the contract's: the probe query testSecret runs as the pending user.
ENV_TEST_QUERY = "ROTATION_TEST_QUERY"

DEFAULT_CONNECT_TIMEOUT_S = 5
DEFAULT_TEST_QUERY = "SELECT 1"
# libpq refuses, before sending anything, a server that asks for a cleartext password or
# for none at all (trust: a rotation would then prove nothing). md5 stays allowed: legacy
# clusters keep md5 verifiers until their first rotation writes a SCRAM one.
DEFAULT_REQUIRE_AUTH = "scram-sha-256,md5"
# SCRAM channel binding (SCRAM-SHA-256-PLUS) whenever the connection uses TLS and the
# server offers it, plain SCRAM or md5 otherwise: libpq's own default, stated explicitly.
# "require" would refuse md5 (which DEFAULT_REQUIRE_AUTH allows), every plaintext connection
# and poolers that do not offer it (RDS Proxy); PGCHANNELBINDING=require asks for it where
# all of that is known not to apply. See the README's "Channel binding".
DEFAULT_CHANNEL_BINDING = "prefer"
CHANNEL_BINDINGS = ("disable", "prefer", "require")
# Amazon RDS's CA bundle, shipped inside the package.
RDS_CA_BUNDLE = Path(__file__).with_name("certs") / "rds-global-bundle.pem"


@dataclass(frozen=True)
class PostgresSettings:
    extra_root_cert: Path | None = None
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S
    test_query: str = DEFAULT_TEST_QUERY
    rds_ca_bundle: Path = RDS_CA_BUNDLE
    require_auth: str = DEFAULT_REQUIRE_AUTH
    channel_binding: str = DEFAULT_CHANNEL_BINDING
    # PGOPTIONS, kept in front of the options the connector adds.
    options: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PostgresSettings:
        """Parse ``PGSSLROOTCERT``, ``PGCONNECT_TIMEOUT``, ``PGREQUIREAUTH``,
        ``PGCHANNELBINDING``, ``PGOPTIONS`` and ``ROTATION_TEST_QUERY`` from ``env`` (the
        caller's environment, e.g. ``os.environ``).

        Raises
        ------
        ConfigurationError
            A timeout that is not a positive whole number, a root certificate file that
            does not exist, or a channel binding mode libpq does not know.
        """
        root = env.get(ENV_SSLROOTCERT, "").strip()
        extra_root = Path(root) if root else None
        if extra_root is not None and not extra_root.is_file():
            raise ConfigurationError(f"{ENV_SSLROOTCERT} names {root!r}, which is not a file")
        raw_timeout = env.get(ENV_CONNECT_TIMEOUT, "").strip()
        timeout = DEFAULT_CONNECT_TIMEOUT_S
        if raw_timeout:
            try:
                timeout = int(raw_timeout)
            except ValueError as exc:
                raise ConfigurationError(
                    f"{ENV_CONNECT_TIMEOUT} must be a whole number of seconds, got {raw_timeout!r}"
                ) from exc
            if timeout <= 0:
                raise ConfigurationError(f"{ENV_CONNECT_TIMEOUT} must be positive")
        query = env.get(ENV_TEST_QUERY, "").strip() or DEFAULT_TEST_QUERY
        # Passed explicitly on every connection, so libpq's own variable is folded in here
        # rather than silently overridden.
        require_auth = env.get(ENV_REQUIRE_AUTH, "").strip() or DEFAULT_REQUIRE_AUTH
        binding = env.get(ENV_CHANNEL_BINDING, "").strip().lower() or DEFAULT_CHANNEL_BINDING
        if binding not in CHANNEL_BINDINGS:
            raise ConfigurationError(
                f"{ENV_CHANNEL_BINDING} must be one of {', '.join(CHANNEL_BINDINGS)}, got "
                f"{binding!r}; unset it for the default ({DEFAULT_CHANNEL_BINDING})"
            )
        return cls(
            extra_root_cert=extra_root,
            connect_timeout_s=timeout,
            test_query=query,
            require_auth=require_auth,
            channel_binding=binding,
            options=env.get(ENV_OPTIONS, "").strip(),
        )
