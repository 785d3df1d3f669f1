"""Check the built site's links: every internal link reaches a page, every anchor an id.

``python -m docs.hooks.check_links build/site`` (``make docs`` runs it after the build).
Links to other sites are listed, never fetched (the build and its checks run offline):
``build/external-links.txt`` holds each with the pages that link to it. Exit 1 and one line
per broken link when any is broken.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["Broken", "Site", "check", "main"]

# Attributes that hold a link, by tag.
_LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("id", "name"):
            value = values.get(name)
            if value and (name == "id" or tag == "a"):
                self.ids.add(value)
        link = values.get(_LINK_ATTRIBUTES.get(tag, ""))
        if link:
            self.links.append(link)


@dataclass(frozen=True)
class Broken:
    page: str
    link: str
    why: str

    def __str__(self) -> str:
        return f"{self.page}: {self.link}: {self.why}"


@dataclass
class Site:
    """The site's pages: their ids and their links."""

    root: Path
    ids: dict[Path, set[str]] = field(default_factory=dict)
    links: dict[Path, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, root: Path) -> Site:
        site = cls(root.resolve())
        for path in sorted(site.root.rglob("*.html")):
            page = _Page()
            page.feed(path.read_text(encoding="utf-8"))
            site.ids[path] = page.ids
            site.links[path] = page.links
        return site


def _external(link: str) -> bool:
    parts = urlsplit(link)
    return bool(parts.scheme or parts.netloc)


def check(site: Site) -> tuple[list[Broken], dict[str, list[str]]]:
    """The broken internal links, and the external links with the pages linking to them."""
    broken: list[Broken] = []
    external: dict[str, list[str]] = {}
    for page, links in site.links.items():
        name = str(page.relative_to(site.root))
        for link in links:
            if _external(link):
                if not link.startswith(("javascript:", "data:")):
                    external.setdefault(link, []).append(name)
                continue
            parts = urlsplit(link)
            # A root-relative link (404.html has them: it is served at any path) starts at
            # the site's root.
            base = site.root if parts.path.startswith("/") else page.parent
            path = unquote(parts.path).lstrip("/")
            target = (base / path).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(site.root):
                broken.append(Broken(name, link, "leaves the site"))
            elif not target.is_file():
                broken.append(Broken(name, link, "no such file"))
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in site.ids.get(target, set())
            ):
                broken.append(Broken(name, link, "no such anchor"))
    return broken, external


def _report(external: dict[str, list[str]]) -> Iterable[str]:
    for link in sorted(external):
        pages = sorted(set(external[link]))
        yield f"{link}\t{', '.join(pages)}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else "build/site")
    if not root.is_dir():
        print(f"check_links: {root} is not a built site (run `make docs`)", file=sys.stderr)
        return 1
    site = Site.read(root)
    broken, external = check(site)
    listed = root.parent / "external-links.txt"
    listed.write_text("".join(f"{line}\n" for line in _report(external)))
    for item in broken:
        print(item, file=sys.stderr)
    links = sum(len(v) for v in site.links.values())
    print(
        f"check_links: {len(site.links)} pages, {links} links, {len(broken)} broken; "
        f"{len(external)} external links listed in {listed} (not fetched)"
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
