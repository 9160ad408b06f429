"""The fenced code blocks of README.md, CONTRIBUTING.md and docs/: which run, which do not.

Every block names its language. ``python`` (or ``py``) blocks run, a page's blocks in
order in one namespace, like one session (tests/test_docs.py); ``pycon`` blocks run as
doctests in that namespace. Shell blocks (``bash``, ``sh``, ``console``) are commands for
the reader and are not run; ``text`` (and the data formats below) are output, formulas
and diagrams. A python block that must not run (minutes of training, MPI ranks, the full
data set) says so on the line before its fence: ``<!-- norun: <reason> -->``; one that needs
an optional package says which, ``<!-- requires: torch -->``, and runs where it is installed
(CI installs them all).

``python tests/doc_blocks.py`` lists every block that is not run, and why (.ci/run prints
the list).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = {"python": "python", "py": "python", "pycon": "pycon"}
SHELL = {"bash", "sh", "shell", "console"}
NOT_CODE = {"text", "toml", "yaml", "ini", "json", "diff", "csv", "cython", "c"}
# an opening fence; its info string holds no backquote (CommonMark), so ```` ```x ```` in a
# sentence is not one
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^\s`]*)[^`]*$")
# the marker on the line before a fence: <!-- norun: reason --> or <!-- requires: torch -->
_MARKER = re.compile(r"^\s*<!--\s*(norun|requires):\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, from 1
    language: str
    code: str
    norun: str | None  # the reason given by a norun marker
    requires: tuple[str, ...] = ()  # modules a requires marker names

    @property
    def missing(self) -> list[str]:
        """The modules this block requires that are not installed."""
        return [name for name in self.requires if importlib.util.find_spec(name) is None]

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        """'python', 'pycon', 'shell', 'not code', 'norun' or 'unknown'."""
        if self.norun is not None:
            return "norun"
        if self.language in RUN:
            return RUN[self.language]
        if self.language in SHELL:
            return "shell"
        if self.language in NOT_CODE:
            return "not code"
        return "unknown"


def pages() -> list[Path]:
    """README.md, CONTRIBUTING.md and every page under docs/."""
    found = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [page for page in found if page.exists()]


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of one Markdown page, in order."""
    lines = page.read_text(encoding="utf-8").split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, language = opening.groups()
        start = i
        body = []
        i += 1
        while i < len(lines) and not re.match(rf"^\s*{re.escape(fence)}\s*$", lines[i]):
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            i += 1
        i += 1  # the closing fence
        marker = _MARKER.match(lines[start - 1]) if start else None
        kind, said = marker.groups() if marker else (None, "")
        found.append(
            Block(
                page,
                start + 1,
                language.lower(),
                "\n".join(body) + "\n",
                said if kind == "norun" else None,
                tuple(said.replace(",", " ").split()) if kind == "requires" else (),
            )
        )
    return found


def excluded() -> list[Block]:
    """Every block that is not run: shell commands and python marked norun."""
    return [b for page in pages() for b in blocks(page) if b.kind in ("shell", "norun")]


def main() -> int:
    listed = excluded()
    print(f"code blocks of README.md, CONTRIBUTING.md and docs/ that are not run ({len(listed)}):")
    for block in listed:
        why = "a shell command" if block.kind == "shell" else f"marked norun: {block.norun}"
        first = block.code.strip().split("\n")[0][:70]
        print(f"  {block.where:<40} {why}  [{first}]")
    optional = [b for page in pages() for b in blocks(page) if b.requires]
    print(f"blocks that run only where an optional package is installed ({len(optional)}):")
    for block in optional:
        state = f"NOT RUN HERE: {', '.join(block.missing)} missing" if block.missing else "runs"
        print(f"  {block.where:<40} requires {', '.join(block.requires)}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
