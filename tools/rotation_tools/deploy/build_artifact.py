"""Build the Lambda artifact without Docker: wheels for the Lambda platform, plus our code.

``sam build`` runs this through the Makefile (``BuildMethod: makefile``). It needs only the
standard library and pip, so it runs with any local Python, whatever the runtime's version:
pip fetches wheels for the target platform and Python version (``--platform``,
``--python-version``, ``--only-binary=:all:``), never building or importing them.

What ships: the packages of the rotation function's distributions (``rotation`` and
``handlers`` of ``pg-secrets-rotation``; ``rotation_contract`` with the RDS CA bundle, of
``pg-secrets-rotation-contract``) and their runtime dependencies, minus boto3 and botocore,
which the Lambda Python runtime provides (about 15 MB saved; the APIs we call are old and
stable). In a checkout, both come from the source tree (``pyproject.toml``,
``contract/pyproject.toml``); elsewhere (the CDK construct installed from a wheel), from the
installed distributions.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import io
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

# The repository's root, in a checkout (tools/rotation_tools/deploy/build_artifact.py).
ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Shipped:
    """A distribution the function runs: its name, its folder in a checkout, its packages."""

    distribution: str
    folder: str
    packages: tuple[str, ...]


SHIPPED = (
    Shipped("pg-secrets-rotation", ".", ("rotation", "handlers")),
    Shipped("pg-secrets-rotation-contract", "contract", ("rotation_contract",)),
)
PACKAGES = tuple(package for shipped in SHIPPED for package in shipped.packages)
_SHIPPED_NAMES = frozenset(shipped.distribution for shipped in SHIPPED)
PROVIDED_BY_RUNTIME = ("boto3", "botocore")
# The Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): manylinux wheels up to
# 2_34 work there. Naming only manylinux2014 would pin older releases (psycopg-binary 3.3
# ships manylinux_2_28 wheels only).
GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
PLATFORMS = {"arm64": "aarch64", "x86_64": "x86_64"}


def runtime_requirements(extra: tuple[str, ...] = (), *, root: Path = ROOT) -> list[str]:
    """The shipped distributions' dependencies, without what the Lambda runtime already has
    and without each other (their packages are copied, not installed).

    From their ``pyproject.toml`` in a source tree; from the installed distributions'
    metadata otherwise (the CDK construct builds the artifact from ``pip install``-ed ones).
    """
    dependencies: list[str] = []
    for shipped in SHIPPED:
        pyproject = root / shipped.folder / "pyproject.toml"
        if pyproject.is_file():
            dependencies += tomllib.loads(pyproject.read_text())["project"]["dependencies"]
        else:
            declared = importlib.metadata.requires(shipped.distribution) or []
            dependencies += [dep for dep in declared if "extra ==" not in dep]
    wanted: list[str] = []
    for dep in dependencies:
        name = _requirement_name(dep)
        if name in _SHIPPED_NAMES or name.startswith(PROVIDED_BY_RUNTIME) or dep in wanted:
            continue
        wanted.append(dep)
    return [*wanted, *extra]


def _requirement_name(requirement: str) -> str:
    """The distribution a requirement names, normalised (``psycopg[binary]>=3`` -> psycopg)."""
    name = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def platforms_for(arch: str) -> list[str]:
    """pip platform tags for a Lambda architecture (``arm64`` or ``x86_64``), newest first."""
    return [f"{tag}_{PLATFORMS[arch]}" for tag in GLIBC_TAGS]


def build(
    out: Path, *, platforms: list[str], python_version: str, extra: tuple[str, ...] = ()
) -> None:
    install_dependencies(out, platforms=platforms, python_version=python_version, extra=extra)
    copy_packages(out)


def install_dependencies(
    out: Path, *, platforms: list[str], python_version: str, extra: tuple[str, ...] = ()
) -> None:
    """pip-install the runtime dependencies' wheels for the Lambda platform into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    platform_args = [arg for platform in platforms for arg in ("--platform", platform)]
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--target", str(out), *platform_args,
            "--implementation", "cp", "--python-version", python_version,
            "--only-binary=:all:", "--upgrade", *runtime_requirements(extra),
        ],
        check=True,
    )  # fmt: skip
    # Console scripts of the dependencies: nothing in a Lambda runs them.
    shutil.rmtree(out / "bin", ignore_errors=True)


def copy_packages(out: Path) -> None:
    """Copy the shipped packages (``rotation_contract`` with the RDS CA bundle) into ``out``."""
    for package in PACKAGES:
        target = out / package
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(
            package_dir(package), target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for shipped in SHIPPED:
        write_metadata(out, shipped.distribution, shipped_version(shipped.distribution))


def write_metadata(out: Path, distribution: str, version: str) -> None:
    """The distribution's ``.dist-info`` with its name and version, as pip would install it:
    ``importlib.metadata.version()`` answers in the function too, so its AWS calls' user
    agent names the version it runs (``rotation_contract.aws_calls``), not ``unknown``."""
    stem = f"{re.sub(r'[-_.]+', '_', distribution)}-{version}"
    for stale in out.glob(f"{re.sub(r'[-_.]+', '_', distribution)}-*.dist-info"):
        shutil.rmtree(stale)
    info = out / f"{stem}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )


def shipped_version(distribution: str, *, root: Path = ROOT) -> str:
    """The repository's one version (``VERSION``) in a checkout; else the installed one's."""
    version_file = root / "VERSION"
    if version_file.is_file():
        return version_file.read_text().strip()
    return importlib.metadata.version(distribution)


def package_dir(package: str, *, root: Path = ROOT) -> Path:
    """Where a shipped package's source is: its folder in a checkout, else where it is
    installed (found without importing it)."""
    for shipped in SHIPPED:
        candidate = root / shipped.folder / package
        if package in shipped.packages and (candidate / "__init__.py").is_file():
            return candidate
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"cannot find the package {package}: install {_distribution_of(package)}")
    return Path(next(iter(spec.submodule_search_locations)))


def _distribution_of(package: str) -> str:
    return next(s.distribution for s in SHIPPED if package in s.packages)


def sizes(out: Path) -> tuple[int, int]:
    """Unzipped and zipped size of the artifact, in bytes."""
    files = [p for p in out.rglob("*") if p.is_file()]
    unzipped = sum(p.stat().st_size for p in files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(out))
    return unzipped, len(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="artifact directory")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument(
        "--platform", help="a pip platform tag instead of --arch (e.g. manylinux2014_x86_64)"
    )
    parser.add_argument("--python-version", default="3.12", help="the runtime's version")
    parser.add_argument(
        "--with", dest="extra", action="append", default=[], help="an extra requirement"
    )
    args = parser.parse_args(argv)
    platforms = [args.platform] if args.platform else platforms_for(args.arch)
    build(
        args.out, platforms=platforms, python_version=args.python_version, extra=tuple(args.extra)
    )
    unzipped, zipped = sizes(args.out)
    print(
        f"built {args.out} for {platforms[0]}, Python {args.python_version}: "
        f"{unzipped / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zipped"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
