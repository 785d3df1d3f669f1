"""The ``rotation`` command line: demo, sandbox, rotate, status, doctor, verify, plan, start,
invoke, check-task-def.

Exit codes: 0 success, 1 a failed rotation or check, 2 bad usage, 130 interrupted. Expected
errors print one line on stderr, never a traceback. stdout carries only the command's
output (with ``--json``, one JSON document); logs go to stderr. Nothing here prints a
password: rotations report steps and labels, status shows ids, labels and dates.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rotation_tools.cli_parser import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
)
from rotation_tools.cli_rotate import cmd_rotate, cmd_start
from rotation_tools.cli_session import aws_problem, secrets_manager
from rotation_tools.remedies import Remedies
from rotation_tools.test_bed import TestBedMissingError, require_test_bed

__all__ = ["main"]


def _configure_output(args: argparse.Namespace, console: Any) -> None:
    """Logs on stderr only (stdout holds the command's output: with --json, one JSON
    document); the handlers' JSON log only with --verbose; a progress line on a terminal."""
    if not getattr(args, "verbose", False):
        # The handlers log JSON lines and EMF metrics for CloudWatch: noise here unless asked.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from rotation.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    if not getattr(args, "verbose", False):
        logger.setLevel(logging.CRITICAL)
    if not args.json and sys.stderr.isatty():
        from rotation_tools.progress import Progress

        console.progress = Progress(sys.stderr)
        console.progress.attach()


def _cmd_demo(args: argparse.Namespace, console: Any) -> int:
    require_test_bed("demo")
    from rotation_tools.demo import run_demo

    return run_demo(console)


def _cmd_sandbox(args: argparse.Namespace, console: Any) -> int:
    require_test_bed("sandbox")
    from rotation_tools.sandbox import run_sandbox

    return run_sandbox(console)


def _cmd_status(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.status import collect_status, render

    if args.all or args.filter or not args.secret:
        from rotation_tools.cli_fleet import cmd_status_all

        return cmd_status_all(args, console)
    status = collect_status(secrets_manager(args), args.secret, remedies=Remedies.from_args(args))
    render(status, console)
    console.result(status.as_json())
    return EXIT_FAILED if status.stuck else EXIT_OK


def _cmd_doctor(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.doctor import run_doctor
    from rotation_tools.infer import strategy_for_command

    strategy = strategy_for_command(secrets_manager(args), args.secret, args.strategy, console)
    if strategy is None:
        return EXIT_USAGE
    args.strategy = strategy
    console.line(f"Checking {args.secret} for {args.strategy} rotation")
    checks = run_doctor(
        secrets_manager(args),
        args.secret,
        strategy=args.strategy,
        remedies=Remedies.from_args(args),
    )
    for check in checks:
        console.check(check.ok, check.name, check.detail, check.hint)
    ok = all(check.ok is not False for check in checks)
    console.line("All checks passed." if ok else "Some checks failed.")
    console.result({"ok": ok, "checks": [c.as_json() for c in checks]})
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_verify(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.cli_fleet import cmd_verify

    return cmd_verify(args, console)


def _cmd_invoke(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.local_invoke import invoke
    from rotation_tools.sam_template import UnknownFunctionError

    overrides = {}
    for item in args.parameter_overrides:
        key, sep, value = item.partition("=")
        if not sep:
            console.error(f"--parameter-overrides takes KEY=VALUE, got {item!r}")
            return EXIT_USAGE
        overrides[key] = value
    started = time.perf_counter()
    try:
        result = invoke(
            args.template,
            args.function,
            args.event,
            parameter_overrides=overrides,
            env_vars=args.env_vars,
            secret_id=args.secret_id,
            token=args.token,
            endpoint_url=args.endpoint_url,
        )
    except UnknownFunctionError as unknown:  # a mistyped argument: bad usage
        console.error(str(unknown))
        console.result({"ok": False, "error": str(unknown)})
        return EXIT_USAGE
    console.result({"ok": True, "result": result})
    _show_invocation(args, console, result, time.perf_counter() - started)
    return EXIT_OK


_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def _show_invocation(args: argparse.Namespace, console: Any, result: Any, took_s: float) -> None:
    """What ran, on what, what it returned, and the step that follows (its command)."""
    from rotation_tools.local_invoke import load_event

    event = load_event(args.event, secret_id=args.secret_id, token=args.token)
    step = event.get("Step")
    if step not in _STEPS:  # a verification event
        console.line(f"{args.function} ran {args.event} in {took_s * 1000:.1f} ms")
        console.line(json.dumps(result, indent=2, default=str))
        return
    secret, token = event.get("SecretId"), event.get("ClientRequestToken")
    console.line(
        f"{args.function} ran {step} of {secret} (token {token}) in {took_s * 1000:.1f} ms: "
        f"{json.dumps(result, default=str)}"
    )
    if step == _STEPS[-1]:
        console.line(
            f"The rotation is complete: `{Remedies.from_args(args).status(str(secret))}` shows "
            "the labels"
        )
        return
    following = args.event.with_name(f"{_STEPS[_STEPS.index(step) + 1]}.json")
    command = [
        "rotation", "invoke", args.function, "-e", str(following), "--secret-id", str(secret),
        "--token", str(token),
    ]  # fmt: skip
    if args.template != Path("template.yaml"):
        command += ["-t", str(args.template)]
    if args.env_vars:
        command += ["--env-vars", str(args.env_vars)]
    if args.endpoint_url:
        command += ["--endpoint-url", args.endpoint_url]
    for item in args.parameter_overrides:
        command += ["--parameter-overrides", item]
    console.line(f"Next: {shlex.join(command)}")


def _cmd_check_task_def(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.ecs_task_def import check_task_definition

    try:
        document = json.loads(args.file.read_text())
    except (OSError, ValueError) as exc:
        console.error(f"cannot read {args.file}: {exc}")
        return EXIT_FAILED
    findings = check_task_definition(document, secrets_manager(args))
    for finding in findings:
        console.check(finding.ok, f"{finding.container}/{finding.name}", finding.message)
    ok = all(f.ok is not False for f in findings)
    console.line(
        f"{len(findings)} secrets entries checked: {'all good' if ok else 'problems found'}"
    )
    console.result({"ok": ok, "findings": [f.as_json() for f in findings]})
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_plan(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.plan import cmd_plan

    return cmd_plan(args, console)


_COMMANDS = {
    "demo": _cmd_demo,
    "sandbox": _cmd_sandbox,
    "rotate": cmd_rotate,
    "status": _cmd_status,
    "start": cmd_start,
    "doctor": _cmd_doctor,
    "plan": _cmd_plan,
    "invoke": _cmd_invoke,
    "verify": _cmd_verify,
    "check-task-def": _cmd_check_task_def,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from rotation_tools.console import Console

    console = Console(json_mode=args.json)  # keeps the real stdout
    _configure_output(args, console)
    try:
        # Anything printed without a stream (Powertools' EMF metrics with --verbose) goes to
        # stderr: stdout carries only what the console writes.
        with contextlib.redirect_stdout(sys.stderr):
            return _COMMANDS[args.command](args, console)
    except KeyboardInterrupt:
        message = "interrupted; everything started was stopped"
        console.error(message)
        console.result({"ok": False, "interrupted": True, "error": message})
        return EXIT_INTERRUPTED
    except Exception as exc:  # one clear line for anything expected to go wrong
        from botocore.exceptions import BotoCoreError, ClientError

        from rotation import RotationError
        from rotation_tools.sam_template import TemplateError

        # The test bed's own failures, when it ran (it is loaded only by demo and sandbox,
        # and installed with no wheel).
        bed = sys.modules.get("testbed.pgcluster")
        expected = (
            RotationError,
            ClientError,
            BotoCoreError,
            FileNotFoundError,
            TemplateError,
            TestBedMissingError,
            *((bed.ClusterError,) if bed is not None else ()),
        )
        if isinstance(exc, expected):
            problem = (
                aws_problem(args, exc) if isinstance(exc, ClientError | BotoCoreError) else None
            )
            message = str(problem or exc)
            console.error(message)
            console.result({"ok": False, "error": message, "kind": getattr(problem, "kind", None)})
            return EXIT_FAILED
        raise
    finally:
        if console.progress is not None:
            console.progress.detach()


if __name__ == "__main__":
    sys.exit(main())
