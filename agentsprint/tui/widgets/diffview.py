"""A diff viewer: a git patch split into files, shown unified or side by side, highlighted by Rich Syntax.

The side-by-side rows are aligned with difflib: within each run of removed and added lines, equal
lines sit side by side and replaced lines face each other.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


@dataclass
class FileDiff:
    """One file's part of a patch."""

    path: str
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def split_patch(patch: str) -> list[FileDiff]:
    """The files of a `git diff` patch, in order."""
    files: list[FileDiff] = []
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            files.append(FileDiff(line.split(" b/", 1)[-1]))
        if files:
            files[-1].lines.append(line)
    return files


def side_by_side(diff: FileDiff) -> list[tuple[str, str, str, str]]:
    """(old number, old line, new number, new line) rows of a file's hunks; '' where a side has none."""
    rows: list[tuple[str, str, str, str]] = []
    old_no = new_no = 0
    removed: list[str] = []
    added: list[str] = []
    for line in diff.lines:
        match = HUNK.match(line)
        if match:
            rows += _pair(removed, added, old_no, new_no)
            old_no, new_no = int(match.group(1)), int(match.group(2))
            removed, added = [], []
            rows.append(("", line, "", ""))
        elif line.startswith("-") and not line.startswith("---"):
            removed.append(line[1:])
        elif line.startswith("+") and not line.startswith("+++"):
            added.append(line[1:])
        elif line.startswith(" ") and old_no:
            rows += _pair(removed, added, old_no, new_no)
            old_no, new_no = old_no + len(removed), new_no + len(added)
            removed, added = [], []
            rows.append((str(old_no), line[1:], str(new_no), line[1:]))
            old_no, new_no = old_no + 1, new_no + 1
    return rows + _pair(removed, added, old_no, new_no)


def _pair(removed: list[str], added: list[str], old_no: int, new_no: int) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for tag, a1, a2, b1, b2 in difflib.SequenceMatcher(None, removed, added, autojunk=False).get_opcodes():
        for k in range(max(a2 - a1, b2 - b1)):
            left = a1 + k < a2 if tag != "insert" else False
            right = b1 + k < b2 if tag != "delete" else False
            rows.append((str(old_no + a1 + k) if left else "", removed[a1 + k] if left else "",
                         str(new_no + b1 + k) if right else "", added[b1 + k] if right else ""))
    return rows


class DiffView(Static):
    """One file of a patch, unified or split; the screen picks the file and the layout."""

    split: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.file: FileDiff | None = None

    def show(self, file: FileDiff | None) -> None:
        """Show `file` (None: an empty diff)."""
        self.file = file
        self.update(self._render_file())

    def watch_split(self) -> None:
        self.update(self._render_file())

    def _render_file(self) -> RenderableType:
        if self.file is None:
            return Text("(empty diff)")
        if not self.split:
            return Syntax(self.file.text, "diff", theme="ansi_dark", word_wrap=True, background_color="default")
        return self._split_table(self.file)

    def _split_table(self, file: FileDiff) -> RenderableType:
        lexer = Syntax.guess_lexer(file.path)
        syntax = Syntax("", lexer, theme="ansi_dark", background_color="default")
        table = Table.grid(expand=True, padding=(0, 1))
        for ratio in (0, 1, 0, 1):
            table.add_column(ratio=ratio or None, no_wrap=ratio == 0, overflow="fold")
        for old_no, old, new_no, new in side_by_side(file):
            if not old_no and not new_no and old.startswith("@@"):
                table.add_row("", Text(old, style="cyan"), "", "")
                continue
            table.add_row(Text(old_no, style="dim"), _side(syntax, old, old_no and old != new, "red"),
                          Text(new_no, style="dim"), _side(syntax, new, new_no and old != new, "green"))
        return Group(Text(file.path, style="bold"), table)


def _side(syntax: Syntax, line: str, changed: object, colour: str) -> Text:
    text = syntax.highlight(line)
    text.rstrip()
    if changed:
        text.stylize(f"bold {colour}")
    return text
