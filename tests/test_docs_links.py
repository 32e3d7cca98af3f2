"""The README and docs/ pages link only to files and headings that exist, and name only rrn
commands that exist (a restructure cannot leave a dead link or a renamed command behind)."""

import re
from pathlib import Path

import pytest

from rrn.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    out, fence = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"^#{1,6} (.*)", line)):
            out.add(slug(m.group(1)))
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s)://, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_rrn_command_named_exists(page):
    known = {name for name, _ in COMMANDS}
    named = set(re.findall(r"`rrn ([a-z][a-z-]+)", page.read_text()))
    assert named <= known, f"unknown commands: {sorted(named - known)}"


def test_the_slug_rule():
    assert (
        slug("Streaming (`python benchmarks/stream.py`)") == "streaming-python-benchmarksstreampy"
    )
    assert slug("More than one machine") == "more-than-one-machine"
