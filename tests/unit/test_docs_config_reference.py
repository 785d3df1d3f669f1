"""The configuration reference (docs/hooks/config_reference.py, the site's
reference/configuration.md): every environment variable the code names and every key the
secret's parser reads is described, and nothing else."""

from __future__ import annotations

from docs.hooks.config_reference import (
    ENVIRONMENT,
    SECRET_KEYS,
    env_constants,
    render,
    secret_keys_read,
)
from rotation import config
from rotation_contract.pg import settings


def test_every_environment_variable_of_the_code_is_described() -> None:
    found = env_constants()
    assert config.ENV_PASSWORD_LENGTH in found
    assert settings.ENV_REQUIRE_AUTH in found
    assert set(found) == set(ENVIRONMENT), (
        "describe the new variable in docs/hooks/config_reference.py (or remove the old one)"
    )


def test_the_function_and_the_client_share_the_endpoint_variable() -> None:
    """Named once, in the contract both sides import."""
    where = env_constants()["SECRETS_MANAGER_ENDPOINT"]
    assert [module for module, _ in where] == ["contract/rotation_contract/secrets_manager.py"]


def test_every_key_of_the_secret_is_described() -> None:
    read = secret_keys_read()
    assert {"engine", "host", "username", "password", "ssl"} <= read
    assert read == set(SECRET_KEYS)


def test_defaults_come_from_the_code() -> None:
    page = render()
    assert "{" not in page.replace("{ #", "")  # every {CONSTANT} was filled in
    assert f"| `PASSWORD_LENGTH` | function | `{config.DEFAULT_PASSWORD_LENGTH}` |" in page
    assert f"`{settings.DEFAULT_REQUIRE_AUTH}`" in page
    assert "| `port` | `5432` |" in page
