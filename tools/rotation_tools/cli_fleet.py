"""``rotation status --all`` and ``rotation verify``: the fleet commands' output and exit
codes (the work is in :mod:`rotation_tools.fleet` and :mod:`rotation_tools.verify`)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any

from rotation_tools.cli_parser import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from rotation_tools.cli_session import secrets_manager

__all__ = ["cmd_status_all", "cmd_verify"]

_BAR_WIDTH = 24


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _print_list(console: Any, document: list[dict[str, Any]]) -> None:
    """``--json``: one JSON list on stdout."""
    print(json.dumps(document, indent=2, default=str), file=console.stream, flush=True)


def _progress_line(console: Any) -> Callable[[int, int | None, str], None] | None:
    """A status line on the terminal while the listing pages (None elsewhere)."""
    progress = console.progress
    if progress is None:
        return None

    def show(done: int, total: int | None, what: str) -> None:
        if total is None:
            progress.show(f"{what}, {done} secrets so far")
            return
        filled = _BAR_WIDTH * done // max(total, 1)
        progress.show(f"{what} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done}/{total}")

    return show


def cmd_status_all(
    args: argparse.Namespace, console: Any, *, now: Callable[[], datetime.datetime] = _utc_now
) -> int:
    from rotation_tools.fleet import collect_fleet, parse_filter, render_fleet

    if args.secret and args.all:
        console.error("status takes a SECRET or --all, not both")
        return EXIT_USAGE
    if not args.all:
        console.error(
            "--filter applies to --all only"
            if args.secret
            else "status needs a SECRET, or --all for every secret with rotation configured"
        )
        return EXIT_USAGE
    try:
        filters = [parse_filter(text) for text in args.filter]
    except ValueError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    rows = collect_fleet(
        secrets_manager(args), now=now(), filters=filters, progress=_progress_line(console)
    )
    if console.progress is not None:
        console.progress.clear()
    if args.json:
        _print_list(console, [row.as_json() for row in rows])
    else:
        render_fleet(rows, console)
    return EXIT_FAILED if any(row.needs_attention for row in rows) else EXIT_OK


def _unreadable(args: argparse.Namespace, client: Any, secret_id: str) -> Any:
    """Why ``secret_id`` cannot be read, classified (not found, denied, KMS, unreachable) as
    every command says it, or None. One DescribeSecret, only for a secret that failed so."""
    from botocore.exceptions import BotoCoreError, ClientError

    from rotation_tools.cli_session import aws_problem

    try:
        client.describe_secret(SecretId=secret_id)
    except (ClientError, BotoCoreError) as exc:
        return aws_problem(args, exc, secret_id=secret_id)
    return None


def cmd_verify(args: argparse.Namespace, console: Any) -> int:
    from handlers.pg_config import master_managed_roles
    from rotation.errors import ConfigurationError
    from rotation_tools.infer import strategy_for_command
    from rotation_tools.remedies import Remedies, verify_fix
    from rotation_tools.verify import render_verifications, verify_secrets

    if args.master_managed_roles is not None and not args.reconcile:
        console.error("--master-managed-roles applies to --reconcile only")
        return EXIT_USAGE
    try:
        managed = master_managed_roles(explicit=args.master_managed_roles)
    except ConfigurationError as exc:
        console.error(exc.problem)
        return EXIT_USAGE
    client = secrets_manager(args)
    # Each secret's own strategy (a mixed fleet in one call), or the one given, unless it
    # contradicts what a secret shows.
    strategies = [
        strategy_for_command(client, secret_id, args.strategy, console)
        for secret_id in args.secrets
    ]
    if None in strategies:
        return EXIT_USAGE
    results = [
        result
        for secret_id, strategy in zip(args.secrets, strategies, strict=True)
        for result in verify_secrets(
            client,
            [secret_id],
            strategy=str(strategy),
            reconcile=args.reconcile,
            managed_roles=managed,
        )
    ]
    remedies = Remedies.from_args(args)
    fixes = {}
    for index, secret_id in enumerate(args.secrets):
        verdict = results[index]
        fix = verify_fix(verdict.state.value, verdict.cause, remedies, secret_id)
        if verdict.cause == "SecretsManagerError":
            problem = _unreadable(args, client, secret_id)
            if problem is not None:
                verdict = dataclasses.replace(verdict, problem=problem.problem)
                results[index] = verdict
                fix = problem.fix or fix
        fixes[id(verdict)] = fix
    if args.json:
        _print_list(console, [{**result.as_json(), "fix": fixes[id(result)]} for result in results])
    else:
        render_verifications(results, console, fix=lambda result: fixes[id(result)])
    return EXIT_OK if all(result.valid for result in results) else EXIT_FAILED
