"""Ctrl-C at the worst moments: nothing the command started survives it, and an interrupted
rotation says how to resume it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rotation import AWSPENDING
from tests.fix_rotation import Bed
from tests.fix_silent import SilentServer
from tests.fix_tmpdir import private_tmpdir_env, processes_naming

pytestmark = pytest.mark.functional


def _wait_for(predicate: object, process: subprocess.Popen[str], what: str) -> None:
    """Poll until ``predicate()`` holds; fail (not hang) if the command exits first."""
    assert callable(predicate)
    give_up = time.monotonic() + 120
    while not predicate():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the command exited before {what}:\n{out}\n{err}")
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.002)


def _pg_ctl_start_running(tmpdir: Path) -> bool:
    return any(
        "pg_ctl" in command and command.endswith(" start")
        for command in processes_naming(str(tmpdir)).values()
    )


def test_ctrl_c_during_cluster_start_leaves_no_server_and_no_files(tmp_path: Path) -> None:
    """SIGINT while `pg_ctl start` runs: the server it was starting is stopped too."""
    with private_tmpdir_env() as (tmpdir, env):
        process = subprocess.Popen(
            [sys.executable, "-m", "rotation_tools", "demo"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip
        _wait_for(lambda: _pg_ctl_start_running(tmpdir), process, "pg_ctl start ran")
        os.kill(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 130, err
        assert "interrupted" in err
        assert "Traceback" not in err
        assert processes_naming(str(tmpdir)) == {}  # no postgres on that data directory
        assert list(tmpdir.iterdir()) == []


def test_an_interrupted_rotate_says_it_is_left_in_progress(bed: Bed, silent: SilentServer) -> None:
    """Interrupted in setSecret (the database accepts and never answers): the rotation is
    left in progress, and the message says that running it again resumes it."""
    host, port = silent.url.removeprefix("http://").split(":")
    user, password = bed.make_user()
    arn = bed.secret(bed.pg.secret_value(user, password, host=host, port=int(port)))
    process = subprocess.Popen(
        [sys.executable, "-m", "rotation_tools", "rotate", arn, "--strategy", "single-user"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        start_new_session=True,
    )  # fmt: skip
    # setSecret connects to the database only after createSecret registered the token.
    _wait_for(lambda: silent.accepted > 0, process, "setSecret connected")
    os.kill(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    pending = [v for v, stages in bed.labels(arn).items() if AWSPENDING in stages]
    assert len(pending) == 1
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert f"left in progress (version {pending[0]} is AWSPENDING)" in err
    assert f"rotation rotate {arn} --strategy single-user" in err
    assert "again resumes it" in err
    assert password not in err
