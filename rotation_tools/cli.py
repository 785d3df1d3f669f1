"""The ``rotation`` command line: demo, rotate, status, doctor, invoke.

Exit codes: 0 success, 1 a failed rotation or check, 2 bad usage. Expected errors print one
line on stderr, never a traceback (``--verbose`` adds the log). Nothing here prints a
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
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("pg-secrets-rotation")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


_NAME_OR_ARN_HELP = "the secret's name or ARN"
_STRATEGY_HELP = (
    "single-user (change the user's password in place) or multi-user (alternate between the "
    "user and its clone, with the master secret); required: the secret does not say which"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rotation",
        description="Rotate PostgreSQL credentials in AWS Secrets Manager, locally.",
        epilog="Exit codes: 0 success, 1 a failed rotation or check, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout (logs: stderr)"
    )
    # Only on the commands that run handler code.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "--verbose", action="store_true", help="also print the handlers' JSON log, on stderr"
    )
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument(
        "--endpoint-url",
        help="Secrets Manager endpoint, e.g. an emulator's (default: SECRETS_MANAGER_ENDPOINT, "
        "else boto3's: AWS_ENDPOINT_URL, the region's)",
    )
    aws.add_argument("--region", help="AWS region (default: boto3's: AWS_REGION, the profile's)")
    aws.add_argument("--profile", help="AWS profile (default: boto3's: AWS_PROFILE, default)")
    strategy = argparse.ArgumentParser(add_help=False)
    strategy.add_argument(
        "--strategy", choices=("single-user", "multi-user"), required=True, help=_STRATEGY_HELP
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "demo",
        parents=[common, verbose],
        help="rotate end to end on an embedded Secrets Manager and a throwaway PostgreSQL",
        description="Start moto's Secrets Manager and a throwaway PostgreSQL cluster, rotate "
        "secrets through the real handlers, prove each claim, and clean up (also on Ctrl-C).",
    )
    rotate = sub.add_parser(
        "rotate",
        parents=[common, verbose, aws, strategy],
        help="rotate a secret now, from here, through the handler code (no Lambda)",
        description="Rotate now through the handler code, with your AWS credentials. No "
        "Lambda: the token is registered by createSecret itself. A rotation in progress is "
        "resumed with its token.",
    )
    rotate.add_argument("secret", help=_NAME_OR_ARN_HELP)
    rotate.add_argument(
        "--force",
        action="store_true",
        help="rotate even though rotation is enabled with a function (refused by default: "
        "a rotation Secrets Manager starts meanwhile would race with this one)",
    )
    status = sub.add_parser(
        "status",
        parents=[common, aws],
        help="versions, labels, rotation state and diagnosis",
        description="Show the secret's versions, labels and rotation configuration, and "
        "explain a stuck rotation with the commands that clear it (exit 1 when stuck).",
    )
    status.add_argument("secret", help=_NAME_OR_ARN_HELP)
    doctor = sub.add_parser(
        "doctor",
        parents=[common, verbose, aws, strategy],
        help="preflight checks: secret, DNS, TCP, TLS, login, master privileges",
        description="Check what a rotation needs, in the order a connection fails; one line "
        "per check, with a fix for each failure.",
    )
    doctor.add_argument("secret", help=_NAME_OR_ARN_HELP)
    start = sub.add_parser(
        "start",
        parents=[common, aws],
        help="register a rotation token as RotateSecret does, on an emulator (for invoke)",
        description="Register a new token as an AWSPENDING version with no value and enable "
        "rotation, as Secrets Manager's RotateSecret does before it invokes the function, but "
        "without invoking anything: the state `rotation invoke` needs to run the steps. For "
        "an emulator (moto) only: on AWS, RotateSecret always invokes the function.",
    )
    start.add_argument("secret", help=_NAME_OR_ARN_HELP)
    start.add_argument("--token", help="the token to register (default: a new UUID)")
    invoke = sub.add_parser(
        "invoke",
        parents=[common, verbose],
        help="docker-free `sam local invoke`: run a template function on an event file",
        description="Call a template function's handler in this process with an event file, "
        "the function's environment and a Lambda context counting down from its timeout.",
    )
    invoke.add_argument("function", help="the function's logical id, e.g. SingleUserFunction")
    invoke.add_argument("--event", "-e", required=True, type=Path, help="event JSON file")
    invoke.add_argument(
        "--template",
        "-t",
        type=Path,
        default=Path("template.yaml"),
        help="the SAM template (default: template.yaml)",
    )
    invoke.add_argument("--env-vars", "-n", type=Path, help="SAM-format env-vars JSON file")
    invoke.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as for sam",
    )
    invoke.add_argument(
        "--endpoint-url",
        help="the function's Secrets Manager endpoint (SECRETS_MANAGER_ENDPOINT), over the "
        "template, the parameters and the env-vars file",
    )
    invoke.add_argument("--secret-id", help="replace the event's SecretId")
    invoke.add_argument("--token", help="replace the event's ClientRequestToken")
    task = sub.add_parser(
        "check-task-def",
        parents=[common, aws],
        help="check an ECS task definition's secrets entries (colons, JSON keys)",
    )
    task.add_argument("file", type=Path, help="task definition JSON (as registered or described)")
    return parser


def _client(args: argparse.Namespace) -> Any:
    import boto3  # noqa: PLC0415  # keeps `rotation --help` fast
    from botocore.config import Config  # noqa: PLC0415

    from rotation.clients import CONNECT_TIMEOUT_S, READ_TIMEOUT_S  # noqa: PLC0415
    from rotation.config import secrets_manager_endpoint  # noqa: PLC0415

    # The handlers' timeouts: an endpoint that does not answer is an error within seconds,
    # not botocore's default minute per attempt.
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
    )
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    args.sm_client = session.client(
        "secretsmanager",
        endpoint_url=args.endpoint_url or secrets_manager_endpoint(),
        config=config,
    )
    return args.sm_client


def _aws_problem(args: argparse.Namespace, exc: BaseException, operation: str | None = None) -> Any:
    """The classified Secrets Manager failure behind ``exc`` (see aws_problems), or None."""
    from rotation_tools.aws_problems import explain  # noqa: PLC0415

    client = getattr(args, "sm_client", None)
    return explain(
        exc,
        secret_id=getattr(args, "secret", None) or "the secret",
        operation=operation,
        endpoint=args.endpoint_url or (client.meta.endpoint_url if client else None),
        region=client.meta.region_name if client else args.region,
    )


def _configure_output(args: argparse.Namespace, console: Any) -> None:
    """Logs on stderr only (stdout holds the command's output: with --json, one JSON
    document); the handlers' JSON log only with --verbose; a progress line on a terminal."""
    if not getattr(args, "verbose", False):
        # The handlers log JSON lines and EMF metrics for CloudWatch: noise here unless asked.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from rotation.observability import logger  # noqa: PLC0415

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(sys.stderr)
    if not getattr(args, "verbose", False):
        logger.setLevel(logging.CRITICAL)
    if not args.json and sys.stderr.isatty():
        from rotation_tools.progress import Progress  # noqa: PLC0415

        console.progress = Progress(sys.stderr)
        console.progress.attach()


def _cmd_demo(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.demo import run_demo  # noqa: PLC0415

    return run_demo(console)


def _connection_options(args: argparse.Namespace) -> str:
    """The connection options this command ran with, for the commands it prints: copied, they
    act where this one did. ``--endpoint-url``, ``--region`` and ``--profile`` mean the same
    to the aws CLI; an endpoint from SECRETS_MANAGER_ENDPOINT (which the aws CLI does not
    read) is spelled out too."""
    from rotation.config import secrets_manager_endpoint  # noqa: PLC0415

    endpoint = getattr(args, "endpoint_url", None) or secrets_manager_endpoint()
    options = ""
    for flag, value in (
        ("--endpoint-url", endpoint),
        ("--region", getattr(args, "region", None)),
        ("--profile", getattr(args, "profile", None)),
    ):
        if value:
            options += f" {flag} {shlex.quote(value)}"
    return options


def _refuse_managed(
    args: argparse.Namespace, console: Any, function_arn: str, pending: str | None
) -> int:
    secret = shlex.quote(args.secret)
    if pending:
        # RotateSecret refuses while a rotation is in progress: Secrets Manager re-attempts
        # that one itself; finishing it from here is the forced path.
        advice = (
            f"a rotation of it is in progress (version {pending} is AWSPENDING), which "
            f"Secrets Manager re-attempts through the function (`rotation status {secret}` "
            "explains it). Pass --force to finish it from here, with its token"
        )
    else:
        advice = (
            "a rotation started here could race with one Secrets Manager starts. Rotate "
            f"through the function: aws secretsmanager rotate-secret --secret-id {secret}"
            f"{_connection_options(args)}; or pass --force to rotate from here anyway (should "
            "the function's rotation start meanwhile, this one stands back and leaves it "
            "undisturbed)"
        )
    message = f"{args.secret} has rotation enabled with function {function_arn}: {advice}"
    console.error(message)
    console.result({"ok": False, "refused": True, "error": message, "function": function_arn})
    return EXIT_FAILED


def _rotate_command(args: argparse.Namespace) -> str:
    """The `rotation rotate` command line that resumes this one, as the user ran it."""
    force = " --force" if args.force else ""
    return (
        f"rotation rotate {shlex.quote(args.secret)} --strategy {args.strategy}{force}"
        f"{_connection_options(args)}"
    )


def _interrupted_rotation(args: argparse.Namespace, token: str, steps_done: list[str]) -> str:
    again = f"running `{_rotate_command(args)}` again resumes it"
    if steps_done:
        return (
            f"interrupted after {steps_done[-1]}: the rotation of {args.secret} is left in "
            f"progress (version {token} is AWSPENDING); {again}"
        )
    return (
        f"interrupted during createSecret: if it stored the new version, the rotation of "
        f"{args.secret} is left in progress (version {token} is AWSPENDING; `rotation status "
        f"{shlex.quote(args.secret)}{_connection_options(args)}` shows it) and {again}"
    )


def _cmd_rotate(args: argparse.Namespace, console: Any) -> int:
    from rotation import LocalRotation, RotationFailed  # noqa: PLC0415
    from rotation.driver import RotationFunctionAttachedError  # noqa: PLC0415
    from rotation_tools.strategies import build_rotator  # noqa: PLC0415

    client = _client(args)
    # Direct: no RotateSecret (it would invoke a deployed function); the token is
    # registered by createSecret itself. A rotation in progress is resumed with its token.
    # Refused, unless --force, when a function rotates the secret (see LocalRotation).
    rotator = build_rotator(args.strategy, client, direct=True)
    steps_done: list[str] = []

    def show(record: Any) -> None:
        if record.error is None:
            steps_done.append(record.step.value)
        console.step(record)

    handler = console.progress.wrap(rotator.handle) if console.progress else rotator.handle
    driver = LocalRotation(client, handler, on_step=show, direct=True, force=args.force)
    token = driver.pending_token(args.secret)
    try:
        driver.check_direct_allowed(args.secret)
    except RotationFunctionAttachedError as refused:
        return _refuse_managed(args, console, refused.function_arn, token)
    resumed = token is not None
    if token is None:
        token = driver.begin(args.secret)  # direct: a fresh token, registered by createSecret
        console.line(f"Rotating {args.secret} ({args.strategy}), token {token}")
    else:
        console.line(f"Resuming the rotation in progress (token {token})")
        steps_done.append("createSecret")  # its version is registered: resumable as it is
    try:
        run = driver.run(args.secret, token, resumed=resumed)
    except KeyboardInterrupt:
        message = _interrupted_rotation(args, token, steps_done)
        console.error(message)
        console.result({"ok": False, "interrupted": True, "error": message, "token": token})
        return EXIT_INTERRUPTED
    except RotationFunctionAttachedError as refused:  # attached since the check above
        return _refuse_managed(args, console, refused.function_arn, token if resumed else None)
    except RotationFailed as failed:
        message = str(failed.__cause__ or failed)
        problem = _aws_problem(args, failed)
        if problem is not None and problem.fix:
            message += f" ({problem.kind}: {problem.fix})"
        console.error(message)
        console.result({"ok": False, "error": message, "token": failed.run.token})
        return EXIT_FAILED
    console.line(f"Done: version {run.token} is AWSCURRENT")
    console.result(
        {
            "ok": True,
            "token": run.token,
            "resumed": run.resumed,
            "steps": [
                {"step": s.step.value, "ms": round(s.duration_s * 1000, 1), "outcome": s.outcome}
                for s in run.steps
            ],
        }
    )
    return EXIT_OK


def _cmd_status(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.status import collect_status, render  # noqa: PLC0415

    status = collect_status(_client(args), args.secret, options=_connection_options(args))
    render(status, console)
    console.result(status.as_json())
    return EXIT_FAILED if status.stuck else EXIT_OK


def _is_aws(endpoint: str) -> bool:
    host = urllib.parse.urlparse(endpoint).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


def _cmd_start(args: argparse.Namespace, console: Any) -> int:
    from rotation import LocalRotation  # noqa: PLC0415
    from rotation.driver import LOCAL_FUNCTION_ARN  # noqa: PLC0415

    client = _client(args)
    secret = shlex.quote(args.secret)
    endpoint = str(client.meta.endpoint_url)
    if _is_aws(endpoint):
        message = (
            f"`rotation start` is for an emulator, and {endpoint} is AWS, where RotateSecret "
            "registers the token and invokes the rotation function at once: `aws "
            f"secretsmanager rotate-secret --secret-id {secret}{_connection_options(args)}`. "
            f"To rotate without a function: `rotation rotate {secret} --strategy ...`"
        )
        console.error(message)
        console.result({"ok": False, "error": message})
        return EXIT_FAILED
    # The function the secret is configured with, if any: RotateSecret records the one given.
    function_arn = client.describe_secret(SecretId=args.secret).get("RotationLambdaARN")
    driver = LocalRotation(client, _no_handler, function_arn=function_arn or LOCAL_FUNCTION_ARN)
    in_progress = driver.pending_token(args.secret)
    if in_progress is not None:
        message = (
            f"a rotation of {args.secret} is already in progress: version {in_progress} is "
            "AWSPENDING (RotateSecret refuses too); invoke the steps with that token, or see "
            f"`rotation status {secret}{_connection_options(args)}`"
        )
        console.error(message)
        console.result({"ok": False, "error": message, "token": in_progress})
        return EXIT_FAILED
    token = driver.begin(args.secret, args.token)
    console.line(f"Started a rotation of {args.secret}: version {token} is AWSPENDING (no value)")
    console.line("Run its steps in order (createSecret, setSecret, testSecret, finishSecret):")
    console.line(
        f"  rotation invoke SingleUserFunction -e events/createSecret.json --secret-id {secret} "
        f"--token {token} --endpoint-url {shlex.quote(endpoint)}"
    )
    console.result({"ok": True, "token": token, "secret": args.secret, "endpoint": endpoint})
    return EXIT_OK


def _no_handler(event: dict[str, Any], context: Any) -> object:  # pragma: no cover
    raise AssertionError("rotation start runs no step")


def _cmd_doctor(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.doctor import run_doctor  # noqa: PLC0415

    console.line(f"Checking {args.secret} for {args.strategy} rotation")
    checks = run_doctor(_client(args), args.secret, strategy=args.strategy)
    for check in checks:
        console.check(check.ok, check.name, check.detail, check.hint)
    ok = all(check.ok is not False for check in checks)
    console.line("All checks passed." if ok else "Some checks failed.")
    console.result({"ok": ok, "checks": [c.as_json() for c in checks]})
    return EXIT_OK if ok else EXIT_FAILED


def _cmd_invoke(args: argparse.Namespace, console: Any) -> int:
    from rotation_tools.local_invoke import invoke  # noqa: PLC0415
    from rotation_tools.sam_template import UnknownFunctionError  # noqa: PLC0415

    overrides = {}
    for item in args.parameter_overrides:
        key, sep, value = item.partition("=")
        if not sep:
            console.error(f"--parameter-overrides takes KEY=VALUE, got {item!r}")
            return EXIT_USAGE
        overrides[key] = value
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
    if args.json:
        console.result({"ok": True, "result": result})
    else:
        console.line(json.dumps(result))
    return EXIT_OK


def _cmd_check_task_def(args: argparse.Namespace, console: Any) -> int:
    from rotation.ecs import check_task_definition  # noqa: PLC0415

    try:
        document = json.loads(args.file.read_text())
    except (OSError, ValueError) as exc:
        console.error(f"cannot read {args.file}: {exc}")
        return EXIT_FAILED
    findings = check_task_definition(document, _client(args))
    for finding in findings:
        console.check(finding.ok, f"{finding.container}/{finding.name}", finding.message)
    ok = all(f.ok is not False for f in findings)
    console.line(
        f"{len(findings)} secrets entries checked: {'all good' if ok else 'problems found'}"
    )
    console.result({"ok": ok, "findings": [f.as_json() for f in findings]})
    return EXIT_OK if ok else EXIT_FAILED


_COMMANDS = {
    "demo": _cmd_demo,
    "rotate": _cmd_rotate,
    "status": _cmd_status,
    "start": _cmd_start,
    "doctor": _cmd_doctor,
    "invoke": _cmd_invoke,
    "check-task-def": _cmd_check_task_def,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from rotation_tools.console import Console  # noqa: PLC0415

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
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        from rotation import RotationError  # noqa: PLC0415
        from rotation_tools.sam_template import TemplateError  # noqa: PLC0415
        from rotation_tools.testbed.pgcluster import ClusterError  # noqa: PLC0415

        expected = (
            RotationError
            | ClientError
            | BotoCoreError
            | FileNotFoundError
            | TemplateError
            | ClusterError
        )
        if isinstance(exc, expected):
            problem = (
                _aws_problem(args, exc) if isinstance(exc, ClientError | BotoCoreError) else None
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
