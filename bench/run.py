"""Benchmarks: cold start, rotation latency, cost counters, fleet throughput, package size.

Run with ``make bench``. Starts its own moto server and throwaway PostgreSQL cluster (TLS,
SCRAM), as the tests do, and writes ``bench/RESULTS.md`` and ``bench/results.json``.
Counts (API calls, connections) are exact and stable; times are noisy and reported as
median with min/max (and p95/p99 where there are enough samples).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

import boto3  # noqa: E402
import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from handlers.pg_connect import ConnectFn, PostgresConnector  # noqa: E402
from rotation import LocalRotation, Rotator, SecretStore, Step  # noqa: E402
from rotation.observability import logger  # noqa: E402
from rotation_contract.pg.settings import PostgresSettings  # noqa: E402
from rotation_tools.strategies import build_strategy  # noqa: E402
from testbed.moto_server import FAKE_CREDENTIALS  # noqa: E402
from testbed.pgcluster import PostgresCluster, running_cluster  # noqa: E402

logger.setLevel("WARNING")
MASTER = "bench_master"


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p95": pct(95),
        "p99": pct(99),
    }


def ms(stats: dict[str, float], key: str = "median") -> str:
    return f"{stats[key] * 1000:.1f}"


class Bed:
    """Users, secrets and clients on the benchmark's own cluster and moto server."""

    def __init__(self, cluster: PostgresCluster, endpoint: str) -> None:
        self.cluster = cluster
        self.endpoint = endpoint
        assert cluster.certificates is not None
        self.settings = PostgresSettings(extra_root_cert=cluster.certificates.ca_cert)
        self.sm = self.client()
        self.admin = psycopg.connect(**cluster.conninfo(), autocommit=True)
        self.master_password = secrets.token_urlsafe(18)
        self._role(MASTER, self.master_password, createrole=True)
        self.master_arn = self.secret(MASTER, self.master_password)

    def client(self) -> Any:
        return boto3.client("secretsmanager", endpoint_url=self.endpoint, region_name="us-east-1")

    def _role(self, name: str, password: str, *, createrole: bool = False) -> None:
        verifier = self.admin.pgconn.encrypt_password(
            password.encode(), name.encode(), b"scram-sha-256"
        )
        self.admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                sql.Identifier(name),
                sql.SQL("CREATEROLE" if createrole else ""),
                sql.Literal(verifier.decode()),
            )
        )

    def secret(self, user: str, password: str, **extra: Any) -> str:
        value = {**self.cluster.secret_value(user, password), **extra}
        value.pop("ssl", None)
        name = f"bench/{user}"
        return str(self.sm.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])

    def app(self, multi: bool = False) -> str:
        user = f"u_{secrets.token_hex(5)}"
        password = secrets.token_urlsafe(18)
        if multi:  # as on RDS: the master creates the application users
            with psycopg.connect(**self.cluster.conninfo(MASTER, self.master_password)) as conn:
                verifier = conn.pgconn.encrypt_password(
                    password.encode(), user.encode(), b"scram-sha-256"
                )
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(user), sql.Literal(verifier.decode())
                    )
                )
            return self.secret(user, password, masterarn=self.master_arn)
        self._role(user, password)
        return self.secret(user, password)


class Meter:
    """Times and counts what one rotator does: API calls and connections."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.calls_by_step: dict[str, Counter[str]] = defaultdict(Counter)
        self.api_s = 0.0
        self.connect_s = 0.0
        self.connections = 0
        self.step = "?"
        self._started: dict[int, float] = {}

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.secrets-manager.*", self._before)
        client.meta.events.register("after-call.secrets-manager.*", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        self.calls_by_step[self.step][model.name] += 1
        self._started[threading.get_ident()] = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.api_s += time.perf_counter() - self._started.pop(threading.get_ident())

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        started = time.perf_counter()
        try:
            return psycopg.connect(**kwargs)
        finally:
            self.connect_s += time.perf_counter() - started
            self.connections += 1


def rotator_for(bed: Bed, strategy: str, meter: Meter | None = None) -> tuple[Rotator, Any]:
    client = bed.client()
    connect: ConnectFn = psycopg.connect
    if meter is not None:
        meter.attach(client)
        connect = meter.connect
    connector = PostgresConnector(bed.settings, connect=connect)
    return Rotator(build_strategy(strategy, connector), SecretStore(client)), client


def quiet(bed: Bed) -> dict[str, Any]:
    """Logins per step, from the server's own log (``log_connections``): a clean rotation,
    and a re-attempt (Secrets Manager's: every step again, same token, a new container)
    after each step, for single-user, multi-user, and multi-user with
    ``PREVIOUS_PASSWORD_TTL=0``. Counts, not times: stable across runs."""
    from handlers.multi_user import PostgresMultiUser

    def rotator(kind: str) -> Rotator:
        connector = PostgresConnector(bed.settings)
        if kind == "multi-user-ttl":
            return Rotator(PostgresMultiUser(connector, previous_ttl=0), SecretStore(bed.client()))
        return Rotator(build_strategy(kind, connector), SecretStore(bed.client()))

    def counted(run: Any) -> dict[str, int]:
        mark = len(bed.cluster.server_log())
        run()
        text = bed.cluster.server_log()[mark:]
        return {
            "connections": text.count("connection authorized:"),
            "refused": text.count("password authentication failed"),
        }

    def per_step(driver: LocalRotation, arn: str, token: str) -> dict[str, dict[str, int]]:
        counts = {
            step.value: counted(lambda step=step: driver.run(arn, token, [step])) for step in Step
        }
        driver.complete(arn, token)
        return counts

    results: dict[str, Any] = {}
    for kind in ("single-user", "multi-user", "multi-user-ttl"):
        arn = bed.app(multi=kind != "single-user")
        driver = LocalRotation(bed.sm, rotator(kind).handle)
        entry: dict[str, Any] = {"clean": per_step(driver, arn, driver.begin(arn))}
        for after in Step:
            arn = bed.app(multi=kind != "single-user")
            first = LocalRotation(bed.sm, rotator(kind).handle)
            token = first.begin(arn)
            steps = list(Step)
            for step in steps[: steps.index(after) + 1]:
                first.handler(
                    {"Step": step.value, "SecretId": arn, "ClientRequestToken": token}, None
                )
            again = LocalRotation(bed.sm, rotator(kind).handle)
            entry[f"re-attempt after {after.value}"] = per_step(again, arn, token)
        results[kind] = entry
    return results


@contextmanager
def moto_process() -> Iterator[str]:
    """moto's server in its own process, so it does not share our GIL."""
    from testbed.pgcluster import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()  # noqa: S310
                break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- cold start ----------------------------------------------------------------------------

COLD_CHILD = """
import json, sys, time
started = time.perf_counter()
import handlers.postgres_{strategy} as module
imported = time.perf_counter()
module.lambda_handler(json.loads(sys.argv[1]), None)
done = time.perf_counter()
print(json.dumps({{"import": imported - started, "first": done - imported}}))
"""


def cold_start(bed: Bed, strategy: str, runs: int) -> dict[str, Any]:
    """A fresh interpreter: import the handler module and serve a first createSecret."""
    env = {
        **os.environ,
        "SECRETS_MANAGER_ENDPOINT": bed.endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PGSSLROOTCERT": str(bed.settings.extra_root_cert),
    }
    imports, firsts, totals = [], [], []
    for _ in range(runs):
        arn = bed.app(multi=strategy == "multi_user")
        driver = LocalRotation(bed.sm, lambda e, c: None)
        token = driver.begin(arn)
        event = {"Step": "createSecret", "SecretId": arn, "ClientRequestToken": token}
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COLD_CHILD.format(strategy=strategy), json.dumps(event)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            check=True,
        )
        totals.append(time.perf_counter() - started)
        report = json.loads(out.stdout.strip().splitlines()[-1])
        imports.append(report["import"])
        firsts.append(report["first"])
    return {
        "process": summary(totals),
        "import": summary(imports),
        "first_invocation": summary(firsts),
    }


def import_contributors(strategy: str, top: int = 8) -> list[tuple[str, float]]:
    """Cumulative import time by top-level package, importing the handler and making the
    client (what the first invocation does), from ``python -X importtime``."""
    code = (
        f"import handlers.postgres_{strategy}; from rotation.clients import secrets_manager_client; "
        "secrets_manager_client()"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    ).stderr
    # Top-level packages only (names without a dot): their cumulative time includes what
    # they import, so nested packages are counted under whoever imported them first.
    per_package: Counter[str] = Counter()
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if "." not in name and not name.startswith("_"):
            per_package[name] = max(per_package[name], int(cumulative))
    return [(name, us / 1e6) for name, us in per_package.most_common(top)]


# -- the application client's import ------------------------------------------------------

# What `import rotation_client` loaded before issue 12 (rotation/client.py pulled in the
# dispatcher, Powertools and tenacity), and on main when the work on it started (the lazy
# `rotation` package); measured beside the working tree's.
CLIENT_IMPORT_BASELINES = {
    "before (889852a: rotation/client.py)": "889852a",
    "lazy rotation package (30642b1)": "30642b1",
}
# The Lambda side, and what an application should not pay for.
CLIENT_FORBIDDEN = (
    "rotation.dispatcher",
    "rotation.store",
    "rotation.strategy",
    "rotation.driver",
    "rotation.observability",
    "rotation.retry",
    "rotation.clients",
    "rotation.config",
    "aws_lambda_powertools",
    "tenacity",
    "boto3",
)
CLIENT_IMPORT_CHILD = """
import json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
import rotation_client
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
forbidden = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps({"wall": wall, "cpu": cpu, "modules": len(sys.modules), "forbidden": forbidden}))
"""


def client_import(root: Path, runs: int) -> dict[str, Any]:
    """``import rotation_client`` in fresh interpreters that see ``root`` and the
    environment's site-packages only (``-S``: no editable install's path hook)."""
    import sysconfig

    path = [str(root), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    walls, cpus, report = [], [], {}
    for _ in range(runs):
        out = subprocess.run(
            [
                sys.executable,
                "-S",
                "-c",
                CLIENT_IMPORT_CHILD,
                json.dumps(path),
                json.dumps(CLIENT_FORBIDDEN),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=tempfile.gettempdir(),
        )
        report = json.loads(out.stdout)
        walls.append(report["wall"])
        cpus.append(report["cpu"])
    return {
        "wall": summary(walls),
        "cpu": summary(cpus),
        "modules": report["modules"],
        "forbidden": report["forbidden"],
    }


def client_imports(runs: int) -> dict[str, dict[str, Any]]:
    """The working tree's client import beside each baseline's (from ``git archive``)."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, commit in CLIENT_IMPORT_BASELINES.items():
            tree = Path(tmp) / commit
            tree.mkdir()
            archive = subprocess.run(
                ["git", "archive", commit, "rotation"], cwd=ROOT, capture_output=True, check=False
            )
            if archive.returncode != 0:  # not a git checkout, or history cut: skip it
                continue
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            results[label] = client_import(tree, runs)
        results["now"] = client_import(ROOT, runs)
    return results


# -- rotation latency ----------------------------------------------------------------------


def latency(bed: Bed, strategy: str, rotations: int) -> dict[str, Any]:
    meter = Meter()
    rotator, _ = rotator_for(bed, strategy, meter)
    per_step: dict[str, list[float]] = defaultdict(list)
    totals, api, connect = [], [], []
    multi = strategy == "multi-user"
    arns = [bed.app(multi=multi) for _ in range(rotations)]
    calls_first: Counter[str] | None = None
    by_step_first: dict[str, dict[str, int]] = {}
    connections_first = 0
    for index, arn in enumerate(arns):
        before_api, before_connect, before_conns = meter.api_s, meter.connect_s, meter.connections
        before_calls = meter.calls.copy()
        driver = LocalRotation(bed.sm, rotator.handle)
        token = driver.begin(arn)
        started = time.perf_counter()
        for step in Step:
            meter.step = step.value
            t0 = time.perf_counter()
            driver.run(arn, token, [step])
            per_step[step.value].append(time.perf_counter() - t0)
        totals.append(time.perf_counter() - started)
        driver.complete(arn, token)
        api.append(meter.api_s - before_api)
        connect.append(meter.connect_s - before_connect)
        if index == 0:
            calls_first = meter.calls - before_calls
            by_step_first = {s: dict(c) for s, c in meter.calls_by_step.items()}
            connections_first = meter.connections - before_conns
    assert calls_first is not None
    other = [t - a - c for t, a, c in zip(totals, api, connect, strict=True)]
    return {
        "total": summary(totals),
        "steps": {step: summary(samples) for step, samples in per_step.items()},
        "breakdown": {
            "secrets_manager": summary(api),
            "connect_scram_tls": summary(connect),
            "sql_and_other": summary(other),
        },
        "calls_per_rotation": sum(calls_first.values()),
        "calls_by_step": {s: sum(c.values()) for s, c in by_step_first.items()},
        "calls_by_operation": dict(calls_first),
        "connections_per_rotation": connections_first,
    }


# -- fleet ---------------------------------------------------------------------------------


@contextmanager
def peak_connections(cluster: PostgresCluster) -> Iterator[dict[str, int]]:
    peak = {"value": 0}
    stop = threading.Event()

    def watch() -> None:
        with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
            while not stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                ).fetchone()
                peak["value"] = max(peak["value"], int(row[0]) - 1 if row else 0)
                time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def fleet(bed: Bed, arns: list[str], concurrency: int) -> dict[str, Any]:
    """Rotate every secret once, ``concurrency`` at a time; one rotator per worker, as one
    container per concurrent Lambda invocation."""
    local = threading.local()

    def rotate(arn: str) -> tuple[float, str | None]:
        if not hasattr(local, "rotator"):
            local.rotator, local.client = rotator_for(bed, "single-user")
        driver = LocalRotation(local.client, local.rotator.handle)
        started = time.perf_counter()
        try:
            driver.rotate(arn)
        except Exception as exc:  # counted, reported
            return time.perf_counter() - started, type(exc).__name__
        return time.perf_counter() - started, None

    with peak_connections(bed.cluster) as peak:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            results = list(pool.map(rotate, arns))
        elapsed = time.perf_counter() - started
    durations = [d for d, _ in results]
    errors = [e for _, e in results if e]
    return {
        "concurrency": concurrency,
        "rotations": len(arns),
        "seconds": elapsed,
        "per_second": len(arns) / elapsed,
        "latency": summary(durations),
        "errors": len(errors),
        "error_types": dict(Counter(errors)),
        "peak_db_connections": peak["value"],
    }


# -- package -------------------------------------------------------------------------------


def package_size() -> dict[str, Any]:
    from rotation_tools.deploy import build_artifact

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "lambda"
        build_artifact.build(
            out,
            platforms=[f"{t}_aarch64" for t in build_artifact.GLIBC_TAGS],
            python_version="3.12",
        )
        unzipped, zipped = build_artifact.sizes(out)
    return {
        "arch": "arm64",
        "python": "3.12",
        "unzipped_mb": unzipped / 1e6,
        "zipped_mb": zipped / 1e6,
    }


# -- report --------------------------------------------------------------------------------


# -- status --all ---------------------------------------------------------------------------


def status_all(endpoint: str, per_group: int, runs: int) -> dict[str, Any]:
    """``rotation status --all`` over a fleet in every state (testbed.fleet):
    wall time of collect_fleet, and its calls per listed secret."""
    from rotation_tools.fleet import collect_fleet
    from testbed.fleet import GROUPS, build_fleet

    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
    build_fleet(client, per_group=per_group, prefix=f"status-{secrets.token_hex(3)}/")
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.secrets-manager.*", lambda model, **_: calls.update([model.name])
    )
    now = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=10)
    samples, rows = [], []
    for _ in range(runs):
        calls.clear()
        started = time.perf_counter()
        rows = collect_fleet(client, now=now)
        samples.append(time.perf_counter() - started)
    listed = per_group * len(GROUPS)
    return {
        "secrets_in_account": listed,
        "rows": len(rows),
        "states": dict(Counter(row.state.value for row in rows)),
        "calls": dict(calls),
        "calls_per_row": sum(calls.values()) / max(len(rows), 1),
        "time": summary(samples),
    }


@contextmanager
def hung_endpoint() -> Iterator[tuple[str, list[Any]]]:
    """A socket that accepts connections and never answers; the accepted ones listed."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    accepted: list[Any] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    finally:
        sock.close()
        thread.join(5)
        for conn in accepted:
            conn.close()


def client_hung_endpoint(runs: int) -> list[dict[str, Any]]:
    """The application client's worst case: ``connect()`` against a Secrets Manager
    endpoint that accepts connections and never answers, with the client it builds itself
    (SECRETS_MANAGER_ENDPOINT), next to its budget (the default, and 2 s)."""
    import asyncio

    from rotation_client import ConnectRetry, connect, connect_async

    rows = []
    for budget in (2.0, ConnectRetry().timeout_s):
        for mode in ("sync", "async"):
            times: list[float] = []
            connections: list[int] = []
            errors: Counter[str] = Counter()
            for _ in range(runs):
                with hung_endpoint() as (url, accepted):
                    os.environ["SECRETS_MANAGER_ENDPOINT"] = url
                    name = f"bench/hung-{secrets.token_hex(4)}"
                    start = time.monotonic()
                    try:
                        if mode == "async":
                            asyncio.run(connect_async(name, timeout_s=budget))
                        else:
                            connect(name, timeout_s=budget)
                    except Exception as exc:  # the expected outcome, by type
                        errors[type(exc).__name__] += 1
                    times.append(time.monotonic() - start)
                    connections.append(len(accepted))
            os.environ.pop("SECRETS_MANAGER_ENDPOINT", None)
            rows.append(
                {
                    "budget_s": budget,
                    "mode": mode,
                    "time": summary(times),
                    "http_connections": max(connections),
                    "errors": dict(errors),
                }
            )
    return rows


def machine(postgres: int) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "psycopg": psycopg.__version__,
        "libpq": psycopg.pq.version(),
        "postgres": postgres,
    }


def write_report(results: dict[str, Any], path: Path) -> None:
    m = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {m['date']} on {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, "
        f"PostgreSQL {m['postgres']} (throwaway cluster, TLS + SCRAM on 127.0.0.1), "
        f"psycopg {m['psycopg']} (libpq {m['libpq']}), moto's Secrets Manager server on "
        "127.0.0.1. `make bench` reproduces it; `bench/results.json` has every number.",
        "",
        "**Stable**: API calls, connections, package size (exact; the tests assert the "
        "counts). **Noisy**: every time below (medians with min/max; a loopback moto server "
        "is faster than the real API, whose calls take 10-40 ms each from Lambda).",
        "",
        "## Cost per rotation (stable)",
        "",
        "| strategy | Secrets Manager calls | by step (create/set/test/finish) | DB connections | AWS reference |",
        "|---|---|---|---|---|",
    ]
    refs = {"single-user": "14 calls, 3 connections", "multi-user": "14 calls, 4 connections"}
    for strategy, data in results["latency"].items():
        by_step = "/".join(str(data["calls_by_step"].get(s.value, 0)) for s in Step)
        lines.append(
            f"| {strategy} | {data['calls_per_rotation']} | {by_step} | "
            f"{data['connections_per_rotation']} | {refs[strategy]} |"
        )
    lines += [
        "",
        "## Rotation latency (noisy)",
        "",
        "A full four-step rotation in one warm container, driven as Secrets Manager does.",
        "",
        "| strategy | total median (min-max) | p95 | createSecret | setSecret | testSecret | finishSecret | in Secrets Manager calls | in connecting (TCP+TLS+SCRAM) | SQL and our code |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for strategy, data in results["latency"].items():
        steps = " | ".join(f"{ms(data['steps'][s.value])} ms" for s in Step)
        b = data["breakdown"]
        lines.append(
            f"| {strategy} | {ms(data['total'])} ms ({ms(data['total'], 'min')}-{ms(data['total'], 'max')}) "
            f"| {ms(data['total'], 'p95')} ms | {steps} | {ms(b['secrets_manager'])} ms | "
            f"{ms(b['connect_scram_tls'])} ms | {ms(b['sql_and_other'])} ms |"
        )
    lines += [
        "",
        "## Cold start (noisy)",
        "",
        "A fresh interpreter imports the handler module and serves a first createSecret "
        f"({results['cold_start_runs']} runs each).",
        "",
        "| strategy | import median (min-max) | first invocation | whole process |",
        "|---|---|---|---|",
    ]
    for strategy, data in results["cold_start"].items():
        lines.append(
            f"| {strategy} | {ms(data['import'])} ms ({ms(data['import'], 'min')}-{ms(data['import'], 'max')}) "
            f"| {ms(data['first_invocation'])} ms | {ms(data['process'])} ms |"
        )
    lines += ["", "Top import-time contributors (cumulative, handler + client creation):", ""]
    lines += [f"- `{name}`: {seconds * 1000:.0f} ms" for name, seconds in results["imports"]]
    if results.get("client_import"):
        lines += [
            "",
            "## The application client's import (noisy)",
            "",
            "`import rotation_client` in a fresh interpreter that sees only the package and "
            f"its dependencies ({results['client_import_runs']} runs each; wall time and the "
            "process's CPU time, which other load on the machine disturbs less).",
            "",
            "| tree | wall median (min-max) | CPU median | modules loaded | Lambda side and Powertools loaded |",
            "|---|---|---|---|---|",
        ]
        for label, data in results["client_import"].items():
            loaded = ", ".join(f"`{m}`" for m in data["forbidden"]) or "none"
            lines.append(
                f"| {label} | {ms(data['wall'])} ms ({ms(data['wall'], 'min')}-{ms(data['wall'], 'max')}) "
                f"| {ms(data['cpu'])} ms | {data['modules']} | {loaded} |"
            )
    size = results["fleet"][0]["rotations"]
    lines += [
        "",
        f"## Fleet (noisy): {size} secrets, {size} users on one server",
        "",
        "Each secret rotated once per row; one rotator per worker thread (one container "
        "per concurrent invocation), single-user. moto's server runs in its own process. "
        "With 2 cores, one Python process and a local moto and PostgreSQL, this measures "
        "the CPU cost per rotation, not what Lambda's parallelism would give.",
        "",
        "| concurrency | rotations/s | p50 | p99 | errors | peak DB connections |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["fleet"]:
        lines.append(
            f"| {row['concurrency']} | {row['per_second']:.1f} | {ms(row['latency'])} ms | "
            f"{ms(row['latency'], 'p99')} ms | {row['errors']} | {row['peak_db_connections']} |"
        )
    if results.get("status_all"):
        st = results["status_all"]
        calls = ", ".join(f"{n} {name}" for name, n in sorted(st["calls"].items()))
        states = ", ".join(f"{n} {state}" for state, n in sorted(st["states"].items()))
        lines += [
            "",
            f"## `rotation status --all` (noisy): {st['secrets_in_account']} secrets",
            "",
            f"{st['rows']} with rotation configured ({states}) of {st['secrets_in_account']} "
            f"in the account. Calls per listing (stable): {calls}, "
            f"{st['calls_per_row']:.2f} per row: one ListSecrets per 100 secrets, one "
            "ListSecretVersionIds per rotation in progress (its age), nothing else. "
            f"Time per listing: {ms(st['time'])} ms median "
            f"({ms(st['time'], 'min')}-{ms(st['time'], 'max')}, {st['time']['n']} runs; "
            "loopback moto).",
        ]
    p = results["package"]
    lines += [
        "",
        "## Package (stable)",
        "",
        f"Lambda artifact ({p['arch']}, Python {p['python']}): {p['unzipped_mb']:.1f} MB "
        f"unzipped, {p['zipped_mb']:.1f} MB zipped.",
        "",
    ]
    if results.get("client_hung_endpoint"):
        lines += [
            "",
            "## The application client against a hung Secrets Manager (noisy)",
            "",
            "`connect()` with the boto3 client it builds itself, pointed "
            "(`SECRETS_MANAGER_ENDPOINT`) at a socket that accepts connections and never "
            "answers, nothing cached: the worst case, next to the budget it must keep "
            "(`ConnectRetry().timeout_s`, or the caller's `timeout_s`). Before #21 a 2 s "
            "budget took 45.6 s and 3 HTTP connections (3 attempts of 15 s).",
            "",
            "| budget | mode | worst | median | HTTP connections per connect() | raised |",
            "|---|---|---|---|---|---|",
        ]
        for row in results["client_hung_endpoint"]:
            raised = ", ".join(f"{n} {name}" for name, n in sorted(row["errors"].items()))
            lines.append(
                f"| {row['budget_s']:.1f} s | {row['mode']} | {row['time']['max']:.2f} s | "
                f"{row['time']['median']:.2f} s | {row['http_connections']} | {raised} |"
            )
        lines.append("")
    if results.get("notes"):
        lines += ["## Before and after", "", *results["notes"], ""]
    path.write_text("\n".join(lines))


_QUIET_HEADING = "## Quiet rotation: logins per step (server log)"


def write_quiet(measured: dict[str, Any], path: Path) -> None:
    """Append (or replace) the quiet-rotation table in RESULTS.md."""
    lines = [
        _QUIET_HEADING,
        "",
        "connections/refused logins per step, as the server's log counts them "
        "(`log_connections`). A re-attempt runs every step again with the same token in a "
        "new container, after the first attempt stopped after the step named.",
        "",
        "| strategy | run | createSecret | setSecret | testSecret | finishSecret | total |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, runs in measured.items():
        for run, steps in runs.items():
            cells = [f"{c['connections']}/{c['refused']}" for c in steps.values()]
            total = (
                f"{sum(c['connections'] for c in steps.values())}/"
                f"{sum(c['refused'] for c in steps.values())}"
            )
            lines.append(f"| {kind} | {run} | {' | '.join(cells)} | {total} |")
    text = path.read_text() if path.exists() else ""
    if _QUIET_HEADING in text:
        text = text[: text.index(_QUIET_HEADING)].rstrip() + "\n"
    path.write_text(text + "\n" + "\n".join(lines) + "\n")


def _merge_committed(out: Path, key: str, measured: Any) -> dict[str, Any]:
    """One measurement put into the committed results.json (the others kept), and
    RESULTS.md written again from all of them (its quiet-rotation table included)."""
    results_file = out / "results.json"
    committed: dict[str, Any] = json.loads(results_file.read_text())
    committed[key] = measured
    results_file.write_text(json.dumps(committed, indent=2, default=str) + "\n")
    write_report(committed, out / "RESULTS.md")
    if committed.get("quiet"):
        write_quiet(committed["quiet"], out / "RESULTS.md")
    return committed


_COST_KEYS = (
    "calls_per_rotation",
    "calls_by_step",
    "calls_by_operation",
    "connections_per_rotation",
)


def _costs(bed: Bed) -> dict[str, dict[str, Any]]:
    """The counters of one rotation per strategy (exact, whatever the machine's load), put
    into the committed latency entries; their times stay as measured."""
    out = ROOT / "bench"
    committed: dict[str, Any] = json.loads((out / "results.json").read_text())
    latencies = committed.setdefault("latency", {})
    counted = {}
    for strategy in ("single-user", "multi-user"):
        measured = latency(bed, strategy, 1)
        counted[strategy] = {key: measured[key] for key in _COST_KEYS}
        latencies.setdefault(strategy, {}).update(counted[strategy])
    _merge_committed(out, "latency", latencies)
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument("--cold-only", action="store_true", help="only the cold start figures")
    parser.add_argument(
        "--status-only",
        action="store_true",
        help="only `status --all`, merged into the committed results.json and RESULTS.md",
    )
    parser.add_argument(
        "--client-import-only", action="store_true", help="only the client's import time"
    )
    parser.add_argument(
        "--client-hung-only",
        action="store_true",
        help="only the client against a hung endpoint, merged into the committed results",
    )
    parser.add_argument(
        "--quiet-only",
        action="store_true",
        help="only logins per step (quiet rotation), merged into the committed results.json",
    )
    parser.add_argument(
        "--cost-only",
        action="store_true",
        help="only the API calls and connections per rotation (stable), merged into the "
        "committed results.json; the committed latencies are kept",
    )
    parser.add_argument(
        "--package-only",
        action="store_true",
        help="only the Lambda artifact's size, merged into the committed results.json",
    )
    args = parser.parse_args()
    if args.package_only:
        print("package ...", flush=True)
        measured = package_size()
        _merge_committed(args.out, "package", measured)
        print(json.dumps(measured, indent=1))
        return 0
    status_groups, status_runs = (10, 3) if args.quick else (100, 10)
    if args.status_only:
        os.environ.update(FAKE_CREDENTIALS)
        with moto_process() as moto_url:
            print("status --all ...", flush=True)
            measured = status_all(moto_url, status_groups, status_runs)
        _merge_committed(args.out, "status_all", measured)
        print(json.dumps(measured, indent=1))
        return 0
    hung_runs = 1 if args.quick else 3
    if args.client_hung_only:
        os.environ.update(FAKE_CREDENTIALS)
        print("client against a hung endpoint ...", flush=True)
        hung = client_hung_endpoint(hung_runs)
        _merge_committed(args.out, "client_hung_endpoint", hung)
        print(json.dumps(hung, indent=1))
        return 0
    rotations, cold_runs, fleet_size = (5, 3, 40) if args.quick else (30, 10, 500)
    import_runs = 5 if args.quick else 20
    results: dict[str, Any] = {"cold_start_runs": cold_runs, "client_import_runs": import_runs}
    if args.client_import_only:
        print(json.dumps(client_imports(import_runs), indent=1))
        return 0
    notes_file = ROOT / "bench" / "NOTES.md"
    os.environ.update(FAKE_CREDENTIALS)
    with (
        moto_process() as moto_url,
        running_cluster(tls=True, extra_settings={"max_connections": "300"}) as cluster,
    ):
        bed = Bed(cluster, moto_url)
        if args.quiet_only:
            measured = quiet(bed)
            _merge_committed(args.out, "quiet", measured)
            print(json.dumps(measured, indent=1))
            return 0
        if args.cost_only:
            counted = _costs(bed)
            print(json.dumps(counted, indent=1))
            return 0
        results["machine"] = machine(bed.admin.info.server_version // 10000)
        if args.cold_only:
            cold = {
                s: cold_start(bed, s.replace("-", "_"), cold_runs)
                for s in ("single-user", "multi-user")
            }
            print(
                json.dumps(
                    {"cold_start": cold, "imports": import_contributors("single_user")}, indent=1
                )
            )
            return 0
        print("quiet ...", flush=True)
        results["quiet"] = quiet(bed)
        print("latency ...", flush=True)
        results["latency"] = {s: latency(bed, s, rotations) for s in ("single-user", "multi-user")}
        print("cold start ...", flush=True)
        results["cold_start"] = {
            s: cold_start(bed, s.replace("-", "_"), cold_runs)
            for s in ("single-user", "multi-user")
        }
        results["imports"] = import_contributors("single_user")
        print("client import ...", flush=True)
        results["client_import"] = client_imports(import_runs)
        print("fleet ...", flush=True)
        arns = [bed.app() for _ in range(fleet_size)]
        results["fleet"] = [fleet(bed, arns, c) for c in (1, 8, 32)]
        print("status --all ...", flush=True)
        results["status_all"] = status_all(moto_url, status_groups, status_runs)
    print("client against a hung endpoint ...", flush=True)
    results["client_hung_endpoint"] = client_hung_endpoint(hung_runs)
    print("package ...", flush=True)
    results["package"] = package_size()
    results["notes"] = notes_file.read_text().splitlines() if notes_file.exists() else []
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_report(results, args.out / "RESULTS.md")
    write_quiet(results["quiet"], args.out / "RESULTS.md")
    print((args.out / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
