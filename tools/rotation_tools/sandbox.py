"""``rotation sandbox``: a rotating secret to try an application against, until told to stop.

It starts what the demo starts (moto's Secrets Manager and a throwaway PostgreSQL cluster
with TLS and SCRAM), creates a single-user and a multi-user secret with their users and a
table (:mod:`rotation_tools.seed`), prints the ``export`` lines and a client example that
work in another shell, and the ``rotation`` commands to run against them; then it waits.

It stops on Ctrl-C, on ``kill PID`` (SIGTERM) or when its terminal closes (SIGHUP), and
stops everything it started either way, as the demo does: no process left running, no file
left in TMPDIR. From the first such signal on, further ones are ignored, so that a second
Ctrl-C cannot interrupt the clean-up it started.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from rotation_tools.console import Console
from rotation_tools.seed import LOCAL_PARTS, TABLE, Seeded, SeedNames, seed
from testbed.moto_server import (
    FAKE_CREDENTIALS,
    REGION,
    running_moto,
    secrets_manager_at,
)
from testbed.pgcluster import running_cluster

__all__ = ["SANDBOX_NAMES", "client_example", "exports", "run_sandbox"]

SANDBOX_NAMES = SeedNames(
    single_user="app_single",
    master_user="sandbox_master",
    multi_user="app_multi",
    single_name="sandbox/single-user",
    master_name="sandbox/master",
    multi_name="sandbox/multi-user",
)
# The application client's package, as an application imports it.
CLIENT_PACKAGE = "rotation_client"
_QUERY = f"SELECT current_user, count(*) FROM {TABLE}"  # noqa: S608  # a constant name
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exports(endpoint_url: str, ca_cert: Path) -> dict[str, str]:
    """The environment another shell needs to reach the sandbox: the emulator's dummy
    credentials, its region under both names (the AWS CLI v1 reads only
    AWS_DEFAULT_REGION), the endpoint the client and the ``rotation`` command read, and the
    CA that signed the server's certificate (secrets without "ssl" mean verify-full)."""
    return {
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "SECRETS_MANAGER_ENDPOINT": endpoint_url,
        "PGSSLROOTCERT": str(ca_cert),
    }


def client_example(python: str, secret: str) -> list[str]:
    """A shell command running a short client loop: a new connection and a query each
    second through :func:`rotation_client.connect`, as a busy application makes them."""
    return [
        f"{shlex.quote(python)} - {shlex.quote(secret)} <<'EOF'",
        "import sys, time",
        f"from {CLIENT_PACKAGE} import connect",
        "while True:  # Ctrl-C stops it",
        "    with connect(sys.argv[1]) as conn:",
        f'        print(*conn.execute("{_QUERY}").fetchone(), flush=True)',
        "    time.sleep(1)",
        "EOF",
    ]


def _rotation_command() -> str:
    """How another shell runs this ``rotation``: by name when PATH finds this one, else by
    its path, else through this interpreter."""
    script = Path(sys.executable).with_name("rotation")
    if script.is_file():
        found = shutil.which("rotation")
        if found and Path(found).resolve() == script.resolve():
            return "rotation"
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m rotation_tools"


def _commands(seeded: Seeded) -> list[tuple[str, str]]:
    """(what it shows, command) for each thing to try against the secrets."""
    rotation = _rotation_command()
    names = seeded.names
    single, multi = shlex.quote(names.single_name), shlex.quote(names.multi_name)
    return [
        ("a new password for the user", f"{rotation} rotate {single} --strategy single-user"),
        (
            f"from {names.multi_user} to {names.multi_user}_clone and back",
            f"{rotation} rotate {multi} --strategy multi-user",
        ),
        ("versions, labels, diagnosis", f"{rotation} status {single}"),
        (
            "do the stored credentials still log in?",
            f"{rotation} verify {multi} --strategy multi-user",
        ),
    ]


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP each stop the sandbox: the first raises KeyboardInterrupt
    (the clean-up of every ``with`` runs), and the rest are ignored until it is done."""

    def stop(signum: int, frame: FrameType | None) -> None:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    saved: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}
    for sig in _STOP_SIGNALS:
        saved[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _wait_for_stop() -> None:
    while True:
        signal.pause()


def run_sandbox(console: Console, *, wait: Callable[[], None] = _wait_for_stop) -> int:
    """Start the sandbox, print how to use it, ``wait()`` until told to stop, clean up.

    Returns 0 once stopped as told; an interrupt before the sandbox was ready propagates
    (the command then exits 130, having stopped what was started).
    """
    console.line(console.paint(f"PostgreSQL credential rotation: sandbox ({LOCAL_PARTS})", "bold"))
    with _stop_signals():
        with running_moto() as moto, running_cluster(tls=True) as cluster:
            assert cluster.certificates is not None  # noqa: S101  # started with TLS
            console.line(f"  Secrets Manager emulator (moto) at {moto.url}")
            console.line(
                f"  PostgreSQL at 127.0.0.1:{cluster.port} (SCRAM, TLS verify-full with the "
                "sandbox's own CA)"
            )
            seeded = seed(cluster, secrets_manager_at(moto.url), SANDBOX_NAMES)
            # From here on, a stop signal is the way to stop it, not an interruption.
            with contextlib.suppress(KeyboardInterrupt):
                _show(console, seeded, exports(moto.url, cluster.certificates.ca_cert))
                wait()
            console.line()
            console.line(
                "Stopping: the PostgreSQL server and the emulator, and deleting their files"
            )
        console.line("Cleaned up: nothing left running, no file left behind.")
    return 0


def _show(console: Console, seeded: Seeded, environment: dict[str, str]) -> None:
    names = seeded.names
    console.line(f"  PostgreSQL {seeded.postgres_version}")
    console.line(
        f"  {names.single_name}: user {names.single_user}, owns table {TABLE} "
        "(rotate with --strategy single-user)"
    )
    console.line(
        f"  {names.multi_name}: user {names.multi_user}, may read {TABLE}; masterarn "
        f"{names.master_name} (user {names.master_user}, CREATEROLE) (rotate with "
        "--strategy multi-user)"
    )
    console.heading("In another shell, point the client and the rotation command at it:")
    for key, value in environment.items():
        console.line(f"export {key}={shlex.quote(value)}")
    console.heading("Then query through the client (a new connection each second):")
    for line in client_example(sys.executable, names.single_name):
        console.line(line)
    console.line(
        f"(or {names.multi_name}, whose user alternates with each rotation: the client "
        "keeps the user it has while that one logs in, and follows AWSCURRENT once its "
        "cached copy of the secret expires, within 5 minutes)"
    )
    console.heading("and rotate while it runs: it sees no failed query.")
    commands = _commands(seeded)
    for what, command in commands:
        console.line(f"# {what}")
        console.line(command)
    console.line()
    console.line(
        f"Ready. Ctrl-C here, or `kill {os.getpid()}`, stops the sandbox and deletes "
        "everything it made."
    )
    console.result(
        {
            "ok": True,
            "pid": os.getpid(),
            "postgres_version": seeded.postgres_version,
            "environment": environment,
            "secrets": {
                "single-user": seeded.single_arn,
                "multi-user": seeded.multi_arn,
                "master": seeded.master_arn,
            },
            "client_example": client_example(sys.executable, names.single_name),
            "commands": [command for _, command in commands],
        }
    )
