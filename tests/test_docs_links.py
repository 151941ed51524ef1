"""The README and docs/ hold together: every relative link and image points at something in the
repository, every #anchor at a heading of its page (GitHub's slug rule), and the README's test command
is exactly what .ci/run runs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
README_MAX_LINES = 150

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the text may hold one level of brackets (an image in a link).
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_TARGET = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"""<[a-z]+\b[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)\s*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
LINE_ANCHOR = re.compile(r"^L\d+(?:-L\d+)?$")


@dataclass(frozen=True)
class BrokenLink:
    page: Path
    line: int
    target: str
    reason: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.target}: {self.reason}"


def prose_lines(text: str) -> list[str]:
    """The page's lines with fenced code blanked and inline code spans turned to spaces (numbers kept)."""
    lines: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            lines.append("")
        elif opening:
            fence = opening.group(1)
            lines.append("")
        else:
            lines.append(INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line))
    return lines


def heading_texts(text: str) -> list[str]:
    """The text of every heading, ATX (# ...) and setext (underlined), outside code blocks."""
    headings: list[str] = []
    fence: str | None = None
    previous = ""
    for line in text.splitlines():
        opening = FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            previous = ""
            continue
        if opening:
            fence = opening.group(1)
            previous = ""
            continue
        atx = ATX_HEADING.match(line)
        if atx:
            headings.append(atx.group(1) or "")
            previous = ""
            continue
        if (
            SETEXT_UNDERLINE.match(line)
            and previous.strip()
            and not previous.lstrip().startswith(("|", "-", ">"))
        ):
            headings.append(previous.strip())
            previous = ""
            continue
        previous = line
    return headings


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: its visible text, lowercased, punctuation but - and _ dropped,
    spaces turned to -."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", heading)  # images have no text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page offers: its headings' slugs (a repeated one gets -1, -2, ...) and HTML ids."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in heading_texts(text):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    for line in prose_lines(text):
        found.update(match.group(1) for match in HTML_ANCHOR.finditer(line))
    return found


def link_targets(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    targets: list[tuple[int, str]] = []
    for number, line in enumerate(prose_lines(text), start=1):
        for pattern in (INLINE_LINK, REFERENCE_DEFINITION, HTML_TARGET):
            for match in pattern.finditer(line):
                targets.append((number, match.group(1).strip("<>")))
    return targets


def broken_links(pages: Iterable[Path], root: Path) -> list[BrokenLink]:
    """Every relative link or image that points outside root, at nothing, or at a missing anchor."""
    root = root.resolve()
    broken: list[BrokenLink] = []
    anchor_cache: dict[Path, set[str]] = {}

    def page_anchors(path: Path) -> set[str]:
        if path not in anchor_cache:
            anchor_cache[path] = anchors(path.read_text(encoding="utf-8"))
        return anchor_cache[path]

    for page in pages:
        page = page.resolve()
        for line, target in link_targets(page.read_text(encoding="utf-8")):
            if SCHEME.match(target) or target.startswith("//"):
                continue  # another site: not ours to check offline
            where, _, anchor = target.partition("#")
            where = unquote(where.partition("?")[0])
            if not where:
                path = page
            elif where.startswith("/"):
                path = (root / where.lstrip("/")).resolve()
            else:
                path = (page.parent / where).resolve()
            if not path.is_relative_to(root):
                broken.append(BrokenLink(page, line, target, "outside the repository"))
            elif not path.exists():
                broken.append(BrokenLink(page, line, target, "no such file"))
            elif anchor:
                if path.suffix.lower() == ".md":
                    if unquote(anchor) not in page_anchors(path):
                        broken.append(BrokenLink(page, line, target, f"no heading #{anchor} in {path.name}"))
                elif not LINE_ANCHOR.match(anchor):
                    broken.append(
                        BrokenLink(page, line, target, f"#{anchor} is no heading nor line of a file")
                    )
    return broken


def fenced_block_after(text: str, heading: str) -> list[str]:
    """The lines of the first fenced code block after the heading of that text."""
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if ATX_HEADING.match(line) and line.lstrip("# ").strip() == heading
    )
    opening = next(i for i in range(start + 1, len(lines)) if FENCE.match(lines[i]))
    closing = next(i for i in range(opening + 1, len(lines)) if FENCE.match(lines[i]))
    return lines[opening + 1 : closing]


# --- the repository's own pages ---------------------------------------------------------------------


def test_every_link_in_the_readme_and_docs_resolves() -> None:
    broken = broken_links(PAGES, ROOT)
    assert not broken, "broken links:\n" + "\n".join(map(str, broken))


def test_the_pages_link_something() -> None:
    """The check above checks something: the README links its screenshot and every docs page."""
    readme = {target for _, target in link_targets((ROOT / "README.md").read_text(encoding="utf-8"))}
    assert "docs/screenshots/field-window.png" in readme
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in readme, f"the README does not link {page.name}"


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    (command,) = fenced_block_after((ROOT / "README.md").read_text(encoding="utf-8"), "Run the tests")
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    # Setup, not tests: comments, shell options, the folder, the environment, system packages (apt-get).
    setup = ("#", "set ", "cd ", "export ", "command -v apt-get ")
    ci_commands = [line for line in ci_lines if line.strip() and not line.startswith(setup)]
    assert ci_commands == [command]
    (developers,) = fenced_block_after(
        (ROOT / "docs" / "developers.md").read_text(encoding="utf-8"), "The checks"
    )
    assert developers == command


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


# --- the checker itself, on scratch pages --------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Images that travel: `fewstep info`", "images-that-travel-fewstep-info"),
        ("Cards from 8 GB up: where each part lives", "cards-from-8-gb-up-where-each-part-lives"),
        ("The record: `report.json` and `reproduce.py`", "the-record-reportjson-and-reproducepy"),
        ("bench_gpu --tiny", "bench_gpu---tiny"),
        ("SDXL-Lightning (`ByteDance/SDXL-Lightning`)", "sdxl-lightning-bytedancesdxl-lightning"),
        ("See [the modes](modes.md) **now**", "see-the-modes-now"),
        ("Größe über alles", "größe-über-alles"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_a_repeated_heading_gets_a_numbered_anchor() -> None:
    text = "# Notes\n\n## Setup\n\n## Setup\n\n## Setup\n\n```\n# not a heading\n```\n"
    assert anchors(text) == {"notes", "setup", "setup-1", "setup-2"}


def test_broken_links_are_found_and_good_ones_pass(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text(
        "# Other page\n\n## A section: `with code`\n", encoding="utf-8"
    )
    (tmp_path / "docs" / "shot.png").write_bytes(b"\x89PNG")
    (tmp_path / "tool.py").write_text("print()\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "\n".join(
            [
                "# Scratch",  # 1
                "",  # 2
                "## Run it",  # 3
                "[ok file](docs/other.md) [ok anchor](docs/other.md#a-section-with-code) [ok here](#run-it)",  # 4
                "![ok image](docs/shot.png) [ok code line](tool.py#L1) [ok site](https://example.com/x.md)",  # 5
                "[missing file](docs/nothing.md) ![missing image](docs/missing.png)",  # 6
                "[bad anchor](docs/other.md#no-such-section) [bad here](#run)",  # 7
                "[escape](../outside.md) [anchor in code](tool.py#main)",  # 8
                "`[in inline code](nowhere.md)`",  # 9
                "```",  # 10
                "[in a code block](nowhere.md)",  # 11
                "```",  # 12
                "[ref]: docs/gone.md",  # 13
                '<img src="docs/absent.png" alt="html">',  # 14
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    broken = {(link.line, link.target) for link in broken_links([page], tmp_path)}
    assert broken == {
        (6, "docs/nothing.md"),
        (6, "docs/missing.png"),
        (7, "docs/other.md#no-such-section"),
        (7, "#run"),
        (8, "../outside.md"),
        (8, "tool.py#main"),
        (13, "docs/gone.md"),
        (14, "docs/absent.png"),
    }


def test_a_fixed_page_passes(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[here](#title) [itself](page.md)\n", encoding="utf-8")
    assert broken_links([page], tmp_path) == []
    page.write_text("# Title\n\n[here](#titel)\n", encoding="utf-8")
    (only,) = broken_links([page], tmp_path)
    assert (only.line, only.target, only.reason) == (3, "#titel", "no heading #titel in page.md")
