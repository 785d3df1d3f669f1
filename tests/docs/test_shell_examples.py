"""The documentation's shell and template examples: the offline step-by-step rotation runs
against moto and the test bed's PostgreSQL; what needs an AWS account is checked as far as
it can be offline (shell syntax, cfn-lint)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from rotation import AWSCURRENT
from tests.fix_rotation import Bed

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_the_offline_step_by_step_rotation(bed: Bed) -> None:
    """docs/deploy/local.md: `rotation start`, then `rotation invoke` of each step."""
    arn, _, _ = bed.user_secret()
    token = str(uuid.uuid4())
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}  # from --endpoint-url
    env.update(
        URL=bed.sm.meta.endpoint_url,
        SECRET=arn,
        TOKEN=token,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    result = subprocess.run(
        ["bash", str(EXAMPLES / "local" / "invoke-steps.sh")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "finishSecret" in result.stdout
    assert AWSCURRENT in bed.labels(arn)[token]
    assert bed.logs_in(bed.value(arn))


def test_the_attach_script_is_valid_shell() -> None:
    """It needs an account (CloudFormation's outputs, a real rotation): syntax only here."""
    script = EXAMPLES / "deploy" / "attach-secret.sh"
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "SingleUserFunctionArn" in script.read_text()  # an output template.yaml has
    assert "SingleUserFunctionArn:" in (ROOT / "template.yaml").read_text()


def test_the_rotation_schedule_template_passes_cfn_lint() -> None:
    template = EXAMPLES / "deploy" / "rotation-schedule.yaml"
    matches = lint(template.read_text(), config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_cfn_lint_would_see_a_broken_schedule() -> None:
    """The check above can fail: a schedule without its secret is a finding."""
    broken = (EXAMPLES / "deploy" / "rotation-schedule.yaml").read_text()
    broken = broken.replace("      SecretId: !Ref SecretArn\n", "")
    assert lint(broken, config=ManualArgs(regions=["us-east-1"]))
