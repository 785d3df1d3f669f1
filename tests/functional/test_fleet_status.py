"""``rotation status --all`` against moto's server: a few hundred secrets in every state,
listed with the real ListSecrets fields and classified at injected clocks."""

from __future__ import annotations

import datetime
import io
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from rotation_tools.cli_fleet import cmd_status_all
from rotation_tools.cli_parser import build_parser
from rotation_tools.console import Console
from rotation_tools.fleet import FleetFilter, collect_fleet, parse_filter
from rotation_tools.progress import Progress
from testbed.fleet import GROUPS, build_fleet, separate_moto
from testbed.moto_server import FAKE_CREDENTIALS, MotoEndpoint
from tests.fix_aws import ApiCalls

pytestmark = pytest.mark.functional

PER_GROUP = 50
PREFIX = "fleet/"


class Fleet:
    def __init__(self, endpoint: MotoEndpoint) -> None:
        self.endpoint = endpoint
        self.built_at = datetime.datetime.now(datetime.UTC)
        self.arns = build_fleet(self.client(), per_group=PER_GROUP, prefix=PREFIX)

    def client(self) -> Any:
        return boto3.client(
            "secretsmanager",
            endpoint_url=self.endpoint.url,
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def soon(self) -> datetime.datetime:
        # moto dates a pending version at the moment it is listed: ten minutes after the
        # real clock is "rotating" however long the tests took to get here.
        return datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)

    def late(self) -> datetime.datetime:
        return self.built_at + datetime.timedelta(days=1, hours=2)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """moto in a process of its own: status --all lists the whole account, and every moto
    server in the test process shares the accounts that hold the other tests' secrets."""
    with separate_moto() as url:
        yield Fleet(MotoEndpoint(url))


def _expected(column: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for states in GROUPS.values():
        state = states[column]
        if state is not None:
            counts[state] += PER_GROUP
    return counts


@pytest.mark.parametrize(("clock", "column"), [("soon", 0), ("late", 1)])
def test_every_state_at_an_injected_clock(fleet: Fleet, clock: str, column: int) -> None:
    rows = collect_fleet(fleet.client(), now=getattr(fleet, clock)())
    assert Counter(row.state.value for row in rows) == _expected(column)
    by_arn = {row.secret: row for row in rows}
    for group, states in GROUPS.items():
        for arn in fleet.arns[group]:
            if states[column] is None:
                assert arn not in by_arn  # no rotation configured: not listed
            else:
                assert by_arn[arn].state.value == states[column], (group, by_arn[arn])


def test_rows_carry_what_the_listing_says(fleet: Fleet) -> None:
    rows = {row.secret: row for row in collect_fleet(fleet.client(), now=fleet.soon())}
    pending = [rows[arn] for arn in fleet.arns["in-progress"]]
    assert all(row.pending_version and row.pending_since for row in pending)
    healthy = [rows[arn] for arn in fleet.arns["healthy"]]
    assert all(row.pending_since is None and row.next_rotation for row in healthy)
    assert Counter(row.strategy for row in healthy) == Counter(
        {"single-user": 17, "multi-user": 17, "unknown": 16}
    )
    owned = [rows[arn] for arn in fleet.arns["owned"]]
    # moto completes a managed rotation itself, so it has a last rotation date.
    assert all(row.owning_service == "rds" and row.last_rotated for row in owned)


def test_calls_per_secret(fleet: Fleet) -> None:
    """One ListSecrets per 100 secrets; one ListSecretVersionIds per rotation in progress,
    and nothing else."""
    client = fleet.client()
    calls = ApiCalls(client)
    rows = collect_fleet(client, now=fleet.soon())
    listed_total = PER_GROUP * len(GROUPS)
    assert Counter(calls.names) == Counter(
        {"ListSecrets": -(-listed_total // 100), "ListSecretVersionIds": PER_GROUP}
    )
    assert len(rows) == PER_GROUP * (len(GROUPS) - 1)


def test_filters_by_name_prefix_and_tag(fleet: Fleet) -> None:
    client = fleet.client()
    rows = collect_fleet(client, now=fleet.soon(), filters=[parse_filter(f"{PREFIX}daily/")])
    assert {row.secret for row in rows} == set(fleet.arns["daily"])
    rows = collect_fleet(
        client, now=fleet.soon(), filters=[FleetFilter(tag=("fleet-group", "owned"))]
    )
    assert {row.secret for row in rows} == set(fleet.arns["owned"])
    rows = collect_fleet(
        client,
        now=fleet.soon(),
        filters=[parse_filter(f"{PREFIX}disabled/000"), parse_filter("fleet-group=disabled")],
    )
    assert len(rows) == 10
    # Two prefixes: both must match (the server is sent the first of each key).
    rows = collect_fleet(
        client,
        now=fleet.soon(),
        filters=[parse_filter(f"{PREFIX}daily/"), parse_filter(f"{PREFIX}daily/004")],
    )
    assert {row.name for row in rows} == {f"{PREFIX}daily/{n:04d}" for n in range(40, 50)}


def _cli(fleet: Fleet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rotation_tools",
            "status",
            *args,
            "--endpoint-url",
            fleet.endpoint.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **FAKE_CREDENTIALS},
        check=False,
    )


def test_cli_json_is_a_list_and_exits_1_on_attention(fleet: Fleet) -> None:
    result = _cli(fleet, "--all", "--json")
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, list)
    assert len(document) == PER_GROUP * (len(GROUPS) - 1)
    for row in document:
        assert {"secret", "name", "state", "last_rotated", "next_rotation", "pending_since"} <= set(
            row
        )
        assert row["secret"].startswith("arn:aws:secretsmanager:")
    # At the real clock: the disabled ones need attention (the rest is minutes old).
    attention = {row["state"] for row in document if row["needs_attention"]}
    assert attention == {"not-rotating"}


def test_cli_exit_0_when_nothing_needs_attention(fleet: Fleet) -> None:
    result = _cli(fleet, "--all", "--filter", f"{PREFIX}healthy/")
    assert result.returncode == 0, result.stderr
    summary = f"{PER_GROUP} secrets with rotation configured or in progress: {PER_GROUP} ok"
    assert summary in result.stdout
    assert f"{PREFIX}healthy/0000" in result.stdout


def test_cli_usage_errors(fleet: Fleet) -> None:
    assert _cli(fleet, "some-secret", "--all").returncode == 2
    result = _cli(fleet)
    assert result.returncode == 2
    assert "--all" in result.stderr
    assert _cli(fleet, "--all", "--filter", "=x").returncode == 2
    result = _cli(fleet, "some-secret", "--filter", "x")
    assert result.returncode == 2
    assert "--filter applies to --all only" in result.stderr


def test_progress_while_paging_and_the_clock_reaches_the_command(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, as on a terminal: the status line shows each page and the age reads as a
    bar; the command classifies at the clock it is given."""
    for key, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    args = build_parser().parse_args(["status", "--all", "--endpoint-url", fleet.endpoint.url])
    out, terminal = io.StringIO(), io.StringIO()
    console = Console(stream=out)
    console.progress = Progress(terminal)
    assert cmd_status_all(args, console, now=fleet.late) == 1
    shown = terminal.getvalue()
    for page in range(1, 4):
        assert f"listing secrets: page {page}, {page * 100} secrets so far" in shown
    assert f"reading the age of rotations in progress [{'#' * 24}] {PER_GROUP}/{PER_GROUP}" in shown
    assert shown.endswith("\r\033[K")  # cleared before the table
    assert f"{PER_GROUP} overdue" in out.getvalue()
    assert f"{PER_GROUP} stuck" in out.getvalue()
