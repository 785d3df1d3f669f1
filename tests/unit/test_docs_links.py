"""The built site's link check (docs/hooks/check_links.py) finds what it must."""

from __future__ import annotations

from pathlib import Path

from docs.hooks.check_links import Site, check, main


def _site(root: Path) -> Path:
    (root / "guide").mkdir(parents=True)
    (root / "index.html").write_text(
        '<h1 id="top">Home</h1><a href="guide/page.html#usage">ok</a>'
        '<a href="guide/page.html#nowhere">bad anchor</a><a href="missing.html">bad file</a>'
        '<a href="https://example.org/x">external</a><a href="#top">self</a>'
        '<link href="/guide/page.html"><a href="../outside.html">leaves</a>'
    )
    (root / "guide" / "page.html").write_text(
        '<h2 id="usage">Usage</h2><a href="../index.html">up</a>'
    )
    return root


def test_broken_links_and_anchors_are_found(tmp_path: Path) -> None:
    broken, external = check(Site.read(_site(tmp_path / "site")))
    assert sorted((b.link, b.why) for b in broken) == [
        ("../outside.html", "leaves the site"),
        ("guide/page.html#nowhere", "no such anchor"),
        ("missing.html", "no such file"),
    ]
    assert external == {"https://example.org/x": ["index.html"]}


def test_main_fails_on_a_broken_link_and_lists_external_ones(tmp_path: Path) -> None:
    root = _site(tmp_path / "site")
    assert main([str(root)]) == 1
    assert (tmp_path / "external-links.txt").read_text() == "https://example.org/x\tindex.html\n"
    (root / "index.html").write_text('<a href="guide/page.html#usage">ok</a>')
    assert main([str(root)]) == 0
