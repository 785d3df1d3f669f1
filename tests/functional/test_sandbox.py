"""``rotation sandbox``, used as a newcomer uses it: started in one shell, its printed
exports, client example and ``rotation`` commands pasted into another, then stopped.

Every test runs it with a TMPDIR of its own and proves that stopping it - Ctrl-C (to the
whole process group, as a terminal sends it), twice, SIGTERM, SIGHUP, at any moment - leaves
no process on its files, no file, and neither of its ports listening.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fix_tmpdir import private_tmpdir_env, processes_naming

pytestmark = pytest.mark.functional

_GIVE_UP_S = 120.0


class _Lines:
    """A process's output lines, read by a thread: waiting for one never hangs the test."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        stream.close()  # type: ignore[attr-defined]  # its only reader: at its end
        self._queue.put(None)

    def until(self, predicate: object, what: str) -> str:
        """The first new line for which ``predicate`` holds (the ones before are kept)."""
        assert callable(predicate)
        give_up = time.monotonic() + _GIVE_UP_S
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, give_up - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"timed out waiting for {what}; output so far: {self.lines}")
            if line is None:
                pytest.fail(f"the output ended before {what}: {self.lines}")
            self.lines.append(line)
            if predicate(line):
                return line

    def more(self, count: int, what: str) -> None:
        """Wait for ``count`` more lines."""
        target = len(self.lines) + count
        self.until(lambda _line: len(self.lines) >= target, what)

    def rest(self) -> list[str]:
        """Every line, once the stream has ended."""
        self._thread.join(timeout=_GIVE_UP_S)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.lines
            if line is not None:
                self.lines.append(line)


@dataclass
class Sandbox:
    process: subprocess.Popen[str]
    out: _Lines
    tmpdir: Path
    ports: list[int] = field(default_factory=list)

    def stop(self, sig: signal.Signals = signal.SIGINT, *, group: bool = True) -> str:
        """Send ``sig`` (to the process group, as a terminal does) and wait; stderr."""
        if group:
            os.killpg(self.process.pid, sig)
        else:
            os.kill(self.process.pid, sig)
        self.process.wait(timeout=_GIVE_UP_S)
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def assert_nothing_left(self) -> None:
        assert processes_naming(str(self.tmpdir)) == {}
        assert list(self.tmpdir.iterdir()) == []
        for port in self.ports:
            with socket.socket() as sock:
                assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listens"


def _reap(*processes: subprocess.Popen[str] | None) -> None:
    """Kill whatever still runs of ``processes`` (a failed test's) and close their stderr
    (their stdout is closed by its reader, :class:`_Lines`, at its end)."""
    for process in processes:
        if process is None:
            continue
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


@pytest.fixture
def sandbox_env() -> Iterator[tuple[Path, dict[str, str]]]:
    with private_tmpdir_env() as (tmpdir, env):
        yield tmpdir, env


def _start(tmpdir: Path, env: dict[str, str], *args: str) -> Sandbox:
    process = subprocess.Popen(
        [sys.executable, "-m", "rotation_tools", "sandbox", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    return Sandbox(process, _Lines(process.stdout), tmpdir)


def _port_of(line: str) -> int:
    return int(line.split("127.0.0.1:")[1].split(maxsplit=1)[0].rstrip(")"))


def _ready(sandbox: Sandbox) -> list[str]:
    """Wait until it is ready; record its two ports; every line so far."""
    out = sandbox.out
    sandbox.ports.append(_port_of(out.until(lambda s: "emulator (moto) at" in s, "moto")))
    sandbox.ports.append(_port_of(out.until(lambda s: "PostgreSQL at" in s, "the cluster")))
    out.until(lambda s: s.startswith("Ready."), "ready")
    return out.lines


@dataclass(frozen=True)
class Printed:
    """What the sandbox told the user to paste into another shell."""

    exports: list[str]
    example: list[str]
    commands: dict[str, str]  # "rotate single", ... -> the command line


def _printed(lines: list[str]) -> Printed:
    exports = [line for line in lines if line.startswith("export ")]
    start = next(i for i, line in enumerate(lines) if line.endswith("<<'EOF'"))
    end = lines.index("EOF", start)
    commands = {}
    for before, line in itertools.pairwise(lines):
        if before.startswith("# "):
            verb = line.split()[1] if "-m rotation_tools" not in line else line.split()[3]
            kind = "multi" if "multi-user" in line.split("--strategy")[0] else "single"
            commands[f"{verb} {kind}"] = line
    return Printed(exports, lines[start : end + 1], commands)


def _other_shell() -> dict[str, str]:
    """A new shell's environment: none of the test bed's AWS settings or TMPDIR."""
    return {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}


def _shell(printed: Printed, *lines: str) -> list[str]:
    return ["bash", "-c", "\n".join([*printed.exports, *lines])]


def test_the_printed_exports_example_and_commands_work_from_another_shell(
    sandbox_env: tuple[Path, dict[str, str]],
) -> None:
    """Two clients run the printed example (one per secret) from other processes while the
    printed `rotation rotate` commands rotate each secret: zero failed client queries."""
    tmpdir, env = sandbox_env
    sandbox = _start(tmpdir, env)
    clients: list[subprocess.Popen[str]] = []
    try:
        printed = _printed(_ready(sandbox))
        assert [e.split("=")[0] for e in printed.exports] == [
            "export AWS_ACCESS_KEY_ID", "export AWS_SECRET_ACCESS_KEY", "export AWS_REGION",
            "export AWS_DEFAULT_REGION", "export SECRETS_MANAGER_ENDPOINT",
            "export PGSSLROOTCERT",
        ]  # fmt: skip
        assert set(printed.commands) >= {"rotate single", "rotate multi", "status single"}
        # The example as printed, querying a little faster than once a second, so that many
        # queries fall inside the rotations.
        example = "\n".join(printed.example)
        assert example.count("time.sleep(1)") == 1
        example = example.replace("time.sleep(1)", "time.sleep(0.02)")
        outputs = {}
        for secret in ("sandbox/single-user", "sandbox/multi-user"):
            client = subprocess.Popen(
                _shell(printed, example.replace(" sandbox/single-user ", f" {secret} ", 1)),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_other_shell(),
                start_new_session=True,
            )  # fmt: skip
            clients.append(client)
            outputs[secret] = _Lines(client.stdout)
        first = {"sandbox/single-user": "app_single 2", "sandbox/multi-user": "app_multi 2"}
        for secret, line in first.items():
            outputs[secret].until(lambda s, want=line: s == want, f"{secret}'s first query")

        def rotate(which: str) -> None:
            result = subprocess.run(
                _shell(printed, printed.commands[which]), capture_output=True, text=True,
                env=_other_shell(), timeout=_GIVE_UP_S, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert "is AWSCURRENT" in result.stdout
            # Each client keeps querying after the rotation: 5 more queries each.
            for lines in outputs.values():
                lines.more(5, f"queries after {which}")

        rotate("rotate single")
        rotate("rotate multi")
        rotate("rotate multi")
        status = subprocess.run(
            _shell(printed, printed.commands["status single"]), capture_output=True, text=True,
            env=_other_shell(), timeout=_GIVE_UP_S, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert "No rotation is in progress" in status.stdout
        for client in clients:
            assert client.poll() is None, client.communicate()  # no query failed
            os.killpg(client.pid, signal.SIGTERM)
            client.wait(timeout=_GIVE_UP_S)
            assert client.stderr is not None
            assert client.stderr.read() == ""
        for secret, lines in outputs.items():
            every = lines.rest()
            assert len(every) > 15
            users = {"app_single"} if secret == "sandbox/single-user" else {
                "app_multi", "app_multi_clone"}  # fmt: skip
            assert all(line.split()[0] in users and line.split()[1] == "2" for line in every)
        err = sandbox.stop(signal.SIGINT)
        assert sandbox.process.returncode == 0, err
        assert err == ""
        assert sandbox.out.rest()[-1] == "Cleaned up: nothing left running, no file left behind."
        sandbox.assert_nothing_left()
    finally:
        _reap(*clients, sandbox.process)


def test_json_is_one_document_once_ready(sandbox_env: tuple[Path, dict[str, str]]) -> None:
    tmpdir, env = sandbox_env
    sandbox = _start(tmpdir, env, "--json")
    try:
        text = sandbox.out.until(lambda s: s == "}", "the document")
        document = json.loads("\n".join(sandbox.out.lines))
        assert text == "}"
        assert document["ok"] is True
        assert document["pid"] == sandbox.process.pid
        assert set(document["secrets"]) == {"single-user", "multi-user", "master"}
        assert document["environment"]["AWS_DEFAULT_REGION"] == "us-east-1"
        sandbox.ports = [int(document["environment"]["SECRETS_MANAGER_ENDPOINT"].rsplit(":", 1)[1])]
        err = sandbox.stop(signal.SIGTERM, group=False)
        assert sandbox.process.returncode == 0, err
        assert sandbox.out.rest() == sandbox.out.lines  # nothing more on stdout
        sandbox.assert_nothing_left()
    finally:
        _reap(sandbox.process)


def _pg_ctl_start_running(tmpdir: Path) -> bool:
    return any(
        "pg_ctl" in command and command.endswith(" start")
        for command in processes_naming(str(tmpdir)).values()
    )


def _initdb_running(tmpdir: Path) -> bool:
    return any("initdb" in command for command in processes_naming(str(tmpdir)).values())


def _wait_for(predicate: object, sandbox: Sandbox, what: str) -> None:
    assert callable(predicate)
    give_up = time.monotonic() + _GIVE_UP_S
    while not predicate():
        if sandbox.process.poll() is not None:
            pytest.fail(f"the sandbox exited before {what}: {sandbox.out.rest()}")
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        time.sleep(0.002)


@pytest.mark.parametrize("moment", ["initdb", "pg_ctl start", "set-up"])
def test_ctrl_c_while_starting_leaves_nothing(
    sandbox_env: tuple[Path, dict[str, str]], moment: str
) -> None:
    """Ctrl-C to the process group (initdb and pg_ctl get it too) while the cluster is made,
    while it starts, and while the users and secrets are made: interrupted (exit 130, one
    line), or, had set-up just finished, stopped as told (exit 0); nothing left either way."""
    tmpdir, env = sandbox_env
    sandbox = _start(tmpdir, env)
    try:
        if moment == "initdb":
            _wait_for(lambda: _initdb_running(tmpdir), sandbox, "initdb ran")
        elif moment == "pg_ctl start":
            _wait_for(lambda: _pg_ctl_start_running(tmpdir), sandbox, "pg_ctl start ran")
        else:
            sandbox.ports.append(_port_of(sandbox.out.until(lambda s: "PostgreSQL at" in s, "pg")))
        err = sandbox.stop(signal.SIGINT)
        out = sandbox.out.rest()
        assert "Traceback" not in err
        if any(line.startswith("Stopping") for line in out):
            assert sandbox.process.returncode == 0, err
        else:
            assert sandbox.process.returncode == 130, err
            assert err == "rotation: error: interrupted; everything started was stopped\n"
        sandbox.assert_nothing_left()
    finally:
        _reap(sandbox.process)


@pytest.mark.parametrize(
    ("how", "signals"),
    [
        ("ctrl-c", [signal.SIGINT]),
        ("ctrl-c twice", [signal.SIGINT, signal.SIGINT]),
        ("kill", [signal.SIGTERM]),
        ("terminal closed", [signal.SIGHUP]),
    ],
)
def test_stopping_a_ready_sandbox_with_a_client_connected_leaves_nothing(
    sandbox_env: tuple[Path, dict[str, str]], how: str, signals: list[signal.Signals]
) -> None:
    """Stopped as told while another process holds a session open: exit 0, said so,
    nothing left (the server ends the session; the client is not the sandbox's)."""
    tmpdir, env = sandbox_env
    sandbox = _start(tmpdir, env)
    holder = None
    try:
        printed = _printed(_ready(sandbox))
        holder = subprocess.Popen(
            _shell(printed, f"{sys.executable} - <<'EOF'", "import sys, time",
                   "from rotation_client import connect",
                   "with connect('sandbox/single-user') as conn:",
                   "    conn.execute('SELECT 1'); print('connected', flush=True)",
                   "    time.sleep(600)", "EOF"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_other_shell(),
            start_new_session=True,
        )  # fmt: skip
        _Lines(holder.stdout).until(lambda s: s == "connected", "the client's session")
        for sig in signals:
            os.killpg(sandbox.process.pid, sig)
        sandbox.process.wait(timeout=_GIVE_UP_S)
        assert sandbox.process.stderr is not None
        err = sandbox.process.stderr.read()
        assert sandbox.process.returncode == 0, (how, err)
        assert err == ""
        assert sandbox.out.rest()[-1] == "Cleaned up: nothing left running, no file left behind."
        _reap(holder)  # the other shell's client, whose command line names PGSSLROOTCERT
        sandbox.assert_nothing_left()
    finally:
        _reap(holder, sandbox.process)
