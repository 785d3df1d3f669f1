"""TLS settings for a PostgreSQL connection, per the outside contract.

``"ssl": true`` and a missing ``ssl`` key both mean ``verify-full``; ``false`` means a
plain connection; a libpq sslmode name is used as given. Unlike the AWS reference, there
is never a fallback to plaintext when TLS fails.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from pathlib import Path

from rotation.errors import SecretFormatError
from rotation.pg.settings import PostgresSettings

__all__ = ["SSLMODES", "SSLMODE_ORDER", "at_least", "resolve_sslmode", "tls_parameters"]

# libpq's sslmodes, weakest first: the contract's order for the TLS floor.
SSLMODE_ORDER = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SSLMODES = frozenset(SSLMODE_ORDER)
_VERIFYING = frozenset({"verify-ca", "verify-full"})
_bundle_lock = threading.Lock()


def resolve_sslmode(ssl: object, what: str = "the secret") -> str:
    """Map the secret's ``ssl`` value to a libpq sslmode.

    Raises
    ------
    SecretFormatError
        An ``ssl`` value that is neither a boolean, "true"/"false", nor an sslmode name.
    """
    if ssl is None or ssl is True:
        return "verify-full"
    if ssl is False:
        return "disable"
    if isinstance(ssl, str):
        lowered = ssl.strip().lower()
        if lowered == "true":
            return "verify-full"
        if lowered == "false":
            return "disable"
        if lowered in SSLMODES:
            return lowered
    raise SecretFormatError(
        f"{what}'s 'ssl' must be true, false or a libpq sslmode name "
        f"({', '.join(sorted(SSLMODES))}), got {ssl!r}"
    )


def at_least(sslmode: str, floor: str) -> str:
    """``sslmode`` raised to ``floor`` when it is weaker (the contract's TLS floor).

    A version or master secret may ask for more than AWSCURRENT's mode, never for less:
    an AWSPREVIOUS written before TLS was turned on must not send ``ALTER ROLE`` in clear.
    """
    if SSLMODE_ORDER.index(sslmode) < SSLMODE_ORDER.index(floor):
        return floor
    return sslmode


def _combined_bundle(settings: PostgresSettings) -> Path:
    """The RDS bundle plus ``PGSSLROOTCERT`` in one file, since libpq takes one root file.

    Written once per container (named by content hash) into the temp directory, which is
    the only writable place in Lambda.
    """
    if settings.extra_root_cert is None:
        return settings.rds_ca_bundle
    content = settings.rds_ca_bundle.read_bytes().rstrip(b"\n") + b"\n"
    content += settings.extra_root_cert.read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"rotation-roots-{digest}.pem"
    with _bundle_lock:
        if not path.exists():
            scratch = path.with_suffix(".tmp")
            scratch.write_bytes(content)
            scratch.replace(path)
    return path


def tls_parameters(sslmode: str, settings: PostgresSettings) -> dict[str, str]:
    """libpq keyword arguments for an sslmode from :func:`resolve_sslmode`."""
    params = {"sslmode": sslmode}
    if sslmode in _VERIFYING:
        # Only where verification is asked for: with sslmode=require, a root file makes
        # libpq verify the CA too, which would break servers the user chose not to verify.
        params["sslrootcert"] = str(_combined_bundle(settings))
    return params
