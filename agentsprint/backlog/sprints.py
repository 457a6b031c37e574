"""Sprint files: `backlog/sprints/<name>.yml` is a sprint's definition (the database keeps its history).

```yaml
name: S14
goal: Pagination and billing fixes
start: 2026-12-01
end: 2026-12-12
state: planned              # planned | active | closed
capacity: {tokens: 2000000, usd: 40, review_hours: 6}
items: [AS-12, AS-14, AS-15]
```
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from agentsprint.backlog.definitions import backlog_dir_of, check_file, definition_files, load_file, write_file
from agentsprint.backlog.errors import BacklogError, Problem
from agentsprint.backlog.parse import Found
from agentsprint.backlog.render import flow_list, number, scalar
from agentsprint.domain import SPRINT_NAME, Capacity, Sprint, SprintState

KEYS = ("name", "goal", "start", "end", "state", "capacity", "items")


def sprint_path(backlog_dir: Path, name: str) -> Path:
    """`backlog/sprints/<name>.yml`; BacklogError for a name that is not plain (it would leave the folder)."""
    if not re.fullmatch(SPRINT_NAME, name):
        raise BacklogError(f"sprint {name!r}: not a plain name (letters, digits, '_', '.', '-')")
    return backlog_dir / "sprints" / f"{name}.yml"


def check_sprint_file(path: Path, known_ids: Collection[str] | None = None) -> tuple[Sprint | None, list[Problem]]:
    """The sprint in `path`, or None and its problems (unknown item ids too when `known_ids` is given)."""
    return check_file(path, Sprint, KEYS, lambda data: _extra(path, data, known_ids), {"name": path.stem})


def _extra(path: Path, data: dict[str, Any], known_ids: Collection[str] | None) -> Found:
    found: Found = []
    if data.get("name") != path.stem:
        found.append((("name",), f"name {data.get('name')!r} does not match the file name {path.name}"))
    items = data.get("items")
    if not isinstance(items, list):
        return found
    seen: set[object] = set()
    for index, item_id in enumerate(items):
        if item_id in seen:
            found.append((("items", index), f"item {item_id} is listed twice"))
        elif known_ids is not None and isinstance(item_id, str) and item_id not in known_ids:
            found.append((("items", index), f"unknown item {item_id}: no valid backlog item has that id"))
        seen.add(item_id)
    return found


def find_sprint(root_or_backlog_dir: Path, name: str, known_ids: Collection[str] | None = None) -> Sprint | None:
    """The sprint called `name`, or None when it has no file; BacklogError naming file:line if invalid."""
    path = sprint_path(backlog_dir_of(root_or_backlog_dir), name)
    if not path.exists():
        return None
    return load_file(path, Sprint, KEYS, lambda data: _extra(path, data, known_ids), {"name": name})


def load_sprint(root_or_backlog_dir: Path, name: str, known_ids: Collection[str] | None = None) -> Sprint:
    """The sprint called `name`; BacklogError when it has no file or the file is invalid."""
    sprint = find_sprint(root_or_backlog_dir, name, known_ids)
    if sprint is None:
        path = sprint_path(backlog_dir_of(root_or_backlog_dir), name)
        raise BacklogError(f"no sprint named {name!r}: no file {path} "
                           f"(create it with: agentsprint sprint new {name} --tokens N --usd X)")
    return sprint


def list_sprints(root_or_backlog_dir: Path) -> list[Sprint]:
    """Every valid sprint, by name; broken files are left out (`sprint_problems` reports them)."""
    folder = backlog_dir_of(root_or_backlog_dir) / "sprints"
    return [s for s in (check_sprint_file(p)[0] for p in definition_files(folder)) if s is not None]


def sprint_problems(backlog_dir: Path, known_ids: Collection[str]) -> list[Problem]:
    """The problems of every sprint file, unknown item ids included."""
    return [p for path in definition_files(backlog_dir / "sprints") for p in check_sprint_file(path, known_ids)[1]]


def sprints_holding(root_or_backlog_dir: Path, item_id: str) -> list[Sprint]:
    """The sprints not closed whose file lists `item_id`."""
    return [s for s in list_sprints(root_or_backlog_dir) if item_id in s.items and s.state is not SprintState.CLOSED]


def render_sprint(sprint: Sprint) -> str:
    """The file text, keys in DESIGN's order; dates and goal left out when empty."""
    lines = [f"name: {scalar(sprint.name)}"]
    if sprint.goal:
        lines.append(f"goal: {scalar(sprint.goal)}")
    lines += [f"{key}: {value.isoformat()}" for key, value in (("start", sprint.start), ("end", sprint.end)) if value]
    lines += [f"state: {sprint.state.value}", f"capacity: {_capacity(sprint.capacity)}",
              f"items: {_ids(sprint.items)}"]
    return "\n".join(lines) + "\n"


def _capacity(capacity: Capacity) -> str:
    parts = [f"tokens: {capacity.tokens}" if capacity.tokens is not None else "",
             f"usd: {number(capacity.usd)}" if capacity.usd is not None else "",
             f"review_hours: {_hours(capacity.review_hours)}" if capacity.review_hours is not None else ""]
    return "{" + ", ".join(p for p in parts if p) + "}"


_PLAIN_ID = re.compile(r"[A-Z][A-Z0-9]*-\d+")


def _ids(ids: list[str]) -> str:
    """A flow list of item ids; ids need no quoting, so PyYAML's emitter (0.7 s for 7,000) is skipped."""
    if all(_PLAIN_ID.fullmatch(i) for i in ids):
        return "[" + ", ".join(ids) + "]"
    return flow_list(ids)


def _hours(value: float) -> str:
    """6.0 -> 6, 1.5 -> 1.5 (hours read better without cents)."""
    return str(int(value)) if float(value).is_integer() else number(value)


def write_sprint(root_or_backlog_dir: Path, sprint: Sprint) -> Path:
    """Write the sprint's file atomically; an existing file that does not parse is left alone."""
    path = sprint_path(backlog_dir_of(root_or_backlog_dir), sprint.name)
    return write_file(path, render_sprint(sprint), lambda p: check_sprint_file(p)[1])
