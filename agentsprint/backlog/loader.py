"""Load every item file of a backlog folder; a broken file never stops the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agentsprint.backlog.cache import ParseCache, stat_key
from agentsprint.backlog.checks import cross_check
from agentsprint.backlog.errors import Problem
from agentsprint.backlog.files import item_files, read_text
from agentsprint.backlog.parse import check_text
from agentsprint.domain import Item


@dataclass
class Backlog:
    """The valid items by id, their files, and every problem found (file and cross-file)."""

    items: dict[str, Item] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    entries: list[tuple[Path, Item]] = field(default_factory=list)
    """Every file that parsed, duplicates included, in file-name order."""


def load_backlog(backlog_dir: Path, cache_dir: Path | None = None) -> Backlog:
    """Parse `backlog_dir/*.md` (reusing the parse cache in `cache_dir` when given) and check them."""
    files = item_files(backlog_dir)
    cache = ParseCache(cache_dir, backlog_dir) if cache_dir is not None else None
    entries: list[tuple[Path, Item]] = []
    problems: list[Problem] = []
    for path in files:
        item, file_problems = _load_one(path, cache)
        problems += file_problems
        if item is not None:
            entries.append((path, item))
    if cache is not None:
        cache.save(files)
    items, paths, cross = cross_check(entries)
    return Backlog(items, paths, sorted(problems + cross, key=lambda p: (str(p.path), p.line)), entries)


def _load_one(path: Path, cache: ParseCache | None) -> tuple[Item | None, list[Problem]]:
    key = stat_key(path)
    cached = cache.get(path, key) if cache is not None else None
    if cached is not None:
        return cached, []
    try:
        text = read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(path, 1, f"cannot read: {exc}")]
    item, problems = check_text(text, path)
    if item is not None and cache is not None:
        cache.put(path, key, item)
    return item, problems
