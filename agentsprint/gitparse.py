"""Parsers for git's machine-readable output (`-z`, `--porcelain`); pure functions, no git calls."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


def split_z(text: str) -> list[str]:
    """The non-empty fields of NUL-separated output."""
    return [part for part in text.split("\0") if part]


def name_status_files(output: str) -> list[str]:
    """Paths in `git diff --name-status -z` output; a rename or copy gives both names."""
    fields = split_z(output)
    files: set[str] = set()
    index = 0
    while index < len(fields):
        count = 2 if fields[index][:1] in ("R", "C") else 1
        files.update(fields[index + 1 : index + 1 + count])
        index += 1 + count
    return sorted(files)


def numstat_totals(output: str) -> tuple[int, int, int]:
    """(files, added, removed) from `git diff --numstat -z`; binary files count no lines."""
    fields = output.split("\0")
    files = added = removed = 0
    index = 0
    while index < len(fields) and fields[index]:
        plus, minus, name = fields[index].split("\t", 2)
        files += 1
        added += int(plus) if plus.isdigit() else 0
        removed += int(minus) if minus.isdigit() else 0
        index += 1 if name else 3  # a rename is "a\tr\t" followed by the old and new names
    return files, added, removed


def porcelain_paths(output: str) -> set[str]:
    """Paths modified, staged or untracked in `git status --porcelain -z` (both names of a rename)."""
    fields = split_z(output)
    paths: set[str] = set()
    index = 0
    while index < len(fields):
        entry = fields[index]
        paths.add(entry[3:])
        if "R" in entry[:2] or "C" in entry[:2]:
            index += 1
            paths.add(fields[index])
        index += 1
    return paths


def worktree_branches(output: str) -> dict[Path, str | None]:
    """`git worktree list --porcelain` as resolved path -> branch ref (None when detached)."""
    listing: dict[Path, str | None] = {}
    current: Path | None = None
    for line in output.splitlines():
        if line.startswith("worktree "):
            current = Path(line[len("worktree ") :]).resolve()
            listing[current] = None
        elif line.startswith("branch ") and current is not None:
            listing[current] = line[len("branch ") :]
    return listing


def version_at_least(version_output: str, wanted: tuple[int, int]) -> bool:
    """True when `git version` output names at least `wanted` (major, minor)."""
    found = re.search(r"(\d+)\.(\d+)", version_output)
    return found is not None and (int(found[1]), int(found[2])) >= wanted


@dataclass(frozen=True)
class ChangedContent:
    """A file an item added or changed: its full new content (None when over the cap) and the old one."""

    path: str
    size: int
    content: bytes | None
    before: bytes | None
    """b"" for an added file; None when the old blob was over the cap."""


def raw_changes(raw: bytes) -> list[tuple[str, str, str]]:
    """(path, old sha, new sha) from `git diff-tree -r -z --no-abbrev` output; gitlinks are skipped."""
    fields = raw.split(b"\0")
    changes = []
    for index in range(0, len(fields) - 1, 2):
        meta = fields[index].decode("ascii", "replace").lstrip(":").split()
        if len(meta) < 5 or meta[1] == "160000":
            continue
        old, new = (sha if sha.strip("0") else "" for sha in meta[2:4])  # all zeros: no such side
        changes.append((fields[index + 1].decode("utf-8", "replace"), old, new))
    return changes
