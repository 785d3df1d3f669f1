"""The strategies the command line knows, built exactly as the Lambda entrypoints build them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers import STRATEGIES
from handlers.multi_user import PostgresMultiUser
from handlers.pg_connect import PostgresConnector
from handlers.rds import RdsTopology
from handlers.single_user import PostgresSingleUser
from rotation import Rotator, SecretStore
from rotation.strategy import RotationStrategy
from rotation_contract.pg.settings import PostgresSettings
from rotation_tools.direct import DirectRegistration

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["STRATEGIES", "build_rotator", "build_strategy"]


def build_strategy(
    name: str, connector: PostgresConnector | None = None, rds: RdsTopology | None = None
) -> RotationStrategy:
    if name == "single-user":
        return PostgresSingleUser(connector)
    if name == "multi-user":
        return PostgresMultiUser(connector, rds=rds)
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}")


def build_rotator(
    name: str,
    client: SecretsManagerClient,
    *,
    settings: PostgresSettings | None = None,
    direct: bool = False,
) -> Rotator:
    """The strategy's Rotator, with the Lambda's middleware. ``direct`` (``rotation
    rotate``): createSecret registers its token itself (:mod:`rotation_tools.direct`), and
    rotation need not be enabled on the secret."""
    connector = PostgresConnector(settings) if settings else None
    registrar = DirectRegistration() if direct else None
    return Rotator(build_strategy(name, connector), SecretStore(client), registrar=registrar)
