"""The offline sequence of docs/deploy/local.md (`rotation start`, then `rotation invoke
--endpoint-url` for each step), and printed commands that act where the command looked."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rotation import AWSCURRENT, AWSPENDING, Step
from testbed.pgcluster import free_port
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]


def _without_endpoint_env() -> dict[str, str]:
    """The test environment minus AWS_ENDPOINT_URL: the endpoint must come from a flag."""
    return {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}


def _rotation(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rotation_tools", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip


def test_the_offline_sequence_of_the_docs(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    url = bed.sm.meta.endpoint_url
    env = _without_endpoint_env()
    token = str(uuid.uuid4())
    started = _rotation("start", arn, "--endpoint-url", url, "--token", token, env=env)
    assert started.returncode == 0, started.stderr
    assert f"version {token} is AWSPENDING" in started.stdout
    assert bed.labels(arn)[token] == [AWSPENDING]
    assert bed.sm.describe_secret(SecretId=arn)["RotationEnabled"] is True
    for step in Step:
        result = _rotation(
            "invoke", "SingleUserFunction", "-e", f"events/{step.value}.json",
            "--env-vars", "events/env.json", "--endpoint-url", url,
            "--secret-id", arn, "--token", token, "--json", env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"ok": True, "result": "done"}
    assert AWSCURRENT in bed.labels(arn)[token]
    assert bed.logs_in(bed.value(arn))


def _run_printed(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A `rotation ...` command line as printed, run as typed in ``cwd``."""
    words = shlex.split(line)
    assert words[0] == "rotation", line
    return subprocess.run(
        [sys.executable, "-m", "rotation_tools", *words[1:]],
        capture_output=True, text=True, env=env, timeout=120, check=False, cwd=cwd,
    )  # fmt: skip


def test_start_and_invoke_print_commands_that_work_from_any_directory(
    bed: Bed, tmp_path: Path
) -> None:
    """Outside the repository: `rotation start` prints the first step's command with paths
    that work there, and each `rotation invoke` says what ran and prints the next one."""
    arn, _, _ = bed.user_secret()
    url = bed.sm.meta.endpoint_url
    env = _without_endpoint_env()
    started = _run_printed(f"rotation start {arn} --endpoint-url {url}", tmp_path, env)
    assert started.returncode == 0, started.stderr
    line = next(s.strip() for s in started.stdout.splitlines() if "rotation invoke" in s)
    assert f"-e {ROOT / 'events' / 'createSecret.json'}" in line
    token = line.split("--token ")[1].split()[0]
    ran = []
    while line:
        result = _run_printed(line, tmp_path, env)
        assert result.returncode == 0, result.stderr
        first, *rest = result.stdout.splitlines()
        step = first.split(" ran ")[1].split()[0]
        assert first.startswith(f"SingleUserFunction ran {step} of {arn} (token {token}) in ")
        assert first.endswith(' ms: "done"')
        ran.append(step)
        line = rest[0].removeprefix("Next: ") if rest[0].startswith("Next: ") else ""
    assert ran == [step.value for step in Step]
    assert rest == [f"The rotation is complete: `rotation status {arn} --endpoint-url {url}` "
                    "shows the labels"]  # fmt: skip
    assert AWSCURRENT in bed.labels(arn)[token]
    assert bed.logs_in(bed.value(arn))


def test_invoke_endpoint_url_wins_over_the_env_vars_file(bed: Bed, tmp_path: Path) -> None:
    arn, _, _ = bed.user_secret()
    url = bed.sm.meta.endpoint_url
    token = bed.driver(bed.rotator()).begin(arn)
    env_file = tmp_path / "env.json"
    closed = f"http://127.0.0.1:{free_port()}"
    env_file.write_text(json.dumps({"Parameters": {"SECRETS_MANAGER_ENDPOINT": closed}}))
    result = _rotation(
        "invoke", "SingleUserFunction", "-e", "events/createSecret.json",
        "--env-vars", str(env_file), "--endpoint-url", url,
        "--secret-id", arn, "--token", token, env=_without_endpoint_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert bed.value(arn, AWSPENDING)["username"] == bed.value(arn)["username"]


def test_start_refuses_aws_where_rotate_secret_invokes_the_function() -> None:
    env = {**_without_endpoint_env(), "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("SECRETS_MANAGER_ENDPOINT", None)
    result = _rotation("start", "app/db", env=env)  # refused before any call
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "https://secretsmanager.us-east-1.amazonaws.com is AWS" in result.stderr
    assert "aws secretsmanager rotate-secret --secret-id app/db" in result.stderr


def test_start_refuses_while_a_rotation_is_in_progress(bed: Bed) -> None:
    arn, _, _ = bed.user_secret()
    token = bed.driver(bed.rotator()).begin(arn)
    result = _rotation("start", arn, env=dict(os.environ))
    assert result.returncode == 1
    assert f"already in progress: version {token} is AWSPENDING" in result.stderr
    assert [v for v, s in bed.labels(arn).items() if AWSPENDING in s] == [token]


def _stuck(bed: Bed) -> str:
    arn, _, _ = bed.user_secret()
    driver = bed.driver(bed.rotator())
    driver.run(arn, driver.begin(arn), [Step.CREATE])
    return arn


def test_status_remedies_carry_every_connection_option(bed: Bed, tmp_path: Path) -> None:
    arn = _stuck(bed)
    url = bed.sm.meta.endpoint_url
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile rot]\nregion = us-east-1\naws_access_key_id = testing\n"
        "aws_secret_access_key = testing\n"
    )
    env = {**_without_endpoint_env(), "AWS_CONFIG_FILE": str(config)}
    result = _rotation(
        "status", arn, "--endpoint-url", url, "--region", "us-east-1", "--profile", "rot", env=env
    )
    assert result.returncode == 1, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.lstrip().startswith("$ ")]
    assert len(commands) == 2
    for command in commands:
        assert f"{arn} --endpoint-url {url} --region us-east-1 --profile rot" in command


def test_status_remedies_spell_out_an_endpoint_from_the_environment(bed: Bed) -> None:
    """SECRETS_MANAGER_ENDPOINT is this project's variable; the aws CLI does not read it."""
    arn = _stuck(bed)
    url = bed.sm.meta.endpoint_url
    env = {**_without_endpoint_env(), "SECRETS_MANAGER_ENDPOINT": url}
    result = _rotation("status", arn, env=env)
    assert result.returncode == 1, result.stderr
    commands = [line for line in result.stdout.splitlines() if line.lstrip().startswith("$ ")]
    assert commands
    for command in commands:
        assert f"--endpoint-url {url}" in command
