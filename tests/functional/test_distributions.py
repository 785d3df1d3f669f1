"""The repository's five distributions, as a user installs them: each built from its
folder into an sdist and its wheel from that sdist, offline (``--no-isolation``: hatchling
is in the test venv), once per session.

What is shown: each sdist holds its own package(s) and its metadata, nothing else (no
tests, test bed or docs), and its wheel exactly the sdist's packages; ``twine check``
passes; every version is VERSION's and every pin between them admits it; installed all
together into one fresh venv, no file belongs to two of them (pip would let one overwrite
the other, and uninstalling one would delete the other's file); and a venv holding only
the client's wheels imports ``rotation_client``, logs in through it to the real server,
and has none of the rotation function's side.

A fresh venv sees the third-party packages its wheels declare, and only those: each
distribution of their dependency closure, found installed in this test venv, is linked
into a directory its ``.pth`` names (a directory named by a ``.pth`` is not a site
directory: the editable installs' ``.pth`` files next to the real ones are not read). A
dependency a wheel forgot to declare is then missing in the venv, as on a user's machine.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.fix_rotation import Bed
from tests.unit.test_boundaries import PACKAGES

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text().strip()
# What every sdist holds besides its packages (hatchling writes PKG-INFO and takes the
# .gitignore it excluded files by).
SDIST_METADATA = frozenset({"PKG-INFO", "pyproject.toml", "README.md", ".gitignore"})


@dataclass(frozen=True)
class Dist:
    """One distribution: its folder, the top-level packages its wheel installs, and the
    files its sdist holds besides those and :data:`SDIST_METADATA`."""

    name: str
    folder: str
    packages: frozenset[str]
    sdist_extra: frozenset[str] = frozenset()

    @property
    def out(self) -> str:  # where its build goes
        return "root" if self.folder == "." else self.folder

    @property
    def stem(self) -> str:  # the file names' prefix
        return f"{self.name.replace('-', '_')}-{VERSION}"


DISTS = (
    # The root's own VERSION is the one the others read as ../VERSION.
    Dist("pg-secrets-rotation", ".", frozenset({"rotation", "handlers"}), frozenset({"VERSION"})),
    Dist("pg-secrets-rotation-contract", "contract", frozenset({"rotation_contract"})),
    Dist("pg-secrets-rotation-client", "client", frozenset({"rotation_client"})),
    Dist("pg-secrets-rotation-tools", "tools", frozenset({"rotation_tools"})),
    Dist("pg-secrets-rotation-cdk", "cdk", frozenset({"rotation_cdk"})),
)
BY_NAME = {dist.name: dist for dist in DISTS}
# The construct's dependencies: in the test venv only after `make cdk`.
CDK_ONLY = frozenset({"aws-cdk-lib", "constructs"})
# What the rotation function's side needs and an application with the client must not load.
LAMBDA_SIDE = ("handlers", "rotation", "rotation_tools", "aws_lambda_powertools", "tenacity")


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path

    def sdist_names(self) -> list[str]:
        """The sdist's files, without its ``name-version/`` prefix."""
        with tarfile.open(self.sdist) as archive:
            return [m.name.partition("/")[2] for m in archive.getmembers() if m.isfile()]

    def wheel_names(self) -> list[str]:
        return zipfile.ZipFile(self.wheel).namelist()

    def metadata(self) -> Message:
        dist_info = f"{self.wheel.name.split('-py3')[0]}.dist-info"
        text = zipfile.ZipFile(self.wheel).read(f"{dist_info}/METADATA").decode()
        return email.parser.Parser(policy=email.policy.compat32).parsestr(text)

    def requirements(self) -> list[Requirement]:
        """Its Requires-Dist without the extras'."""
        found = [Requirement(r) for r in self.metadata().get_all("Requires-Dist") or []]
        return [r for r in found if r.marker is None or r.marker.evaluate({"extra": ""})]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Every distribution built once: ``python -m build`` with neither --sdist nor --wheel
    builds the sdist, then the wheel from the unpacked sdist (not from the folder). The
    five builds run side by side."""
    out = tmp_path_factory.mktemp("dists")
    running = {
        dist.name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "build",
                "--no-isolation",
                "--outdir",
                str(out / dist.out),
                str(ROOT / dist.folder),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for dist in DISTS
    }
    # Every build waited for before any is judged: none is left running.
    outputs = {name: process.communicate(timeout=300)[0] for name, process in running.items()}
    found = {}
    for name, output in outputs.items():
        assert running[name].returncode == 0, output
        assert "Building wheel from sdist" in output, output
        folder = out / BY_NAME[name].out
        (sdist,) = folder.glob("*.tar.gz")
        (wheel,) = folder.glob("*.whl")
        found[name] = Built(sdist, wheel)
    return found


def _package_files(dist: Dist) -> set[str]:
    """The files of the distribution's packages in this checkout, relative to its folder."""
    folder = ROOT / dist.folder
    return {
        str(path.relative_to(folder))
        for package in dist.packages
        for path in (folder / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_every_package_ships_in_exactly_one_distribution_and_the_test_bed_in_none() -> None:
    shipped = [package for dist in DISTS for package in dist.packages]
    assert sorted(shipped) == sorted(set(PACKAGES) - {"testbed"})


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.name)
def test_the_sdist_holds_its_packages_and_metadata_only(
    built: dict[str, Built], dist: Dist
) -> None:
    names = built[dist.name].sdist_names()
    assert built[dist.name].sdist.name == f"{dist.stem}.tar.gz"
    assert len(names) == len(set(names))
    tops = {name.split("/")[0] for name in names}
    assert tops == dist.packages | SDIST_METADATA | dist.sdist_extra
    assert {n for n in names if n.split("/")[0] in dist.packages} == _package_files(dist)


@pytest.mark.parametrize("dist", DISTS, ids=lambda d: d.name)
def test_the_wheel_from_the_sdist_holds_the_same_packages(
    built: dict[str, Built], dist: Dist
) -> None:
    names = built[dist.name].wheel_names()
    assert built[dist.name].wheel.name == f"{dist.stem}-py3-none-any.whl"
    files = {name for name in names if not name.startswith(f"{dist.stem}.dist-info/")}
    assert files == _package_files(dist)
    for package in dist.packages:  # typed (PEP 561)
        assert f"{package}/py.typed" in files
    assert not [n for n in names if n.split("/")[0] in {"testbed", "tests", "bench", "docs"}]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # Only the command installs a console script.
    scripts = f"{dist.stem}.dist-info/entry_points.txt" in names
    assert scripts == (dist.name == "pg-secrets-rotation-tools")


def test_twine_check_passes_on_every_sdist_and_wheel(built: dict[str, Built]) -> None:
    files = [str(path) for b in built.values() for path in (b.sdist, b.wheel)]
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == len(files), result.stdout


def test_every_version_is_versions_and_every_pin_between_them_admits_it(
    built: dict[str, Built],
) -> None:
    for name, b in built.items():
        with tarfile.open(b.sdist) as archive:
            member = archive.extractfile(f"{BY_NAME[name].stem}/PKG-INFO")
            assert member is not None
            pkg_info = email.parser.Parser().parsestr(member.read().decode())
        assert pkg_info["Version"] == VERSION, name
        assert b.metadata()["Version"] == VERSION, name
        assert b.metadata()["Name"] == name
        pins = [r for r in b.requirements() if r.name in BY_NAME]
        for pin in pins:
            assert pin.specifier.contains(VERSION), (name, str(pin))


def _ours_reachable(built: Mapping[str, Built], name: str) -> set[str]:
    """The distributions ``name`` pulls in through its pins, itself included."""
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(r.name for r in built[current].requirements() if r.name in BY_NAME)
    return seen


def test_each_distribution_depends_on_those_its_package_may_import(
    built: dict[str, Built],
) -> None:
    """test_boundaries.PACKAGES says which of our packages each may import; the pins
    must bring them (the test bed aside: the command's demo runs from a checkout). And the
    client pulls in nothing of the function's side."""
    home = {package: dist.name for dist in DISTS for package in dist.packages}
    for dist in DISTS:
        for package in dist.packages:
            needed = {home[p] for p in PACKAGES[package].may_import if p != "testbed"}
            assert needed <= _ours_reachable(built, dist.name), (dist.name, package)
    assert _ours_reachable(built, "pg-secrets-rotation-client") == {
        "pg-secrets-rotation-client",
        "pg-secrets-rotation-contract",
    }


def test_the_client_offers_its_integrations_as_extras(built: dict[str, Built]) -> None:
    metadata_ = built["pg-secrets-rotation-client"].metadata()
    assert sorted(metadata_.get_all("Provides-Extra") or []) == [
        "async",
        "django",
        "pool",
        "sqlalchemy",
    ]
    assert sorted(r.name for r in built["pg-secrets-rotation-client"].requirements()) == [
        "boto3",
        "pg-secrets-rotation-contract",
        "psycopg",
    ]


# -- fresh venvs ------------------------------------------------------------------------


def _third_party_closure(wheels: Iterable[Built]) -> tuple[list[metadata.Distribution], set[str]]:
    """The installed distributions (of this test venv) that ``wheels`` need, directly or
    not, without extras; and the names needed but not installed here. A pin on one of ours
    must be among ``wheels``."""
    wheels = list(wheels)
    ours = {b.metadata()["Name"] for b in wheels}
    todo = [r for b in wheels for r in b.requirements()]
    seen: set[tuple[str, str]] = set()
    found: dict[str, metadata.Distribution] = {}
    missing: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in BY_NAME:
            assert name in ours, f"needs {name}, which is not among {sorted(ours)}"
            continue
        extras = {"", *requirement.extras}
        if all((name, extra) in seen for extra in extras):
            continue
        seen.update((name, extra) for extra in extras)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        assert requirement.specifier.contains(dist.version, prereleases=True), (
            f"{requirement} is not satisfied by the installed {name} {dist.version}"
        )
        found[name] = dist
        for text in dist.requires or []:
            needed = Requirement(text)
            if needed.marker is None or any(
                needed.marker.evaluate({"extra": extra}) for extra in extras
            ):
                todo.append(needed)
    return list(found.values()), missing


def _link_into(directory: Path, dists: Iterable[metadata.Distribution]) -> None:
    """Each distribution's top-level files and folders (from its RECORD), linked."""
    directory.mkdir()
    for dist in dists:
        assert dist.files is not None, dist.metadata["Name"]
        for top in {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}:
            link, target = directory / top, Path(str(dist.locate_file(top)))
            if link.is_symlink():  # a namespace package two distributions share
                assert link.readlink() == target
            elif target.exists():
                link.symlink_to(target)


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        (site,) = self.path.glob("lib/python*/site-packages")
        return site

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """This test venv's pip, run on the venv's interpreter (the venv has no pip)."""
        return subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.python),
             "--disable-pip-version-check", "--no-input", *args],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    def run(self, code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """``-I``: neither the working directory nor PYTHONPATH on sys.path."""
        return subprocess.run(
            [str(self.python), "-I", "-c", textwrap.dedent(code), *args],
            capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
        )  # fmt: skip

    def records(self) -> dict[str, list[str]]:
        """Each installed distribution of ours and the paths its RECORD lists."""
        found: dict[str, list[str]] = {}
        for record in self.site_packages.glob("pg_secrets_rotation*.dist-info/RECORD"):
            name = canonicalize_name(record.parent.name.split("-")[0])
            found[name] = [line.split(",")[0] for line in record.read_text().splitlines()]
        return found


def _fresh_venv(path: Path, wheels: Iterable[Built]) -> tuple[Venv, set[str]]:
    """A venv with ``wheels`` installed (offline) and their third-party dependencies
    visible; and the dependencies this test venv does not have."""
    wheels = list(wheels)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    venv = Venv(path)
    installed = venv.pip(
        "install", "--no-deps", "--no-index", "--quiet", *(str(b.wheel) for b in wheels)
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    dists, missing = _third_party_closure(wheels)
    _link_into(path / "third-party", dists)
    (venv.site_packages / "third_party.pth").write_text(f"{path / 'third-party'}\n")
    return venv, missing


@pytest.fixture(scope="session")
def all_installed(
    built: dict[str, Built], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Venv, set[str]]:
    return _fresh_venv(tmp_path_factory.mktemp("all") / "venv", built.values())


def test_installed_together_no_file_belongs_to_two(
    all_installed: tuple[Venv, set[str]],
) -> None:
    venv, _ = all_installed
    records = venv.records()
    assert sorted(records) == sorted(BY_NAME)
    owners: dict[str, list[str]] = {}
    for name, paths in records.items():
        for path in paths:
            owners.setdefault(path, []).append(name)
    assert {path: names for path, names in owners.items() if len(names) > 1} == {}
    # The console script is the command's alone.
    assert [p for p in records["pg-secrets-rotation-tools"] if p.endswith("/bin/rotation")]


def test_installed_together_every_package_imports_and_the_command_runs(
    all_installed: tuple[Venv, set[str]], tmp_path: Path
) -> None:
    """From the venv, not this checkout; the construct's package only where its
    dependencies are (``make cdk``)."""
    venv, missing = all_installed
    assert missing <= CDK_ONLY, missing
    packages = sorted(p for d in DISTS for p in d.packages if not (missing and p == "rotation_cdk"))
    imported = venv.run(
        """
        import importlib, json, sys
        print(json.dumps({p: importlib.import_module(p).__file__ for p in sys.argv[1:]}))
        """,
        *packages,
        cwd=tmp_path,
    )
    assert imported.returncode == 0, imported.stderr
    for package, path in json.loads(imported.stdout).items():
        assert Path(path).is_relative_to(venv.site_packages), package
    checked = venv.pip("check")
    # Only the construct's own requirements may be missing (aws-cdk-lib is installed here
    # only once `make cdk` or `make policy` ran): "No broken requirements found" otherwise.
    problems = [
        line
        for line in checked.stdout.splitlines()
        if line.strip() and not line.startswith("No broken requirements")
    ]
    assert all(any(f" {name}," in line for name in CDK_ONLY) for line in problems), problems
    version = subprocess.run(
        [str(venv.path / "bin" / "rotation"), "--version"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert VERSION in version.stdout


def test_the_client_alone_connects_and_has_nothing_of_the_function_side(
    built: dict[str, Built], tmp_path: Path, bed: Bed
) -> None:
    """A venv with the client's wheel and the contract's (its one dependency of ours):
    it reads the secret from Secrets Manager (moto) and logs in to the real server with TLS
    (verify-full) and SCRAM; the rotation function's packages, the command, Powertools and
    tenacity are not there to import."""
    wheels = [built["pg-secrets-rotation-client"], built["pg-secrets-rotation-contract"]]
    venv, missing = _fresh_venv(tmp_path / "venv", wheels)
    assert missing == set()
    checked = venv.pip("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    arn, user, _ = bed.user_secret()
    result = venv.run(
        """
        import importlib.util, json, sys
        import rotation_client, rotation_contract
        from rotation_client import connect
        with connect(sys.argv[1], autocommit=True) as conn:
            row = conn.execute("SELECT session_user, ssl FROM pg_stat_ssl"
                               " JOIN pg_stat_activity USING (pid)"
                               " WHERE pid = pg_backend_pid()").fetchone()
        print(json.dumps({
            "files": [rotation_client.__file__, rotation_contract.__file__],
            "user": row[0],
            "ssl": row[1],
            "importable": [m for m in sys.argv[2:] if importlib.util.find_spec(m)],
            "loaded": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2:]),
        }))
        """,
        arn,
        *LAMBDA_SIDE,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(Path(f).is_relative_to(venv.site_packages) for f in report["files"])
    assert report["user"] == user
    assert report["ssl"] is True
    assert report["importable"] == []
    assert report["loaded"] == []
    assert sorted(venv.records()) == ["pg-secrets-rotation-client", "pg-secrets-rotation-contract"]
