"""Every command and every argument of `rotation` says what it is for."""

from __future__ import annotations

import argparse

from rotation_tools.cli_parser import build_parser as _parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_argument_has_help() -> None:
    missing = [
        f"{name} {action.dest}"
        for name, command in _subcommands().items()
        for action in command._actions
        if not action.help
    ]
    assert missing == []


def test_strategy_follows_one_rule_everywhere() -> None:
    """An optional override wherever it is taken: inferred from the function or the secret
    (tools/rotation_tools/infer.py), refused when it contradicts that."""
    taken = []
    for name, command in _subcommands().items():
        for action in command._actions:
            if action.dest == "strategy":
                assert not action.required, name
                assert action.default is None, name
                assert "inferred" in (action.help or ""), name
                taken.append(name)
    assert {"rotate", "plan", "doctor", "verify"} <= set(taken)


def test_verbose_only_where_handler_code_runs() -> None:
    with_verbose = {
        name
        for name, command in _subcommands().items()
        if any(action.dest == "verbose" for action in command._actions)
    }
    assert with_verbose == {"demo", "rotate", "doctor", "invoke", "verify"}
