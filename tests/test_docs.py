"""The docs/ pages' Python examples run as written, and every relative link in README.md and docs/ points at a file.

Each page's ```python blocks run in order in one namespace of their own, like a notebook, from the
repository root. A block that cannot run in a test (it needs a trained run, a real checkpoint or hours)
is fenced ```python no-run instead: highlighted as Python, not executed. Keep those rare.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import REPO

DOCS = sorted((REPO / "docs").glob("*.md"))
# Pages other sessions write; the README links them before they land. Accepted only while missing.
PENDING: set[str] = set()

_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", flags=re.S | re.M)
_LINK = re.compile(r"!?\[(?:[^\]]|\n)*?\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a markdown text (not ```python no-run), in order, each padded with blank lines
    so that a traceback's line numbers are the page's."""
    return [
        "\n" * text.count("\n", 0, m.start(2)) + m.group(2)
        for m in _FENCE.finditer(text)
        if m.group(1).strip() == "python"
    ]


def relative_links(text: str, fragments: bool = False) -> list[str]:
    """The targets of a page's markdown links and images outside code, without their #fragments unless asked;
    URLs and links within the page left out."""
    prose = re.sub(r"`[^`\n]*`", "", _FENCE.sub("", text))
    targets = [t if fragments else t.split("#", 1)[0] for t in _LINK.findall(prose)]
    return [t for t in targets if t and not t.startswith("#") and not re.match(r"^[a-z][a-z0-9+.-]*:", t, flags=re.I)]


def anchors(text: str) -> set[str]:
    """The #fragments GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#{1,6}[ \t]+(.+?)[ \t]*$", _FENCE.sub("", text), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize(
    "page", [p for p in DOCS if python_blocks(p.read_text(encoding="utf-8"))], ids=lambda p: p.name
)
def test_examples_run(page: Path, monkeypatch):
    monkeypatch.chdir(REPO)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for code in python_blocks(page.read_text(encoding="utf-8")):
        exec(compile(code, str(page.relative_to(REPO)), "exec"), namespace)


@pytest.mark.parametrize("page", [REPO / "README.md", *DOCS], ids=lambda p: str(p.relative_to(REPO)))
def test_links_point_at_files(page: Path):
    missing = []
    for target in relative_links(page.read_text(encoding="utf-8"), fragments=True):
        file, _, fragment = target.partition("#")
        path = (page.parent / file).resolve()
        name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)
        if not path.exists():
            if name not in PENDING:
                missing.append(target)
        elif fragment and path.suffix == ".md" and fragment not in anchors(path.read_text(encoding="utf-8")):
            missing.append(target)
    assert not missing, f"{page.relative_to(REPO)} links to files or headings that do not exist: {missing}"


def test_readme_links_every_page():
    linked = {(REPO / t).resolve() for t in relative_links((REPO / "README.md").read_text(encoding="utf-8"))}
    assert not [p.name for p in DOCS if p.resolve() not in linked], "docs pages the README does not link"


def test_link_checker_sees_links():
    text = "[a](docs/x.md) ![fig\nline two](../b.png) [u](https://x.org) `[c](no.md)` [d](y.md#part) [e](#top)\n"
    text += "```\n[f](z.md)\n# not a heading\n```\n## Rate–distortion, `task=evaluate` (f8)\n"
    assert relative_links(text) == ["docs/x.md", "../b.png", "y.md"]
    assert relative_links(text, fragments=True)[-1] == "y.md#part"
    assert anchors(text) == {"ratedistortion-taskevaluate-f8"}
