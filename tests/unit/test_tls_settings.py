from __future__ import annotations

from pathlib import Path

import pytest

from rotation import ConfigurationError, SecretFormatError
from rotation_contract.pg.settings import RDS_CA_BUNDLE, PostgresSettings
from rotation_contract.pg.tls import at_least, resolve_sslmode, tls_parameters


@pytest.mark.parametrize(
    ("ssl", "mode"),
    [
        (None, "verify-full"), (True, "verify-full"), ("true", "verify-full"),
        ("TRUE", "verify-full"), (False, "disable"), ("false", "disable"),
        ("require", "require"), ("verify-ca", "verify-ca"), ("verify-full", "verify-full"),
        ("prefer", "prefer"),
    ],
)  # fmt: skip
def test_ssl_values_map_to_sslmodes(ssl: object, mode: str) -> None:
    assert resolve_sslmode(ssl) == mode


@pytest.mark.parametrize("ssl", [1, 0, "yes", "on", [], "verify_full"])
def test_other_ssl_values_are_refused(ssl: object) -> None:
    with pytest.raises(SecretFormatError, match="'ssl'"):
        resolve_sslmode(ssl)


def test_the_rds_bundle_ships_in_the_package() -> None:
    text = RDS_CA_BUNDLE.read_text()
    assert text.count("BEGIN CERTIFICATE") > 100


def test_verifying_modes_trust_the_rds_bundle() -> None:
    params = tls_parameters("verify-full", PostgresSettings())
    assert params == {
        "sslmode": "verify-full",
        "sslrootcert": str(RDS_CA_BUNDLE),
        "channel_binding": "prefer",
    }


def test_non_verifying_modes_pass_no_root_file() -> None:
    assert "sslrootcert" not in tls_parameters("require", PostgresSettings())
    assert "sslrootcert" not in tls_parameters("disable", PostgresSettings())


@pytest.mark.parametrize("sslmode", ["disable", "prefer", "require", "verify-ca", "verify-full"])
def test_channel_binding_is_preferred_on_every_connection(sslmode: str) -> None:
    """libpq binds SCRAM to the TLS session whenever TLS is in use and the server offers
    SCRAM-SHA-256-PLUS; "prefer" is harmless without TLS (tests/functional/test_tls.py)."""
    params = tls_parameters(sslmode, PostgresSettings.from_env({}))
    assert params["channel_binding"] == "prefer"


def test_pgchannelbinding_is_folded_in() -> None:
    settings = PostgresSettings.from_env({"PGCHANNELBINDING": " Require "})
    assert tls_parameters("verify-full", settings)["channel_binding"] == "require"


def test_an_unknown_pgchannelbinding_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"PGCHANNELBINDING must be one of .*'always'"):
        PostgresSettings.from_env({"PGCHANNELBINDING": "always"})


def test_pgsslrootcert_is_added_to_the_rds_bundle(tmp_path: Path) -> None:
    extra = tmp_path / "corp.pem"
    extra.write_text("-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n")
    settings = PostgresSettings.from_env({"PGSSLROOTCERT": str(extra)})
    combined = Path(tls_parameters("verify-ca", settings)["sslrootcert"])
    text = combined.read_text()
    assert text.startswith(RDS_CA_BUNDLE.read_text().rstrip("\n"))
    assert text.endswith("CORP\n-----END CERTIFICATE-----\n")


def test_a_missing_pgsslrootcert_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PGSSLROOTCERT"):
        PostgresSettings.from_env({"PGSSLROOTCERT": str(tmp_path / "nope.pem")})


@pytest.mark.parametrize(("raw", "expected"), [("", 5), ("9", 9)])
def test_pgconnect_timeout_is_honoured(raw: str, expected: int) -> None:
    assert PostgresSettings.from_env({"PGCONNECT_TIMEOUT": raw}).connect_timeout_s == expected


@pytest.mark.parametrize("raw", ["0", "soon"])
def test_a_bad_pgconnect_timeout_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="PGCONNECT_TIMEOUT"):
        PostgresSettings.from_env({"PGCONNECT_TIMEOUT": raw})


@pytest.mark.parametrize(
    ("asked", "floor", "used"),
    [
        ("disable", "verify-full", "verify-full"), ("require", "verify-ca", "verify-ca"),
        ("verify-full", "require", "verify-full"), ("prefer", "disable", "prefer"),
        ("allow", "prefer", "prefer"), ("verify-ca", "verify-ca", "verify-ca"),
    ],
)  # fmt: skip
def test_the_tls_floor_raises_weaker_modes_and_keeps_stronger_ones(
    asked: str, floor: str, used: str
) -> None:
    assert at_least(asked, floor) == used


def test_pgrequireauth_overrides_the_default_and_empty_means_default() -> None:
    assert PostgresSettings.from_env({}).require_auth == "scram-sha-256,md5"
    assert PostgresSettings.from_env({"PGREQUIREAUTH": " "}).require_auth == "scram-sha-256,md5"
    assert PostgresSettings.from_env({"PGREQUIREAUTH": "scram-sha-256"}).require_auth == (
        "scram-sha-256"
    )
