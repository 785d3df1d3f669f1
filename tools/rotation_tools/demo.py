"""``rotation demo``: a rotation end to end, on this machine alone.

Starts moto's Secrets Manager and a throwaway PostgreSQL cluster (TLS, SCRAM), creates an
application user with a table and its secret, and rotates it through the real handlers,
step by step as Secrets Manager would: single-user, then multi-user with a master secret
while a client keeps querying. It proves each claim it prints and cleans up everything it
started, also on Ctrl-C and on error.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from rotation import AWSCURRENT, AWSPREVIOUS, LocalRotation, StepRecord
from rotation_contract.pg.settings import PostgresSettings
from rotation_tools.console import Console
from rotation_tools.seed import LOCAL_PARTS, TABLE, SeedNames, seed
from rotation_tools.strategies import build_rotator
from testbed.moto_server import running_moto, secrets_manager_at
from testbed.pgcluster import PostgresCluster, running_cluster

__all__ = ["run_demo"]

DEMO_NAMES = SeedNames(
    single_user="app_demo",
    master_user="demo_master",
    multi_user="app_multi",
    single_name="demo/app",
    master_name="demo/master",
    multi_name="demo/app-multi",
)


@dataclass
class DemoReport:
    """What the demo proved; printed as JSON with ``--json``."""

    postgres_version: int = 0
    rotations: list[dict[str, Any]] = field(default_factory=list)
    proofs: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.proofs) and all(self.proofs.values())


class _Demo:
    def __init__(self, console: Console, cluster: PostgresCluster, endpoint_url: str) -> None:
        self.console = console
        self.cluster = cluster
        self.client = secrets_manager_at(endpoint_url)
        assert cluster.certificates is not None  # noqa: S101  # started with TLS
        self.settings = PostgresSettings(extra_root_cert=cluster.certificates.ca_cert)
        self.report = DemoReport()

    # -- set-up -----------------------------------------------------------------------

    def setup(self) -> tuple[str, str]:
        seeded = seed(self.cluster, self.client, DEMO_NAMES, single_extra={"team": "payments"})
        self.report.postgres_version = seeded.postgres_version
        names = seeded.names
        self.console.line(
            f"  created user {names.single_user} (table {TABLE}) and secret {names.single_name}"
        )
        self.console.line(
            f"  created master {names.master_user} (CREATEROLE) and secret {names.master_name}"
        )
        self.console.line(
            f"  created user {names.multi_user} and secret {names.multi_name} (with masterarn)"
        )
        return seeded.single_arn, seeded.multi_arn

    # -- what the demo shows ----------------------------------------------------------

    def current(self, arn: str, stage: str = AWSCURRENT) -> dict[str, Any]:
        response = self.client.get_secret_value(SecretId=arn, VersionStage=stage)
        return dict(json.loads(response["SecretString"]))

    def logs_in(self, value: dict[str, Any]) -> bool:
        try:
            psycopg.connect(**self.cluster.conninfo(value["username"], value["password"])).close()
        except psycopg.OperationalError:
            return False
        return True

    def show_labels(self, arn: str, title: str) -> None:
        versions = self.client.describe_secret(SecretId=arn)["VersionIdsToStages"]
        self.console.line(f"  {title}:")
        for version_id, stages in versions.items():
            if not stages:  # a version no label points at any more
                continue
            self.console.line(f"    {version_id}  {', '.join(stages)}")

    def show_step(self, record: StepRecord) -> None:
        self.console.step(record, indent="    ")

    def prove(self, claim: str, holds: bool) -> None:
        self.report.proofs[claim] = holds
        mark = self.console.paint("yes", "ok") if holds else self.console.paint("NO", "fail")
        self.console.line(f"  {claim}: {mark}")

    def rotate(self, arn: str, strategy: str) -> None:
        rotator = build_rotator(strategy, self.client, settings=self.settings)
        driver = LocalRotation(self.client, rotator.handle, on_step=self.show_step)
        started = time.perf_counter()
        run = driver.rotate(arn)
        self.report.rotations.append(
            {
                "secret": arn,
                "strategy": strategy,
                "token": run.token,
                "steps": {s.step.value: round(s.duration_s * 1000, 1) for s in run.steps},
                "total_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        )

    # -- the two acts -----------------------------------------------------------------

    def single_user(self, arn: str) -> None:
        self.console.heading("Single-user rotation of demo/app")
        before = self.current(arn)
        self.show_labels(arn, "labels before")
        self.rotate(arn, "single-user")
        self.show_labels(arn, "labels after")
        after = self.current(arn)
        self.prove("the new AWSCURRENT password logs in", self.logs_in(after))
        self.prove("the replaced password is refused", not self.logs_in(before))
        self.prove(
            "AWSPREVIOUS holds the replaced password",
            self.current(arn, AWSPREVIOUS)["password"] == before["password"],
        )
        self.prove('unknown keys survive ("team")', after.get("team") == "payments")

    def multi_user(self, arn: str) -> None:
        self.console.heading("Multi-user rotation of demo/app-multi, with a client querying")
        with _querying_client(self, arn) as counts:
            for number in (1, 2):
                user = self.current(arn)["username"]
                self.console.line(f"  rotation {number} (AWSCURRENT user: {user})")
                self.rotate(arn, "multi-user")
            time.sleep(0.2)
        current = self.current(arn)
        self.show_labels(arn, "labels after")
        self.console.line(
            f"  users: AWSCURRENT {current['username']}, "
            f"AWSPREVIOUS {self.current(arn, AWSPREVIOUS)['username']}"
        )
        self.prove(
            "AWSCURRENT and AWSPREVIOUS both log in",
            self.logs_in(current) and self.logs_in(self.current(arn, AWSPREVIOUS)),
        )
        self.console.line(
            f"  the client ran {counts['ok'] + counts['failed']} connect-and-query loops"
        )
        self.prove("the client saw zero failures", counts["failed"] == 0 and counts["ok"] > 0)


@contextlib.contextmanager
def _querying_client(demo: _Demo, arn: str) -> Iterator[dict[str, int]]:
    """A client that reads AWSCURRENT and runs a query in a loop, counting failures."""
    counts = {"ok": 0, "failed": 0}
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            value = demo.current(arn)
            try:
                with psycopg.connect(
                    **demo.cluster.conninfo(value["username"], value["password"])
                ) as c:
                    c.execute("SELECT count(*) FROM orders").fetchone()
                counts["ok"] += 1
            except psycopg.Error:
                counts["failed"] += 1

    thread = threading.Thread(target=loop, name="demo-client", daemon=True)
    thread.start()
    try:
        yield counts
    finally:
        stop.set()
        thread.join(timeout=10)


def run_demo(console: Console) -> int:
    """Run the demo; 0 when every claim held, 1 otherwise."""
    console.line(console.paint(f"PostgreSQL credential rotation: demo ({LOCAL_PARTS})", "bold"))
    started = time.perf_counter()
    with running_moto() as moto, running_cluster(tls=True) as cluster:
        console.line(f"  Secrets Manager (moto) at {moto.url}")
        console.line(f"  PostgreSQL cluster at 127.0.0.1:{cluster.port} (SCRAM, TLS verify-full)")
        demo = _Demo(console, cluster, moto.url)
        single_arn, multi_arn = demo.setup()
        console.line(f"  PostgreSQL {demo.report.postgres_version}")
        demo.single_user(single_arn)
        demo.multi_user(multi_arn)
        log = cluster.server_log()
        demo.console.heading("Secrets")
        passwords = [
            demo.current(a, s)["password"]
            for a in (single_arn, multi_arn)
            for s in (AWSCURRENT, AWSPREVIOUS)
        ]
        demo.prove(
            "no password in the server's statement log",
            not any(p in log for p in passwords) and "SCRAM-SHA-256$" in log,
        )
        report = demo.report
    console.heading("Cleaned up")
    console.line("  stopped the cluster and deleted its files; stopped Secrets Manager")
    elapsed = time.perf_counter() - started
    verdict = "every claim held" if report.ok else "SOME CLAIMS FAILED"
    console.line(f"\n{console.paint(verdict, 'ok' if report.ok else 'fail')} in {elapsed:.1f} s")
    console.result({"ok": report.ok, "seconds": round(elapsed, 2), **report.__dict__})
    return 0 if report.ok else 1
