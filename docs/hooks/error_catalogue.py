"""The error catalogue, rendered from the error classes themselves.

Every public exception class of the distributions (:data:`PACKAGES`, walked module by
module) is an entry. What it means and what fixes it are written once, in the class's
docstring: its text up to ``Fix:`` (a paragraph of its own, or the last sentence) is the
cause, what follows the fix. So a message, the catalogue and the code cannot drift apart:
``tests/unit/test_docs_error_catalogue.py`` fails when a class has no cause or no fix, and
when an entry names a class that does not exist.

A class whose name or module starts with ``_`` is internal (it never leaves the module that
raises it) and has no entry.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

__all__ = ["PACKAGES", "Entry", "entries", "error_classes", "parse_docstring", "render"]


# Where a user meets the package's errors, in the order the catalogue lists them. The CDK
# construct (rotation_cdk) defines no exception class of its own: it refuses a bad argument
# at synth with ValueError, whose message states the rule (a test checks it has none).
PACKAGES: dict[str, str] = {
    "rotation_contract": "Shared by the rotation function and the application client",
    "rotation": "The rotation function's framework",
    "handlers": "The PostgreSQL strategies",
    "rotation_client": "The application client",
    "rotation_tools": "The `rotation` command and the deployment descriptions",
    "testbed": "The test bed (`make demo`, `rotation sandbox`, the tests)",
}
# "Fix:" starts the fix: a paragraph of its own, or a sentence of the last one.
_FIX = re.compile(r"(?:^|(?<=\s))Fix:\s*", re.MULTILINE)
# Sphinx roles in the docstrings (:class:`X`, :mod:`~a.b`) shown as code.
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
# A numpy-style section header: a title line underlined with dashes.
_SECTION = re.compile(r"^\S[^\n]*\n-{3,}\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Entry:
    """One catalogue entry."""

    name: str
    module: str
    bases: tuple[str, ...]
    cause: str
    fix: str

    @property
    def anchor(self) -> str:
        return self.name.lower()


def _modules(package: str) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # importing it runs the command
        yield importlib.import_module(info.name)


def _public(cls: type) -> bool:
    parts = [*cls.__module__.split("."), cls.__name__]
    return not any(part.startswith("_") for part in parts)


def error_classes() -> list[type[BaseException]]:
    """Every public exception class the packages define, in package then source order."""
    found: dict[str, type[BaseException]] = {}
    for package in PACKAGES:
        for module in _modules(package):
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if (
                    issubclass(cls, BaseException)
                    and cls.__module__ == module.__name__
                    and _public(cls)
                ):
                    found.setdefault(f"{cls.__module__}.{cls.__qualname__}", cls)
    return sorted(
        found.values(),
        key=lambda c: (list(PACKAGES).index(c.__module__.split(".")[0]), c.__module__,
                       inspect.getsourcelines(c)[1]),
    )  # fmt: skip


def parse_docstring(doc: str) -> tuple[str, str]:
    """``(cause, fix)`` from a class docstring; either is empty when missing.

    The cause is the text before ``Fix:``, the fix what follows it (without the word);
    numpy sections (``Parameters`` ...) are not part of either.
    """
    text = _ROLE.sub(r"``\1``", inspect.cleandoc(doc or ""))
    section = _SECTION.search(text)
    if section:
        text = text[: section.start()]
    match = _FIX.search(text)
    if match is None:
        return " ".join(text.split()), ""
    cause, fix = text[: match.start()], text[match.end() :]
    return " ".join(cause.split()), " ".join(fix.split())


def entries() -> list[Entry]:
    """The catalogue: one entry per class of :func:`error_classes`."""
    out = []
    for cls in error_classes():
        cause, fix = parse_docstring(cls.__doc__ or "")
        bases = tuple(b.__name__ for b in cls.__bases__)
        out.append(
            Entry(
                name=cls.__name__,
                module=cls.__module__,
                bases=bases,
                cause=cause,
                fix=fix,
            )
        )
    return out


def _tree(items: list[Entry]) -> list[str]:
    """The hierarchy under RotationError, as an indented list of links."""
    by_name = {e.name: e for e in items}
    children: dict[str, list[str]] = {}
    for e in items:
        parent = next((b for b in e.bases if b in by_name), "")
        children.setdefault(parent, []).append(e.name)
    lines: list[str] = []

    def walk(name: str, depth: int) -> None:
        lines.append(f"{'    ' * depth}- [`{name}`](#{by_name[name].anchor})")
        for child in children.get(name, []):
            walk(child, depth + 1)

    for root in children.get("", []):
        walk(root, 0)
    return lines


def render() -> str:
    """The catalogue page, in Markdown."""
    items = entries()
    out = [
        "# Error catalogue",
        "",
        "Every error a user can meet, what causes it and the fix. Generated when the site is "
        "built from the error classes' own docstrings (the same text `help()` shows), so "
        "the catalogue cannot drift from the code; a test fails when a class has no entry, "
        "no cause or no fix.",
        "",
        "Every error of the rotation function and the client is a `RotationError`: its "
        "message names the secret, the step and the token it happened in (`secret ..., step "
        "setSecret, token ...: <problem>`), and never contains a password. The message "
        "itself says which fix applies when a class has several causes. Symptoms without a "
        "class of ours (an `AccessDeniedException`, `Task timed out`) are in "
        "[Troubleshooting](../operations/troubleshooting.md).",
        "",
        "## Hierarchy",
        "",
        *_tree(items),
        "",
    ]
    for package, title in PACKAGES.items():
        mine = [e for e in items if e.module.split(".")[0] == package]
        if not mine:
            continue
        out += [f"## {title}", ""]
        for e in mine:
            out += [
                f"### `{e.name}` {{ #{e.anchor} }}",
                "",
                f"`{e.module}.{e.name}`, a `{'`, `'.join(e.bases)}`.",
                "",
                f"**Cause.** {e.cause}",
                "",
                f"**Fix.** {e.fix[:1].upper()}{e.fix[1:]}",
                "",
            ]
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
