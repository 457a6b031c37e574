"""YAML definition files (sprints, epics): read, checked key by key, each problem at its file line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agentsprint.backlog import frontmatter
from agentsprint.backlog.errors import BacklogError, Problem
from agentsprint.backlog.files import atomic_write, read_text
from agentsprint.backlog.frontmatter import FrontMatterError, KeyPath
from agentsprint.backlog.parse import Found, validation_found
from agentsprint.text import shorten

Model = TypeVar("Model", bound=BaseModel)
Extra = Callable[[dict[str, Any]], Found]
"""Checks a model cannot make on its own (a name matching the file, known item ids)."""


def backlog_dir_of(root_or_backlog_dir: Path) -> Path:
    """The backlog folder: `root/backlog` for a project root, else the folder itself."""
    inner = Path(root_or_backlog_dir) / "backlog"
    return inner if inner.is_dir() else Path(root_or_backlog_dir)


def definition_files(folder: Path) -> list[Path]:
    """The `*.yml` files of a definitions folder (hidden temp files left out), by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".yml" and not p.name.startswith("."))


def check_file(path: Path, model: type[Model], keys: tuple[str, ...], extra: Extra | None = None,
               defaults: dict[str, Any] | None = None) -> tuple[Model | None, list[Problem]]:
    """The model in the YAML file at `path`, or None and every problem found, each at its line."""
    try:
        text = read_text(path)
        data = frontmatter.load_yaml(text)
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(path, 1, f"cannot read: {exc}")]
    except FrontMatterError as exc:
        return None, [Problem(path, exc.line, str(exc))]
    if not isinstance(data, dict):
        return None, [Problem(path, 1, f"expected a mapping with the keys {', '.join(keys)}")]
    found: Found = [((str(key),), f"unknown key '{shorten(str(key), 80)}' (known keys: {', '.join(keys)})")
                    for key in data if key not in keys]
    fields = {**(defaults or {}), **{str(k): v for k, v in data.items() if k in keys}}
    found += extra(fields) if extra else []
    try:
        value = model.model_validate(fields)
    except ValidationError as exc:
        value, found = None, found + validation_found(exc)
    if not found:
        return value, []
    lines = {key: line - 1 for key, line in frontmatter.key_lines(text).items()}  # no --- line here
    return None, sorted(Problem(path, frontmatter.line_of(lines, key), message) for key, message in found)


SHOWN_PROBLEMS = 5
"""A file loaded for use (not validated) names at most this many problems: errors stay short."""


def load_file(path: Path, model: type[Model], keys: tuple[str, ...], extra: Extra | None = None,
              defaults: dict[str, Any] | None = None) -> Model:
    """`check_file`'s model; BacklogError listing the problems otherwise."""
    value, problems = check_file(path, model, keys, extra, defaults)
    if value is None:
        raise BacklogError("", problems, shown=SHOWN_PROBLEMS)
    return value


def write_file(path: Path, text: str, check: Callable[[Path], list[Problem]]) -> Path:
    """Write `text` atomically; an existing file that does not parse is left alone (BacklogError)."""
    if path.exists():
        problems = check(path)
        if problems:
            raise BacklogError(f"{path}: not rewritten because it does not parse", problems)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)
    return path


def found_at(key: KeyPath, message: str) -> Found:
    """One problem at `key` (for Extra checks)."""
    return [(key, message)]
