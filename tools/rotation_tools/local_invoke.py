"""``rotation invoke``: a docker-free ``sam local invoke``.

Reads the function's configuration from ``template.yaml`` (see :mod:`sam_template`), loads an
event file, and calls the handler in this process with the function's environment and a
Lambda context whose clock counts down from the function's timeout. Each run of the command
is a new process: a cold container, as with ``sam local invoke``. Unlike Docker, the
process's own environment (AWS credentials, ``PGSSLROOTCERT``, ``AWS_ENDPOINT_URL``) is
visible too.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rotation.config import ENV_ENDPOINT
from rotation.driver import LocalContext
from rotation.verify_event import VERIFY_ACTION, is_verify_event
from rotation_tools.sam_template import TemplateError, load_template, resolve_function

__all__ = ["invoke"]


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_event(path: Path, *, secret_id: str | None, token: str | None) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TemplateError(f"cannot read event file {path}: {exc}") from exc
    if not isinstance(event, dict):
        raise TemplateError(f"event file {path} must hold a JSON object")
    if is_verify_event(event):
        # A verification event names its secrets in a list and has no token.
        if token:
            raise TemplateError(
                f"event file {path} is a verification event ({VERIFY_ACTION}), which has no "
                "token: drop --token, or use one of the rotation step events"
            )
        if secret_id:
            event["SecretIds"] = [secret_id]
        return event
    if secret_id:
        event["SecretId"] = secret_id
    if token:
        event["ClientRequestToken"] = token
    return event


def invoke(
    template_path: Path,
    logical_id: str,
    event_path: Path,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    env_vars: Path | None = None,
    secret_id: str | None = None,
    token: str | None = None,
    endpoint_url: str | None = None,
) -> Any:
    """Invoke the template's function ``logical_id`` with the event in ``event_path``.

    ``endpoint_url`` sets the function's ``SECRETS_MANAGER_ENDPOINT`` over the template's
    value, the parameter overrides and the env-vars file (``rotation invoke --endpoint-url``).
    """
    config = resolve_function(
        load_template(template_path),
        logical_id,
        parameter_overrides=parameter_overrides,
        env_vars=env_vars,
    )
    environment = dict(config.environment)
    if endpoint_url:
        environment[ENV_ENDPOINT] = endpoint_url
    event = load_event(event_path, secret_id=secret_id, token=token)
    module_name, _, attribute = config.handler.rpartition(".")
    with _environment(environment):
        try:
            handler = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise TemplateError(f"handler {config.handler!r} cannot be imported: {exc}") from exc
        context = LocalContext(
            timeout_s=float(config.timeout_s),
            function_name=logical_id,
            memory_limit_in_mb=config.memory_mb,
        )
        return handler(event, context)
