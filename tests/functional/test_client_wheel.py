"""The application client's own distribution (client/pyproject.toml): built offline, it
holds rotation_client and what it shares with the rotation function, nothing of the Lambda
side, and works on its own in an interpreter that sees only it and its dependencies."""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
DIST_INFO = "pg_secrets_rotation_client-0.1.0.dist-info/"
# Of the `rotation` package, the wheel holds exactly these modules besides its subpackages
# rotation_client and rotation_contract.pg.
SHARED = {
    "rotation/__init__.py",
    "rotation/errors.py",
    "rotation/aws_errors.py",
    "rotation/aws_calls.py",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(out),
            str(ROOT / "client"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_holds_the_client_and_nothing_of_the_lambda_side(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    files = [name for name in names if not name.startswith(DIST_INFO)]
    assert all(name.startswith("rotation/") for name in files), files
    top_modules = {name for name in files if name.count("/") == 1 and name.endswith(".py")}
    assert top_modules == SHARED  # no dispatcher, store, strategy, driver, observability ...
    packages = {name.split("/")[1] for name in files if name.count("/") >= 2}
    assert packages == {"client", "pg"}
    for module in (ROOT / "rotation" / "client").glob("*.py"):
        assert f"client/rotation_client/{module.name}" in files
    assert (
        "contract/rotation_contract/pg/certs/rds-global-bundle.pem" in files
    )  # verify-full needs it
    assert "rotation/py.typed" in files
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    # No console script (the `rotation` command needs the tooling and yaml).
    assert f"{DIST_INFO}entry_points.txt" not in names
    metadata = email.parser.Parser().parsestr(
        zipfile.ZipFile(wheel).read(f"{DIST_INFO}METADATA").decode()
    )
    assert metadata["Name"] == "pg-secrets-rotation-client"
    assert sorted(metadata.get_all("Provides-Extra") or []) == [
        "async",
        "django",
        "pool",
        "sqlalchemy",
    ]
    requires = metadata.get_all("Requires-Dist") or []
    assert [r for r in requires if "extra ==" not in r] == [
        "boto3>=1.34",
        "psycopg[binary]<4,>=3.1.12",
    ]


def test_the_installed_wheel_connects_on_its_own(wheel: Path, tmp_path: Path, bed: Bed) -> None:
    """Installed into a directory and imported by an interpreter that sees that directory
    and the dependencies' site-packages only (``-S``: not this checkout's editable install,
    nor the working directory): it reads the secret from Secrets Manager (moto) and logs in
    to the real server with TLS (verify-full) and SCRAM."""
    target = tmp_path / "app-env"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    arn, user, _ = bed.user_secret()
    paths = [str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    code = textwrap.dedent(
        """
        import importlib.util, json, sys
        paths, arn = json.loads(sys.argv[1]), sys.argv[2]
        sys.path[:] = paths + [p for p in sys.path if p and "site-packages" not in p]
        import rotation, rotation_client
        from rotation_client import connect
        with connect(arn, autocommit=True) as conn:
            row = conn.execute("SELECT session_user, ssl FROM pg_stat_ssl"
                               " JOIN pg_stat_activity USING (pid)"
                               " WHERE pid = pg_backend_pid()").fetchone()
        print(json.dumps({
            "rotation": rotation.__file__,
            "client": rotation_client.__file__,
            "user": row[0],
            "ssl": row[1],
            "handlers": importlib.util.find_spec("handlers") is not None,
            "rotation_tools": importlib.util.find_spec("rotation_tools") is not None,
        }))
        """
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, json.dumps(paths), arn],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=os.environ.copy(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["rotation"]).is_relative_to(target)
    assert Path(report["client"]).is_relative_to(target)
    assert report["user"] == user
    assert report["ssl"] is True
    assert not report["handlers"]
    assert not report["rotation_tools"]
