"""MkDocs hook: the generated reference pages, added to the site at build time.

``mkdocs.yml`` names this file under ``hooks:``. The pages exist only in the built site
(nothing generated is committed): ``reference/cli.md`` from the command's parser,
``reference/configuration.md`` from the configuration modules, ``reference/errors.md``
from the error classes.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

# MkDocs loads a hook by its path; the generators are the package beside it.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from docs.hooks import cli_reference, config_reference, error_catalogue, references  # noqa: E402

# Under "mkdocs": a warning here counts for --strict, which fails the build on it.
log = logging.getLogger("mkdocs.hooks.generate")

GENERATED: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_reference.render,
    "reference/configuration.md": config_reference.render,
    "reference/errors.md": error_catalogue.render,
}


# The docstrings cross-reference in Sphinx's roles (:class:`X`, :func:`~a.b`), which
# mkdocstrings renders as text: shown as the code they name.
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):(<code>)~?")


def on_page_content(html: str, **_: Any) -> str:
    """Drop the role prefix from every rendered page (the API reference's docstrings)."""
    return _ROLE.sub(r"\1", html)


def on_pre_build(config: Any) -> None:
    """A docstring's cross-reference that names nothing is a broken link (they render as
    code, so nothing else would notice): one warning each, which fails the strict build."""
    for reference in references.unresolved():
        log.warning("docstring reference names nothing: %s", reference)


def on_files(files: Files, config: Any) -> Files:
    """Add each generated page (MkDocs calls this once the docs folder is read)."""
    for path, render in GENERATED.items():
        files.append(File.generated(config, path, content=render()))
    return files
