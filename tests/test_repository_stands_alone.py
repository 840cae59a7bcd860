"""The repository stands alone: what its files point to is inside it.

Comments and docs cite ``docs/PROTOCOL.md`` for the protocols the code follows, never a
document kept elsewhere; every relative link, and every reference to a section of a
Markdown file, names a file of the repository and a heading that file has.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import BASE_DIR

# Written in pieces, so this file does not match itself.
OUTSIDE_REFERENCES = [
    re.compile(r"\bSPEC" + r"\s*§"),
    re.compile(r"\bSPEC" + r"\.md\b"),
    re.compile(r"\.\./" + r"shared\b"),
    re.compile("/work" + r"/shared\b"),
]
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
SECTION_REFERENCE = re.compile(r"([\w./-]+\.md)#([\w-]+)")


def tracked_files() -> list[Path]:
    """Files git tracks, and new ones it would add (a check before the first commit)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=BASE_DIR,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = [BASE_DIR / name for name in listed.decode().split("\0") if name]
    return [path for path in paths if path.is_file()]


def text_of(path: Path) -> str | None:
    data = path.read_bytes()
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def slug(heading: str) -> str:
    """A Markdown heading's anchor, as GitHub makes it."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {
        slug(line.lstrip("#"))
        for line in path.read_text().splitlines()
        if re.match(r"#{1,6} ", line)
    }


def resolve(source: Path, target: str) -> Path | None:
    """``target`` as a path of the repository, relative to ``source`` or to the root."""
    for base in (source.parent, BASE_DIR):
        candidate = (base / target).resolve()
        if candidate.is_relative_to(BASE_DIR.resolve()) and candidate.exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def texts() -> dict[Path, str]:
    files = {path: text_of(path) for path in tracked_files()}
    return {path: text for path, text in files.items() if text is not None}


def test_no_file_points_outside_the_repository(texts):
    found = [
        f"{path.relative_to(BASE_DIR)}:{text.count(chr(10), 0, match.start()) + 1}: "
        f"{match.group(0)}"
        for path, text in texts.items()
        for pattern in OUTSIDE_REFERENCES
        for match in pattern.finditer(text)
    ]
    assert not found, found


def test_relative_markdown_links_name_files_of_the_repository(texts):
    broken = []
    for path, text in texts.items():
        if path.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(text):
            file_part = target.split("#", 1)[0]
            if re.match(r"[a-z]+:", target) or not file_part:
                continue  # a URL, or a heading of this file
            if resolve(path, file_part) is None:
                broken.append(f"{path.relative_to(BASE_DIR)}: {target}")
    assert not broken, broken


def test_section_references_name_a_heading_of_their_file(texts):
    broken = []
    for path, text in texts.items():
        for file_part, anchor in SECTION_REFERENCE.findall(text):
            target = resolve(path, file_part)
            if target is None or anchor not in anchors(target):
                broken.append(f"{path.relative_to(BASE_DIR)}: {file_part}#{anchor}")
    assert not broken, broken


def test_the_protocol_page_covers_discovery_the_web_client_and_the_status_page():
    sections = anchors(BASE_DIR / "docs" / "PROTOCOL.md")
    assert {"service-discovery", "the-web-clients-calls", "the-status-page"} <= sections
