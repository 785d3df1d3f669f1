"""Build the Lambda artifact without Docker: wheels for the Lambda platform, plus our code.

``sam build`` runs this through the Makefile (``BuildMethod: makefile``). It needs only the
standard library and pip, so it runs with any local Python, whatever the runtime's version:
pip fetches wheels for the target platform and Python version (``--platform``,
``--python-version``, ``--only-binary=:all:``), never building or importing them.

What ships: ``rotation/``, ``handlers/`` (with the RDS CA bundle) and the runtime
dependencies from ``pyproject.toml``, minus boto3 and botocore, which the Lambda Python
runtime provides (about 15 MB saved; the APIs we call are old and stable).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "pg-secrets-rotation"
PACKAGES = ("rotation", "handlers")
PROVIDED_BY_RUNTIME = ("boto3", "botocore")
# The Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): manylinux wheels up to
# 2_34 work there. Naming only manylinux2014 would pin older releases (psycopg-binary 3.3
# ships manylinux_2_28 wheels only).
GLIBC_TAGS = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
PLATFORMS = {"arm64": "aarch64", "x86_64": "x86_64"}


def runtime_requirements(extra: tuple[str, ...] = (), *, root: Path = ROOT) -> list[str]:
    """The project's dependencies, without what the Lambda runtime already has.

    From ``pyproject.toml`` in a source tree; from the installed distribution's metadata
    otherwise (the CDK construct builds the artifact from a ``pip install``-ed package).
    """
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    else:
        declared = importlib.metadata.requires(DISTRIBUTION) or []
        dependencies = [dep for dep in declared if "extra ==" not in dep]
    wanted = [dep for dep in dependencies if not dep.lower().startswith(PROVIDED_BY_RUNTIME)]
    return [*wanted, *extra]


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
    """Copy ``rotation/`` and ``handlers/`` (with the RDS CA bundle) into ``out``."""
    for package in PACKAGES:
        target = out / package
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(
            ROOT / package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )


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
