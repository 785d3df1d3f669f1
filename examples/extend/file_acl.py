"""A strategy of your own: rotating the password of a user of a small engine.

The engine here is a JSON file of users and password hashes (think of an htpasswd file): it
keeps the sample short and runnable. A real strategy talks to a database, a directory or an
API instead; everything around it (labels, caching, retries of Secrets Manager calls,
logging, metrics, scrubbing secret values out of messages, proof before promotion) is the
framework's. The secret's JSON: ``{"engine": "file-acl", "path": ..., "username": ...,
"password": ...}``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rotation import (
    CreateRequest,
    CreateResult,
    Rotator,
    SecretFormatError,
    SecretStore,
    SetRequest,
    SetResult,
    TestRequest,
    TestResult,
)
from rotation.clients import secrets_manager_client
from rotation_contract.pg.errors import AuthenticationError


class FileAcl:
    """The engine: ``{"users": {name: sha256(password)}}`` in one file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def _users(self) -> dict[str, str]:
        return dict(json.loads(self.path.read_text())["users"])

    def logs_in(self, user: str, password: str) -> bool:
        return self._users().get(user) == _digest(password)

    def set_password(self, user: str, password: str) -> None:
        users = {**self._users(), user: _digest(password)}
        self.path.write_text(json.dumps({"users": users}))


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def logs_in(value: Mapping[str, Any]) -> bool:
    """Whether a secret value's credential logs in now (the conformance check asks this)."""
    return FileAcl(value["path"]).logs_in(value["username"], value["password"])


class FileAclStrategy:
    name = "file-acl"

    def create(self, request: CreateRequest) -> CreateResult:
        value = request.current.json()  # keep every key you don't change
        return CreateResult(value={**value, "password": request.new_password()})

    def set(self, request: SetRequest) -> SetResult:
        current, pending = request.current.json(), request.pending.json()
        for key in ("path", "username"):  # a confused deputy: never act elsewhere
            if pending.get(key) != current.get(key):
                raise SecretFormatError(f"the pending version's {key!r} differs from AWSCURRENT's")
        # Must succeed, changing nothing, when the pending password is already in place.
        if logs_in(pending):
            return SetResult(changed=False, via="AWSPENDING")
        if not logs_in(current):
            raise AuthenticationError("AWSCURRENT no longer logs in; reset it by hand")
        FileAcl(current["path"]).set_password(current["username"], pending["password"])
        return SetResult(changed=True, via="AWSCURRENT")

    def test(self, request: TestRequest) -> TestResult:
        # Read-only: finishSecret may call it again when it holds no proof of a login.
        if not logs_in(request.pending.json()):
            raise AuthenticationError("the pending password does not log in")
        return TestResult()


@functools.cache
def _rotator() -> Rotator:
    # One per container, made on the first invocation: its cache serves the later steps.
    return Rotator(FileAclStrategy(), SecretStore(secrets_manager_client()))


def lambda_handler(event: dict[str, Any], context: Any) -> str:
    return _rotator().handle(event, context)
