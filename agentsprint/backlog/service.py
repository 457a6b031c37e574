"""Creating items: defaults from a template, explicit fields on top, validation, a fresh id, a file."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentsprint.backlog import frontmatter
from agentsprint.backlog.errors import BacklogError, Problem
from agentsprint.backlog.files import atomic_write, file_name, read_text
from agentsprint.backlog.frontmatter import FrontMatterError
from agentsprint.backlog.ids import next_id
from agentsprint.backlog.loader import Backlog, load_backlog
from agentsprint.backlog.parse import check_data
from agentsprint.backlog.render import render_item
from agentsprint.domain import Item

TEMPLATE_KEYS = ("type", "priority", "value", "epic", "labels", "depends_on", "scope", "budget", "dod")


def build_item(data: dict[str, Any], body: str = "") -> Item:
    """An Item from front-matter style data (DoD entries as written in files); BacklogError if invalid."""
    item, found = check_data(data, body, None)
    if item is None:
        raise BacklogError("invalid item: " + "; ".join(message for _, message in found))
    return item


def merge_fields(defaults: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """Template defaults overridden by explicit values (None means not given); budgets merge by key."""
    given = {key: value for key, value in explicit.items() if value is not None}
    merged = {**defaults, **given}
    budget = {**(defaults.get("budget") or {}), **{k: v for k, v in (given.get("budget") or {}).items()
                                                    if v is not None}}
    merged["budget"] = budget
    return merged


def create_item(backlog_dir: Path, data: dict[str, Any], body: str = "", prefix: str = "AS",
                cache_dir: Path | None = None) -> tuple[Item, Path]:
    """Validate `data`, give it the next free id and write its file; nothing is written on error."""
    build_item({**data, "id": f"{prefix}-0"}, body)
    backlog_dir.mkdir(parents=True, exist_ok=True)
    with _locked(backlog_dir):
        backlog = load_backlog(backlog_dir, cache_dir)
        missing = [dep for dep in data.get("depends_on") or [] if dep not in backlog.items]
        if missing:
            raise BacklogError(f"unknown dependency {', '.join(missing)}: no valid item has that id")
        item = build_item({**data, "id": next_id(backlog_dir, prefix)}, body)
        path = backlog_dir / file_name(item)
        atomic_write(path, render_item(item))
    return item, path


def create_new_items(backlog_dir: Path, drafts: list[tuple[dict[str, Any], str]], prefix: str = "AS",
                     cache_dir: Path | None = None) -> tuple[list[tuple[Item, Path]], dict[str, str]]:
    """Write each draft whose `source` no item has yet, under fresh ids; returns (created, {source: known id}).

    Drafts are front-matter data with a `source` and a body, validated before (build_item).
    """
    backlog_dir.mkdir(parents=True, exist_ok=True)
    with _locked(backlog_dir):
        backlog = load_backlog(backlog_dir, cache_dir)
        known = {item.source: item.id for _, item in backlog.entries if item.source}
        number = int(next_id(backlog_dir, prefix).rsplit("-", 1)[1])
        created: list[tuple[Item, Path]] = []
        for data, body in drafts:
            if data["source"] in known:
                continue
            item = build_item({**data, "id": f"{prefix}-{number + len(created)}"}, body)
            path = backlog_dir / file_name(item)
            atomic_write(path, render_item(item))
            created.append((item, path))
    return created, {source: item_id for source, item_id in known.items()
                     if source in {data["source"] for data, _ in drafts}}


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder itself, so two `add`s in one work tree never share an id."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def template_path(folders: list[Path], name: str) -> Path:
    """The item template called `name` from the first folder holding it; BacklogError otherwise."""
    for folder in folders:
        if (folder / f"{name}.md").is_file():
            return folder / f"{name}.md"
    known = sorted({path.stem for folder in folders for path in folder.glob("*.md")})
    raise BacklogError(f"unknown template {name!r} (known: {', '.join(known) or 'none'})")


def load_template(path: Path) -> tuple[dict[str, Any], str]:
    """A template's default fields and body skeleton, checked like an item."""
    try:
        parts = frontmatter.split(read_text(path))
        data = frontmatter.load(parts.front) or {}
    except FrontMatterError as exc:
        raise BacklogError(f"{path}:{exc.line}: {exc}") from exc
    if not isinstance(data, dict) or any(key not in TEMPLATE_KEYS for key in data):
        raise BacklogError(f"{path}: a template may only set {', '.join(TEMPLATE_KEYS)}")
    build_item({**data, "id": "AS-0", "title": "template"}, parts.body)
    return data, parts.body


def draft_problems(draft: str, path: Path, backlog: Backlog) -> list[Problem]:
    """Problems of an edited item file's text, plus cross-file problems the edit would introduce."""
    from agentsprint.backlog.checks import LineFinder, cross_check
    from agentsprint.backlog.parse import check_text

    item, problems = check_text(draft, path)
    if item is None:
        return problems
    before = {(p.path, p.message) for p in backlog.problems}
    entries = sorted([*(e for e in backlog.entries if e[0] != path), (path, item)], key=lambda e: e[0].name)
    _, _, after = cross_check(entries, LineFinder({path: draft}))
    return [p for p in after if (p.path, p.message) not in before]
