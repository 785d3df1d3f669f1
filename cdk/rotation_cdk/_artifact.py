"""The Lambda artifact for the construct: built as ``sam build`` builds it, cached between synths.

:mod:`rotation_tools.deploy.build_artifact` has pip fetch the dependencies' wheels for the
Lambda platform (no Docker, any local Python) and copies in the function's packages. pip is
the slow part (network, about 10 s), and the dependencies change rarely, so they are cached
by what determines them (requirements, architecture, Python version, platform tags); the
packages are cheap and change often, so each version of their sources gets its own artifact
directory, hard-linked to the cached dependencies. Both are built in a scratch directory
and renamed into place, so concurrent synths never see half an artifact.

Cache: ``$ROTATION_CDK_CACHE``, else ``$XDG_CACHE_HOME/pg-secrets-rotation/lambda`` (by default
``~/.cache/...``). Delete it to fetch the dependencies again (e.g. for a security fix that
the version ranges allow).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from rotation_tools.deploy import build_artifact

__all__ = ["artifact_directory", "default_cache_dir"]

ENV_CACHE = "ROTATION_CDK_CACHE"


def default_cache_dir() -> Path:
    explicit = os.environ.get(ENV_CACHE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pg-secrets-rotation" / "lambda"


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _sources_digest() -> str:
    """Every file that ``copy_packages`` copies, by path and content, and the versions its
    metadata names."""
    digest = hashlib.sha256()
    for shipped in build_artifact.SHIPPED:
        version = build_artifact.shipped_version(shipped.distribution)
        digest.update(f"{shipped.distribution}=={version}".encode() + b"\0")
    for package in build_artifact.PACKAGES:
        root = build_artifact.package_dir(package)
        for path in sorted(root.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(f"{package}/{path.relative_to(root)}".encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _link_or_copy(source: str, target: str) -> None:
    """A hard link (one copy of the 16 MB of wheels for every source version), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _build_once(target: Path, fill: Callable[[Path], None]) -> Path:
    """Fill a scratch directory and rename it to ``target``, unless someone else did first."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        fill(scratch)
        scratch.chmod(0o755)  # mkdtemp makes it 0700; the asset is copied by others too
        try:
            scratch.rename(target)
        except OSError:
            if not target.is_dir():  # not a concurrent build that won the rename
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def artifact_directory(
    *, arch: str, python_version: str = "3.12", cache_dir: Path | None = None
) -> Path:
    """A directory holding the Lambda artifact for ``arch`` (``arm64`` or ``x86_64``)."""
    if arch not in build_artifact.PLATFORMS:
        raise ValueError(f"arch must be one of {sorted(build_artifact.PLATFORMS)}, got {arch!r}")
    cache = cache_dir or default_cache_dir()
    platforms = build_artifact.platforms_for(arch)
    requirements = build_artifact.runtime_requirements()
    deps_key = _digest(requirements, platforms, python_version)

    def install(into: Path) -> None:
        build_artifact.install_dependencies(
            into, platforms=platforms, python_version=python_version
        )

    dependencies = _build_once(cache / f"deps-{deps_key}", install)

    def assemble(into: Path) -> None:
        shutil.copytree(dependencies, into, copy_function=_link_or_copy, dirs_exist_ok=True)
        build_artifact.copy_packages(into)

    return _build_once(cache / f"artifact-{deps_key}-{_sources_digest()}", assemble)
