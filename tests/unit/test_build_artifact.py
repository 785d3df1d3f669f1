"""The artifact builder's requirements, from a source tree and from an installed package."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement

from rotation_tools.deploy.build_artifact import ROOT, platforms_for, runtime_requirements


def _normal(requirements: list[str]) -> set[tuple[str, frozenset[str], str]]:
    parsed = [Requirement(r) for r in requirements]
    return {(r.name.lower(), frozenset(r.extras), str(r.specifier)) for r in parsed}


def test_the_installed_metadata_gives_what_pyproject_gives(tmp_path: Path) -> None:
    from_source = runtime_requirements(root=ROOT)
    from_metadata = runtime_requirements(root=tmp_path)  # no pyproject.toml there
    assert _normal(from_metadata) == _normal(from_source)
    names = {name for name, _, _ in _normal(from_source)}
    assert "psycopg" in names
    assert not names & {"boto3", "botocore"}  # the Lambda runtime provides them


def test_platform_tags() -> None:
    assert platforms_for("arm64")[0] == "manylinux_2_34_aarch64"
    assert platforms_for("x86_64")[-1] == "manylinux2014_x86_64"
