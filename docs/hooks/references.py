"""Every cross-reference in the docstrings resolves: what the strict build checks of them.

The docstrings cross-reference in Sphinx's roles (``:class:`Rotator```,
``:func:`~rotation_contract.pg.login.classify_login```), which mkdocstrings renders as
code, not as links: nothing in MkDocs would notice a name that a rename left behind. So
each target is resolved here, the way a reader would: a dotted name from the top (a module,
then attributes), else relative to the module the docstring is in (its globals, then
attributes), else a module of ours by its own name. ``docs/hooks/generate.py`` logs each
unresolved one as a warning, which fails ``make docs`` (strict), and
``tests/unit/test_docs_references.py`` fails on them too.

Read from the source (``ast``): a docstring of a module whose optional dependency is not
installed (the construct without aws-cdk-lib) is checked against the names it defines.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["FOLDERS", "Reference", "references", "unresolved"]

ROOT = Path(__file__).resolve().parents[2]
# Each package of ours, by the folder that holds it.
FOLDERS: dict[str, Path] = {
    "rotation": ROOT,
    "handlers": ROOT,
    "rotation_contract": ROOT / "contract",
    "rotation_client": ROOT / "client",
    "rotation_tools": ROOT / "tools",
    "rotation_cdk": ROOT / "cdk",
    "testbed": ROOT,
}
_ROLE = re.compile(r":(class|func|meth|mod|attr|data|exc|obj):`~?([^`<>]+?)`")
# Not ours to check: Python's own objects named by their usual spelling.
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Reference:
    """A role in a docstring: where it is, and what it names."""

    module: str
    path: Path
    line: int
    role: str
    target: str
    # The class whose docstring (or method's) holds it: ``:meth:`connect``` is its own.
    owner: str | None = None

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: :{self.role}:`{self.target}`"


def _module_name(package: str, path: Path) -> str:
    parts = list(path.relative_to(FOLDERS[package]).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _docstrings(node: ast.AST, owner: str | None = None) -> Iterator[tuple[int, str, str | None]]:
    """Each docstring under ``node``, with the class it belongs to (a class's own, or one
    of its methods')."""
    body = getattr(node, "body", [])
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        yield body[0].lineno, body[0].value.value, owner
    for child in body:
        if isinstance(child, ast.ClassDef):
            yield from _docstrings(child, child.name if owner is None else f"{owner}.{child.name}")
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _docstrings(child, owner)


def references() -> Iterator[Reference]:
    """Every role in every docstring of our packages."""
    for package, folder in FOLDERS.items():
        for path in sorted((folder / package).rglob("*.py")):
            tree = ast.parse(path.read_text())
            module = _module_name(package, path)
            for line, doc, owner in _docstrings(tree):
                for match in _ROLE.finditer(doc):
                    offset = doc[: match.start()].count("\n")
                    target = re.sub(r"\s+", "", match[2])  # a name wrapped across lines
                    yield Reference(module, path, line + offset, match[1], target, owner)


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _attribute(value: Any, dotted: list[str]) -> bool:
    for part in dotted:
        fields = getattr(value, "__dataclass_fields__", {})
        annotations = getattr(value, "__annotations__", {})
        if part in fields or (isinstance(value, type) and part in annotations):
            value = fields.get(part, annotations.get(part))
            continue
        if not hasattr(value, part):
            return False
        value = getattr(value, part)
    return True


def _from_the_top(target: str) -> bool:
    """Whether ``target`` resolves as a dotted name from the top: imported, or, for a
    module of ours that cannot be imported here (the construct without aws-cdk-lib), read
    from its source."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        module = _import(".".join(parts[:cut]))
        if module is not None:
            return _attribute(module, parts[cut:])
        source = _source_of(".".join(parts[:cut]))
        if source is not None:
            rest = parts[cut:]
            return not rest or rest[0] in _defined_names(source)
    return False


def _source_of(module: str) -> Path | None:
    """The file of a module of ours, found on disk without importing anything."""
    package, *rest = module.split(".")
    folder = FOLDERS.get(package)
    if folder is None:
        return None
    base = folder.joinpath(package, *rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _defined_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _resolves(reference: Reference) -> bool:
    target = reference.target
    if target in _BUILTINS or _from_the_top(target) or _import(target) is not None:
        return True
    module = _import(reference.module)
    if module is None:
        # Its optional dependency is missing: the first name must be one it defines.
        return target.split(".")[0] in _defined_names(reference.path)
    names = target.split(".")
    owner = reference.owner.split(".") if reference.owner else []
    # Where a reader looks: the enclosing class, the module, the package's face, and the
    # package's own modules (``:mod:`pg_sql``` in handlers).
    package = reference.module.split(".")[0]
    return (
        (bool(owner) and _attribute(module, [*owner, *names]))
        or _attribute(module, names)
        or _attribute(_import(package), names)
        or _import(f"{package}.{target}") is not None
    )


def unresolved() -> list[Reference]:
    """The references that name nothing."""
    return [reference for reference in references() if not _resolves(reference)]


if __name__ == "__main__":
    for reference in unresolved():
        print(reference)
