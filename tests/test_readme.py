"""The README is a student's page: short, with a reading order, and every link on it and in docs/ works."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 220
READING_ORDER_FILES = ("models/config.py", "models/generators.py", "models/discriminator.py", "models/combined.py",
                       "models/cyclegan.py")

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _pages():
    return [README] + sorted((ROOT / "docs").rglob("*.md"))


def relative_links(page):
    """The targets of the markdown links and images of a page, outside code: no web links, no bare #anchors."""
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
    targets = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue   # http(s), mailto, ...; an anchor on the same page
        targets.append(unquote(target.split("#", 1)[0]))
    return targets


def _links_in(text):
    """Every link target of a piece of markdown, outside inline code."""
    return set(LINK.findall(CODE_SPAN.sub("", text)))


def _section(text, title):
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start:end if end != -1 else len(text)]


def test_the_readme_is_at_most_220_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail to a page under docs/"


def test_the_readme_has_a_reading_order_that_links_the_model_files():
    text = README.read_text()
    assert "\n## Reading order\n" in text
    linked = _links_in(_section(text, "\n## Reading order\n"))
    for path in READING_ORDER_FILES:
        assert path in linked, f"the Reading order does not link {path}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file_that_exists(page):
    missing = [target for target in relative_links(page) if not (page.parent / target).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_readme_links_at_least_three_docs_pages():
    pages = {(README.parent / target).resolve() for target in relative_links(README)}
    docs = [p for p in pages if p.suffix == ".md" and p.parent == ROOT / "docs" and p.exists()]
    assert len(docs) >= 3, f"the README links {len(docs)} pages of docs/"
