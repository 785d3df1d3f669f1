"""The command's reference (docs/hooks/cli_reference.py, the site's reference/cli.md) lists
every subcommand, option and exit code the parser has."""

from __future__ import annotations

import argparse
import re

from docs.hooks.cli_reference import EXIT_MEANINGS, options, render, subcommands
from rotation_tools import cli_parser

PAGE = render()


def _section(name: str) -> str:
    start = PAGE.index(f"## `rotation {name}` {{ #{name} }}")
    end = PAGE.find("\n## ", start + 1)
    return PAGE[start : end if end != -1 else None]


def test_every_subcommand_has_a_section() -> None:
    parser = cli_parser.build_parser()
    names = list(subcommands(parser))
    assert {"rotate", "status", "verify", "plan", "doctor", "invoke"} <= set(names)
    listed = re.findall(r"^## `rotation ([\w-]+)`", PAGE, re.MULTILINE)
    assert listed == names


def test_every_option_of_every_subcommand_is_listed_in_its_section() -> None:
    for name, sub in subcommands().items():
        section = _section(name)
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for flag in action.option_strings:
                assert f"`{flag}`" in section, f"rotation {name}: {flag} missing"
            if not action.option_strings:
                assert f"`{action.metavar or action.dest.upper()}`" in section


def test_every_exit_code_has_a_meaning() -> None:
    constants = {name for name in vars(cli_parser) if name.startswith("EXIT_")}
    assert constants == set(EXIT_MEANINGS)
    for constant in constants:
        assert f"| `{getattr(cli_parser, constant)}` |" in PAGE


def test_a_new_subcommand_appears_without_editing_the_page() -> None:
    """Generated, not hand-kept: a parser with one more subcommand renders it."""
    parser = cli_parser.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            extra = action.add_parser("frobnicate", help="a subcommand only this test has")
            extra.add_argument("--level", choices=("low", "high"), help="how much")
    page = render(parser)
    assert "## `rotation frobnicate` { #frobnicate }" in page
    assert "| `--level` | `low` \\| `high` |  | how much |" in page


def test_a_required_option_says_so() -> None:
    invoke = subcommands()["invoke"]
    (event,) = [o for o in options(invoke) if "`--event`" in o.names]
    assert event.default == "required"
