"""The `rotation` command's arguments and exit codes: its usage contract."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pg-secrets-rotation")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class _VersionAction(argparse.Action):
    """argparse's ``version`` action, with the version looked up when asked: reading the
    installed distributions' metadata (importlib.metadata) would cost every command ~15 ms
    at start-up."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        sys.stdout.write(f"{parser.prog} {_version()}\n")
        parser.exit()


_NAME_OR_ARN_HELP = "the secret's name or ARN"
_STRATEGY_HELP = (
    "single-user (change the user's password in place) or multi-user (alternate between the "
    "user and its clone, with the master secret); default: inferred from the rotation "
    "function, else the secret (masterarn, a <user>_clone pair); an override that "
    "contradicts that is refused"
)


def _fleet_arguments(status: argparse.ArgumentParser) -> None:
    """``status --all``: every secret with rotation configured (rotation_tools.fleet)."""
    status.add_argument(
        "--all",
        action="store_true",
        help="every secret with rotation configured in the account and region, one row each, "
        "with its state (exit 1 when any is stuck, overdue or not rotating)",
    )
    status.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="PREFIX|KEY=VALUE",
        help="with --all: only secrets whose name starts with PREFIX, or with tag KEY=VALUE "
        "(repeatable: all must match)",
    )


def _verify_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    verify = sub.add_parser(
        "verify",
        parents=parents,
        help="prove the stored credentials still log in (drift between rotations)",
        description="Log in as AWSCURRENT (multi-user: also as AWSPREVIOUS, which clients may "
        "still hold) with the handlers' TLS floor and require_auth, run the probe query, and "
        "report each secret as valid, drift, unreachable or misconfigured (exit 1 on anything "
        "but valid).",
    )
    verify.add_argument("secrets", nargs="+", metavar="SECRET", help=_NAME_OR_ARN_HELP)
    verify.add_argument(
        "--reconcile",
        action="store_true",
        help="on drift, with a masterarn in the secret: set the database password back to "
        "AWSCURRENT's (single-user), or reset the existing pair's drifted users (multi-user), "
        "as the master; only for roles MASTER_MANAGED_ROLES lists",
    )
    verify.add_argument(
        "--master-managed-roles",
        metavar="ROLES",
        default=None,
        help="with --reconcile: the roles the master may repair (comma-separated names, a "
        "trailing * matches a prefix); default: the MASTER_MANAGED_ROLES environment variable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rotation",
        description="Rotate PostgreSQL credentials in AWS Secrets Manager, locally.",
        epilog="Exit codes: 0 success, 1 a failed rotation or check, 2 bad usage, 130 interrupted.",
    )
    parser.add_argument("--version", action=_VersionAction)
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
        "--strategy", choices=("single-user", "multi-user"), default=None, help=_STRATEGY_HELP
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "demo",
        parents=[common, verbose],
        help="rotate end to end on an embedded Secrets Manager and a throwaway PostgreSQL",
        description="Start moto's Secrets Manager and a throwaway PostgreSQL cluster, rotate "
        "secrets through the real handlers, prove each claim, and clean up (also on Ctrl-C).",
    )
    sub.add_parser(
        "sandbox",
        parents=[common],
        help="a single-user and a multi-user secret to try your application against, until Ctrl-C",
        description="Start a Secrets Manager emulator and a throwaway PostgreSQL server, as "
        "the demo does; create a single-user and a multi-user secret with their users and a "
        "table; print the export lines, a client example and rotation commands for another "
        "shell; wait. Ctrl-C (or SIGTERM) stops both and deletes their files. With --json, "
        "one JSON document once it is ready.",
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
        help="versions, labels, rotation state and diagnosis; --all: the whole fleet",
        description="Show the secret's versions, labels and rotation configuration, and "
        "explain a stuck rotation with the commands that clear it (exit 1 when stuck). With "
        "--all, one row per secret with rotation configured.",
    )
    status.add_argument("secret", nargs="?", help=_NAME_OR_ARN_HELP)
    _fleet_arguments(status)
    doctor = sub.add_parser(
        "doctor",
        parents=[common, verbose, aws, strategy],
        help="preflight checks: secret, DNS, TCP, TLS, login, master privileges",
        description="Check what a rotation needs, in the order a connection fails; one line "
        "per check, with a fix for each failure.",
    )
    doctor.add_argument("secret", help=_NAME_OR_ARN_HELP)
    plan = sub.add_parser(
        "plan",
        parents=[common, aws, strategy],
        help="what a rotation would do: steps, API calls, logins, SQL; changes nothing",
        description="Print each step's Secrets Manager calls, which credential logs in where "
        "(TLS mode, authentication), the SQL statements (passwords and verifiers shown as "
        "<redacted>), and the checks `rotation doctor` would fail. Reads only (exit 1 when a "
        "check fails).",
    )
    plan.add_argument("secret", help=_NAME_OR_ARN_HELP)
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
    _verify_parser(sub, parents=[common, verbose, aws, strategy])
    task = sub.add_parser(
        "check-task-def",
        parents=[common, aws],
        help="check an ECS task definition's secrets entries (colons, JSON keys)",
    )
    task.add_argument("file", type=Path, help="task definition JSON (as registered or described)")
    return parser
