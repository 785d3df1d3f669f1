"""The SAM side without Docker: every file in events/ through `rotation invoke`, and the
built artifact running a rotation in an isolated interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rotation import AWSCURRENT, Step
from tests.fix_multi import MultiBed
from tests.fix_rotation import Bed
from tests.functional.test_cli import rotation

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"


def _env_file(tmp_path: Path, endpoint: str) -> Path:
    env = json.loads((EVENTS / "env.json").read_text())
    env["Parameters"]["SECRETS_MANAGER_ENDPOINT"] = endpoint
    path = tmp_path / "env.json"
    path.write_text(json.dumps(env))
    return path


def _invoke_all(function: str, arn: str, token: str, env_file: Path) -> None:
    for step in Step:
        result = rotation(
            "invoke", function, "--event", str(EVENTS / f"{step.value}.json"),
            "--template", str(ROOT / "template.yaml"), "--env-vars", str(env_file),
            "--secret-id", arn, "--token", token, "--json",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        # What `sam local invoke` prints as the function's result, with --json.
        assert json.loads(result.stdout) == {"ok": True, "result": "done"}


def test_every_event_file_rotates_through_the_single_user_function(
    bed: Bed, tmp_path: Path
) -> None:
    arn, _, _ = bed.user_secret()
    driver = bed.driver(bed.rotator())
    token = driver.begin(arn)
    _invoke_all("SingleUserFunction", arn, token, _env_file(tmp_path, bed.sm.meta.endpoint_url))
    driver.complete(arn, token)
    assert bed.labels(arn)[token] == [AWSCURRENT]
    assert bed.logs_in(bed.value(arn))


def test_every_event_file_rotates_through_the_multi_user_function(
    multi: MultiBed, tmp_path: Path
) -> None:
    arn, user, _ = multi.app()
    token = multi.driver(multi.rotator()).begin(arn)
    _invoke_all("MultiUserFunction", arn, token, _env_file(tmp_path, multi.sm.meta.endpoint_url))
    assert multi.value(arn)["username"] == f"{user}_clone"


def test_invoke_reports_a_failed_step_in_one_line(bed: Bed, tmp_path: Path) -> None:
    result = rotation(
        "invoke", "SingleUserFunction", "--event", str(EVENTS / "setSecret.json"),
        "--template", str(ROOT / "template.yaml"),
        "--env-vars", str(_env_file(tmp_path, bed.sm.meta.endpoint_url)),
    )  # fmt: skip
    assert result.returncode == 1
    assert "myapp/prod/db-AbCdEf" in result.stderr
    assert "Traceback" not in result.stderr


def test_invoke_names_an_unknown_function(tmp_path: Path) -> None:
    result = rotation("invoke", "Nope", "--event", str(EVENTS / "createSecret.json"),
                      "--template", str(ROOT / "template.yaml"))  # fmt: skip
    assert result.returncode == 2  # a mistyped argument is bad usage
    assert "no function 'Nope'" in result.stderr
    assert "SingleUserFunction" in result.stderr


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The Lambda artifact for this machine, and boto3 as the Lambda runtime provides it."""
    base = tmp_path_factory.mktemp("artifact")
    out, runtime = base / "task", base / "runtime"
    machine = os.uname().machine
    arch = "arm64" if machine in ("aarch64", "arm64") else "x86_64"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    builder = ROOT / "tools" / "rotation_tools" / "deploy" / "build_artifact.py"
    subprocess.run(
        [sys.executable, str(builder), "--out", str(out),
         "--arch", arch, "--python-version", version],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--target", str(runtime), "boto3"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return out, runtime


def test_the_artifact_ships_only_our_packages_and_dependencies(artifact: tuple[Path, Path]) -> None:
    out, _ = artifact
    names = {p.name for p in out.iterdir()}
    assert {
        "rotation",
        "handlers",
        "rotation_contract",
        "psycopg",
        "aws_lambda_powertools",
        "tenacity",
    } <= names
    assert not names & {"rotation_tools", "tests", "moto", "boto3", "botocore"}
    assert (out / "rotation_contract" / "pg" / "certs" / "rds-global-bundle.pem").is_file()


ROTATE_FROM_ARTIFACT = """
import json, sys
import boto3
import handlers.postgres_single_user as module
import psycopg, tenacity, aws_lambda_powertools
from rotation.driver import LocalRotation
from rotation_contract.aws_calls import ROTATION_DISTRIBUTION, user_agent_extra
client = boto3.client("secretsmanager")
run = LocalRotation(client, module.lambda_handler).rotate(sys.argv[1])
print(json.dumps({"ok": run.succeeded, "token": run.token, "isolated": sys.flags.isolated,
                  "modules": [m.__file__
                              for m in (module, psycopg, tenacity, aws_lambda_powertools)],
                  "boto3": boto3.__file__,
                  "user_agent": user_agent_extra(ROTATION_DISTRIBUTION),
                  "site_packages": [p for p in sys.path if "site-packages" in p]}))
"""


def test_a_rotation_runs_from_the_artifact_in_an_isolated_interpreter(
    bed: Bed, artifact: tuple[Path, Path], tmp_path: Path
) -> None:
    out, runtime = artifact
    arn, _, _ = bed.user_secret()
    script = tmp_path / "rotate.py"
    script.write_text(ROTATE_FROM_ARTIFACT)
    # -I: no user site, no PYTHON* variables, no script directory; -S: no site-packages.
    # What can be imported is the standard library, the artifact and the runtime's boto3.
    bootstrap = (
        f"import sys; sys.path[:0] = [{str(out)!r}, {str(runtime)!r}]; "
        f"sys.argv = ['rotate.py', {arn!r}]; exec(open({str(script)!r}).read())"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", bootstrap], capture_output=True, text=True,
        env=dict(os.environ), timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    assert report["isolated"] == 1
    assert report["site_packages"] == []
    assert all(path.startswith(str(out)) for path in report["modules"]), report["modules"]
    assert report["boto3"].startswith(str(runtime))
    # The artifact carries its distributions' metadata: its calls name the version they run.
    version = (ROOT / "VERSION").read_text().strip()
    assert report["user_agent"] == f"pg-secrets-rotation/{version}"
    assert bed.labels(arn)[report["token"]] == [AWSCURRENT]
    assert bed.logs_in(bed.value(arn))
