"""Epic files: `backlog/epics/<name>.yml` holds an epic's own budget, a circuit breaker over its items.

```yaml
title: Billing
budget:
  tokens: 2000000
  usd: 20
```
"""

from __future__ import annotations

import re
from pathlib import Path

from agentsprint.backlog.definitions import backlog_dir_of, check_file, definition_files, load_file, write_file
from agentsprint.backlog.errors import BacklogError, Problem
from agentsprint.backlog.render import number, scalar
from agentsprint.domain import EPIC_NAME, Epic

KEYS = ("title", "budget")


def epic_path(backlog_dir: Path, name: str) -> Path:
    """`backlog/epics/<name>.yml`; BacklogError for a name that is not plain (it would leave the folder)."""
    if not re.fullmatch(EPIC_NAME, name):
        raise BacklogError(f"epic {name!r}: not a plain name (letters, digits, '_', '.', '-')")
    return backlog_dir / "epics" / f"{name}.yml"


def check_epic_file(path: Path) -> tuple[Epic | None, list[Problem]]:
    """The epic in `path` (named after the file), or None and its problems."""
    return check_file(path, Epic, KEYS, defaults={"name": path.stem})


def find_epic(root_or_backlog_dir: Path, name: str) -> Epic | None:
    """The epic called `name`, or None when it has no file; BacklogError naming file:line if invalid."""
    path = epic_path(backlog_dir_of(root_or_backlog_dir), name)
    return load_file(path, Epic, KEYS, defaults={"name": name}) if path.exists() else None


def list_epics(root_or_backlog_dir: Path) -> list[Epic]:
    """Every valid epic, by name; broken files are left out (`epic_problems` reports them)."""
    folder = backlog_dir_of(root_or_backlog_dir) / "epics"
    return [e for e in (check_epic_file(p)[0] for p in definition_files(folder)) if e is not None]


def epic_problems(backlog_dir: Path) -> list[Problem]:
    """The problems of every epic file."""
    return [p for path in definition_files(backlog_dir / "epics") for p in check_epic_file(path)[1]]


def epic_budget(backlog_dir: Path, name: str) -> tuple[int | None, float | None]:
    """(tokens, usd) limits of an epic; (None, None) when it has no file (or a FIFO, a folder...) or no budget."""
    if not epic_path(backlog_dir, name).is_file():
        return None, None  # never opened: a FIFO would block the reservation (`validate` reports it)
    epic = find_epic(backlog_dir, name)
    return (None, None) if epic is None else (epic.budget.tokens, epic.budget.usd)


def render_epic(epic: Epic) -> str:
    """The file text: title, then the budget's token and USD limits."""
    lines = [f"title: {scalar(epic.title)}"] if epic.title else []
    limits = [f"  tokens: {epic.budget.tokens}"] if epic.budget.tokens is not None else []
    limits += [f"  usd: {number(epic.budget.usd)}"] if epic.budget.usd is not None else []
    lines += ["budget:", *limits] if limits else ["budget: {}"]
    return "\n".join(lines) + "\n"


def write_epic(root_or_backlog_dir: Path, epic: Epic) -> Path:
    """Write the epic's file atomically; an existing file that does not parse is left alone."""
    path = epic_path(backlog_dir_of(root_or_backlog_dir), epic.name)
    return write_file(path, render_epic(epic), lambda p: check_epic_file(p)[1])
