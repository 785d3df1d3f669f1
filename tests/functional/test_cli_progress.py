"""A rotation that waits shows it on a terminal (the step, what it waits for, the attempt,
the time left) and stays quiet when not on a terminal or with --json."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from tests.fix_rotation import Bed
from tests.fix_silent import SilentServer

pytestmark = pytest.mark.functional


def _silent_secret(bed: Bed, silent: SilentServer) -> str:
    """A secret whose database accepts connections and never answers."""
    host, port = silent.url.removeprefix("http://").split(":")
    user, password = bed.make_user()
    return bed.secret(bed.pg.secret_value(user, password, host=host, port=int(port)))


def _read_some(leader: int, timeout: float) -> bytes | None:
    """What the terminal shows next (b"" if nothing within ``timeout``; None once closed)."""
    if not select.select([leader], [], [], timeout)[0]:
        return b""
    try:
        return os.read(leader, 4096) or None
    except OSError:  # the command exited and the terminal closed
        return None


def _rotate_on_a_terminal(arn: str, *extra: str, stop: Callable[[str], bool]) -> str:
    """Run `rotation rotate` with a pseudo-terminal as stdout and stderr, read what it shows
    until ``stop(shown)`` holds, interrupt it, and return everything it showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "rotation_tools", "rotate", arn, "--strategy", "single-user",
         *extra],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=dict(os.environ),
        start_new_session=True,
    )  # fmt: skip
    os.close(follower)
    seen = b""
    give_up = time.monotonic() + 120
    try:
        while not stop(seen.decode(errors="replace")):
            assert time.monotonic() < give_up, seen
            chunk = _read_some(leader, 0.05)
            assert chunk is not None, f"the command exited: {seen!r}"
            seen += chunk
    finally:
        os.kill(process.pid, signal.SIGINT)
        while (chunk := _read_some(leader, 5)) is not None:
            seen += chunk
            if not chunk:
                break
        process.wait(timeout=60)
        os.close(leader)
    return seen.decode(errors="replace")


def test_a_waiting_rotation_shows_its_progress_on_a_terminal(
    bed: Bed, silent: SilentServer
) -> None:
    arn = _silent_secret(bed, silent)
    shown = _rotate_on_a_terminal(arn, stop=lambda text: "attempt 2 of 5" in text)
    assert "setSecret: connecting as AWSCURRENT: attempt 1 of 5, waiting" in shown
    assert "s left in the step" in shown
    assert "attempt 1 of 5 failed (UnreachableError), next in" in shown
    assert "setSecret: connecting as AWSCURRENT: attempt 2 of 5" in shown
    assert "\r\x1b[K" in shown  # one status line, rewritten in place


def test_no_progress_with_json_on_a_terminal(bed: Bed, silent: SilentServer) -> None:
    arn = _silent_secret(bed, silent)
    # Until a second attempt connected: the first one's wait is over, and was not shown.
    shown = _rotate_on_a_terminal(arn, "--json", stop=lambda _: silent.accepted >= 2)
    assert "attempt" not in shown
    assert "\x1b[K" not in shown


def test_no_progress_when_not_on_a_terminal(bed: Bed, silent: SilentServer) -> None:
    arn = _silent_secret(bed, silent)
    process = subprocess.Popen(
        [sys.executable, "-m", "rotation_tools", "rotate", arn, "--strategy", "single-user"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        start_new_session=True,
    )  # fmt: skip
    give_up = time.monotonic() + 120
    while silent.accepted < 2 and time.monotonic() < give_up:  # a retry happened
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert silent.accepted >= 2
    assert "attempt" not in out + err
    assert err.count("\n") == 1  # only the interruption's line
