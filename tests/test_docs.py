"""The documentation's file includes survive formatting and point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
INCLUDE = re.compile(r'^--8<-- "([^"]+)"$')
MANGLED = re.compile(r"^\s*-+\s*8\s*<\s*-+")
"""A snippet marker with anything other than the exact `--8<-- "path"` form."""


def _includes() -> list[tuple[Path, int, str]]:
    found = []
    for page in PAGES:
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if MANGLED.match(line):
                found.append((page, n, line))
    return found


def test_pages_have_includes() -> None:
    """The docs do include files (a scan that finds none would prove nothing)."""
    assert len(_includes()) >= 8


def test_every_include_is_well_formed() -> None:
    """Each include line is exactly `--8<-- "path"`.

    A formatter rewrote them once; mkdocs then printed the marker instead of the file, and
    `mkdocs build --strict` did not notice.
    """
    bad = [
        f"{p.relative_to(ROOT)}:{n}: {line}"
        for p, n, line in _includes()
        if not INCLUDE.match(line)
    ]
    assert bad == []


def test_every_include_exists() -> None:
    """Each included path resolves from the repository root, as mkdocs.yml's base_path says."""
    missing = []
    for page, n, line in _includes():
        match = INCLUDE.match(line)
        if match and not (ROOT / match.group(1)).is_file():
            missing.append(f"{page.relative_to(ROOT)}:{n}: {match.group(1)}")
    assert missing == []
