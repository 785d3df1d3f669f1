"""The construct's artifact: the sam build artifact, cached by what determines it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rotation_cdk import _artifact
from rotation_cdk._artifact import artifact_directory, default_cache_dir
from rotation_tools.deploy import build_artifact


def _no_pip(*args: object, **kwargs: object) -> None:
    raise AssertionError("pip ran again")


def test_built_once_then_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    first = artifact_directory(arch="arm64")
    assert first.parent == default_cache_dir()
    assert (first / "handlers" / "postgres_multi_user.py").is_file()
    monkeypatch.setattr(build_artifact, "install_dependencies", _no_pip)
    assert artifact_directory(arch="arm64") == first


def test_a_source_change_makes_a_new_artifact_from_the_same_wheels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    current = artifact_directory(arch="arm64")
    monkeypatch.setattr(build_artifact, "install_dependencies", _no_pip)
    monkeypatch.setattr(_artifact, "_sources_digest", lambda: "changed-sources")
    changed = artifact_directory(arch="arm64")
    try:
        assert changed != current
        wheel_file = next(p for p in (current / "psycopg").rglob("*.py"))
        twin = changed / wheel_file.relative_to(current)
        assert twin.stat().st_ino == wheel_file.stat().st_ino  # hard-linked, not copied
        assert (changed / "rotation" / "__init__.py").is_file()
    finally:
        import shutil

        shutil.rmtree(changed)


def test_a_concurrent_build_that_won_is_used(tmp_path: Path) -> None:
    target = tmp_path / "artifact-x"

    def racing(scratch: Path) -> None:
        (scratch / "mine").write_text("")
        target.mkdir()  # another process renamed its build into place meanwhile
        (target / "theirs").write_text("")

    assert _artifact._build_once(target, racing) == target
    assert [p.name for p in target.iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["artifact-x"]  # no scratch left


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def failing(scratch: Path) -> None:
        (scratch / "half").write_text("")
        raise RuntimeError("pip failed")

    with pytest.raises(RuntimeError, match="pip failed"):
        _artifact._build_once(tmp_path / "artifact-y", failing)
    assert not list(tmp_path.iterdir())


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="arch must be one of"):
        artifact_directory(arch="sparc")


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ROTATION_CDK_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "pg-secrets-rotation" / "lambda"
