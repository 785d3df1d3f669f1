"""The `rotation` command's reference, rendered from its argument parser.

Every subcommand, option and exit code comes from :func:`rotation_tools.cli_parser.build_parser`
and the ``EXIT_*`` constants beside it, so the page cannot list an option the command does
not have, nor miss one it has (``tests/unit/test_docs_cli_reference.py``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from rotation_tools import cli_parser

__all__ = ["EXIT_MEANINGS", "Option", "options", "render", "subcommands"]

# What each exit code means; a test checks that every EXIT_* constant has an entry.
EXIT_MEANINGS: dict[str, str] = {
    "EXIT_OK": "success: the rotation completed, every check passed",
    "EXIT_FAILED": "a failed rotation or check (the one line on stderr names the fix)",
    "EXIT_USAGE": "bad usage: an unknown option, a missing argument, a strategy that cannot "
    "be inferred or contradicts the evidence; nothing was changed",
    "EXIT_INTERRUPTED": "interrupted (Ctrl-C): whatever the command started is stopped; an "
    "interrupted `rotate` is left in progress, and running it again resumes it",
}
# The width usage lines are wrapped at, whatever the terminal that builds the site.
_WIDTH = 88


@dataclass(frozen=True)
class Option:
    """One argument of a subcommand, as the page shows it."""

    names: str
    value: str
    default: str
    help: str


def subcommands(
    parser: argparse.ArgumentParser | None = None,
) -> dict[str, argparse.ArgumentParser]:
    """The parser's subcommands by name, in the order ``rotation --help`` lists them."""
    parser = parser or cli_parser.build_parser()
    for action in parser._actions:  # argparse keeps its actions here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def options(sub: argparse.ArgumentParser) -> list[Option]:
    """The subcommand's arguments, positional first, as the parser declares them."""
    rows = []
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            names = ", ".join(f"`{name}`" for name in action.option_strings)
        else:
            names = f"`{action.metavar or action.dest.upper()}`"
        if action.choices:
            value = " \\| ".join(f"`{choice}`" for choice in action.choices)
        elif action.nargs == 0:
            value = ""
        elif action.option_strings:
            metavar = action.metavar or action.dest.upper()
            value = f"`{metavar}`" + (" ..." if action.nargs in ("*", "+") else "")
        else:
            value = {"?": "optional", "+": "one or more", "*": "any number"}.get(
                str(action.nargs), "required"
            )
        default = action.default
        shown = "" if default in (None, False, [], argparse.SUPPRESS) else f"`{default}`"
        if action.required and action.option_strings:
            shown = "required"
        rows.append(Option(names, value, shown, _cell(action.help or "")))
    return rows


def _usage(sub: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(sub.prog, width=_WIDTH)
    formatter.add_usage(sub.usage, sub._actions, sub._mutually_exclusive_groups)
    return formatter.format_help().strip()


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The reference page, in Markdown."""
    parser = parser or cli_parser.build_parser()
    summaries = _summaries(parser)
    out = [
        "# The `rotation` command",
        "",
        "Generated from the command's argument parser "
        "(`tools/rotation_tools/cli_parser.py`) when the site is built: what is listed here "
        "is exactly what the command accepts. How the commands behave, with examples: "
        "[Operations](../operations/index.md).",
        "",
        "```text",
        _usage(parser),
        "```",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    commands = subcommands(parser)
    out += [f"| [`{name}`](#{name}) | {_cell(summaries.get(name, ''))} |" for name in commands]
    out += ["", "## Exit codes", "", "| code | meaning |", "|---|---|"]
    for constant, meaning in EXIT_MEANINGS.items():
        out.append(f"| `{getattr(cli_parser, constant)}` | {meaning} |")
    out += [
        "",
        "`rotation --version` prints the version; `rotation COMMAND --help` the options.",
        "",
    ]
    for name, sub in commands.items():
        out += [f"## `rotation {name}` {{ #{name} }}", ""]
        out += [_cell(sub.description or summaries.get(name, "")), ""]
        out += ["```text", _usage(sub), "```", ""]
        rows = options(sub)
        if rows:
            out += ["| argument | value | default | meaning |", "|---|---|---|---|"]
            out += [f"| {o.names} | {o.value} | {o.default} | {o.help} |" for o in rows]
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
