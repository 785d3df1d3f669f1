"""`rotation rotate` (rotate now, through the handler code, no Lambda) and `rotation start`
(register a token on an emulator, as RotateSecret does)."""

from __future__ import annotations

import argparse
import shlex
import urllib.parse
from pathlib import Path
from typing import Any

from rotation_tools.checkout import CHECKOUT
from rotation_tools.cli_parser import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from rotation_tools.cli_session import aws_problem, secrets_manager
from rotation_tools.remedies import Remedies

__all__ = ["cmd_rotate", "cmd_start"]


def _refuse_managed(
    args: argparse.Namespace, console: Any, function_arn: str, pending: str | None
) -> int:
    remedies = Remedies.from_args(args)
    if pending:
        # RotateSecret refuses while a rotation is in progress: Secrets Manager re-attempts
        # that one itself; finishing it from here is the forced path.
        advice = (
            f"a rotation of it is in progress (version {pending} is AWSPENDING), which "
            f"Secrets Manager re-attempts through the function (`{remedies.status(args.secret)}`"
            " explains it). Pass --force to finish it from here, with its token"
        )
    else:
        advice = (
            "a rotation started here could race with one Secrets Manager starts. Rotate "
            f"through the function: {remedies.aws('rotate-secret', args.secret)}; or pass "
            "--force to rotate from here anyway (should the function's rotation start "
            "meanwhile, this one stands back and leaves it undisturbed)"
        )
    message = f"{args.secret} has rotation enabled with function {function_arn}: {advice}"
    console.error(message)
    console.result({"ok": False, "refused": True, "error": message, "function": function_arn})
    return EXIT_FAILED


def _rotate_command(args: argparse.Namespace) -> str:
    """The `rotation rotate` command line that resumes this one, as the user ran it."""
    return Remedies.from_args(args).rotate(args.secret, force=args.force)


def _interrupted_rotation(args: argparse.Namespace, token: str, steps_done: list[str]) -> str:
    again = f"running `{_rotate_command(args)}` again resumes it"
    if steps_done:
        return (
            f"interrupted after {steps_done[-1]}: the rotation of {args.secret} is left in "
            f"progress (version {token} is AWSPENDING); {again}"
        )
    return (
        f"interrupted during createSecret: if it stored the new version, the rotation of "
        f"{args.secret} is left in progress (version {token} is AWSPENDING; "
        f"`{Remedies.from_args(args).status(args.secret)}` shows it) and {again}"
    )


def cmd_rotate(args: argparse.Namespace, console: Any) -> int:
    """Rotate now through the handler code (direct mode); resume a rotation in progress."""
    from rotation import LocalRotation, RotationFailed
    from rotation.driver import RotationFunctionAttachedError
    from rotation_tools.infer import strategy_for_command
    from rotation_tools.strategies import build_rotator

    client = secrets_manager(args)
    strategy = strategy_for_command(client, args.secret, args.strategy, console)
    if strategy is None:
        return 2  # bad usage: the message says which --strategy to pass, or why not that one
    args.strategy = strategy
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
        problem = aws_problem(args, failed)
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


def _is_aws(endpoint: str) -> bool:
    host = urllib.parse.urlparse(endpoint).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


def cmd_start(args: argparse.Namespace, console: Any) -> int:
    """Register a token as RotateSecret does, on an emulator only (see the parser's help)."""
    from rotation import LocalRotation
    from rotation.driver import LOCAL_FUNCTION_ARN

    client = secrets_manager(args)
    secret = shlex.quote(args.secret)
    remedies = Remedies.from_args(args)
    endpoint = str(client.meta.endpoint_url)
    if _is_aws(endpoint):
        message = (
            f"`rotation start` is for an emulator, and {endpoint} is AWS, where RotateSecret "
            "registers the token and invokes the rotation function at once: "
            f"`{remedies.aws('rotate-secret', args.secret)}`. To rotate without a function: "
            f"`{remedies.rotate(args.secret)}`"
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
            f"`{remedies.status(args.secret)}`"
        )
        console.error(message)
        console.result({"ok": False, "error": message, "token": in_progress})
        return EXIT_FAILED
    token = driver.begin(args.secret, args.token)
    console.line(f"Started a rotation of {args.secret}: version {token} is AWSPENDING (no value)")
    console.line(
        "Run its steps in order (createSecret, setSecret, testSecret, finishSecret), with "
        "MultiUserFunction for a multi-user secret:"
    )
    events, template = _repository_files()
    console.line(
        f"  rotation invoke SingleUserFunction -e {shlex.quote(str(events / 'createSecret.json'))}"
        f"{template} --secret-id {secret} --token {token} --endpoint-url {shlex.quote(endpoint)}"
    )
    console.result({"ok": True, "token": token, "secret": args.secret, "endpoint": endpoint})
    return EXIT_OK


def _repository_files() -> tuple[Path, str]:
    """The event files' directory and the ``-t TEMPLATE`` option, as paths that work from the
    current directory: relative inside the repository's root, absolute elsewhere."""
    root = CHECKOUT
    if Path.cwd().resolve() == root or not (root / "events").is_dir():
        return Path("events"), ""  # the root, or an install without the repository's files
    template = root / "template.yaml"
    return root / "events", f" -t {shlex.quote(str(template))}"


def _no_handler(event: dict[str, Any], context: Any) -> object:  # pragma: no cover
    raise AssertionError("rotation start runs no step")
