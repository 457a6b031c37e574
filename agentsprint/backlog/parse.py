"""One item file -> Item, or the problems that stop it, each at the line of the offending key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentsprint.backlog import frontmatter
from agentsprint.backlog.errors import MAX_QUOTED, BacklogError, Problem, shown
from agentsprint.backlog.frontmatter import FrontMatterError, KeyPath
from agentsprint.domain import FILE_STATUSES, Gate, Item, parse_gate
from agentsprint.text import shorten

KEYS = ("id", "title", "type", "priority", "value", "status", "epic", "source", "labels", "depends_on", "scope",
        "budget", "dod")
BUDGET_KEYS = ("tokens", "usd", "time", "rounds")

_ID = re.compile(r"[A-Z][A-Z0-9]*-\d+")
Found = list[tuple[KeyPath, str]]  # problems before their lines are looked up


def check_text(text: str, path: Path | None) -> tuple[Item | None, list[Problem]]:
    """The item in `text`, or None and every problem found in it."""
    shown = path or Path("<text>")
    try:
        parts = frontmatter.split(text)
        data = frontmatter.load(parts.front)
    except FrontMatterError as exc:
        return None, [Problem(shown, exc.line, str(exc))]
    if not isinstance(data, dict):
        return None, [Problem(shown, frontmatter.FIRST_LINE, "front matter must be a mapping of keys")]
    item, found = check_data(data, parts.body, path)
    problems = [Problem(shown, line, f"duplicate key '{key}'")
                for key, line in frontmatter.duplicate_top_keys(parts.front)]
    if found:
        lines = frontmatter.key_lines(parts.front)
        problems += [Problem(shown, frontmatter.line_of(lines, key), message) for key, message in found]
    return (item if not problems else None), sorted(problems, key=lambda p: p.line)


def parse_item_text(text: str, path: Path | str | None = None) -> Item:
    """The Item in an item file's text; BacklogError listing every problem otherwise."""
    item, problems = check_text(text, Path(path) if path is not None else None)
    if item is None:
        raise BacklogError("", problems)
    return item


def check_data(data: dict[Any, Any], body: str, path: Path | None) -> tuple[Item | None, Found]:
    """Validate front-matter data: unknown keys, DoD entries, types, ranges, file status and name."""
    found: Found = [((str(key),), f"unknown key '{shorten(str(key), 80)}' (known keys: {', '.join(KEYS)})")
                    for key in data if key not in KEYS]
    fields = {key: value for key, value in data.items() if key in KEYS}
    gates, gate_found = _gates(fields.get("dod", []))
    found += gate_found
    fields["dod"] = gates
    fields["budget"] = _budget_fields(fields.get("budget"))
    if "status" in fields and not (isinstance(fields["status"], str) and fields["status"] in FILE_STATUSES):
        found.append((("status",), f"status in a file is todo, done or dropped, not {shown(fields['status'])}"))
        fields.pop("status")
    item_id = fields.get("id")
    if path is not None and isinstance(item_id, str) and not _name_matches(path, item_id):
        found.append((("id",), f"id {item_id} does not match the file name {path.name} "
                               f"(expected {item_id}-<slug>.md)"))
    try:
        item = Item.model_validate({**fields, "body": body})
    except ValidationError as exc:
        return None, found + validation_found(exc)
    return (None if found else item), found


def _gates(entries: Any) -> tuple[list[Gate], Found]:
    if entries is None:
        return [], []
    if not isinstance(entries, list):
        return [], [(("dod",), "dod: must be a list of DoD entries")]
    gates: list[Gate] = []
    found: Found = []
    for index, entry in enumerate(entries):
        try:
            gates.append(parse_gate(entry))
        except ValueError as exc:
            found.append((("dod", index), f"dod: {shorten(str(exc), MAX_QUOTED)}"))
    return gates, found


def _budget_fields(budget: Any) -> Any:
    """A bare number of seconds is a valid time budget; keep it as text so the file round-trips."""
    if isinstance(budget, dict) and isinstance(budget.get("time"), int | float) and not isinstance(
        budget.get("time"), bool
    ):
        return {**budget, "time": str(budget["time"])}
    return {} if budget is None else budget


def _name_matches(path: Path, item_id: str) -> bool:
    """Whether the file is `<ID>.md` or `<ID>-<slug>.md` (a malformed id is reported on its own)."""
    if not _ID.fullmatch(item_id):
        return True
    return path.stem == item_id or path.stem.startswith(item_id + "-")


def validation_found(exc: ValidationError) -> Found:
    """Pydantic errors as (key path, message), in words a user editing the file understands."""
    found: Found = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if loc[:1] in (("dod",), ("body",)):
            continue  # DoD entries were checked one by one above; the body is never wrong
        found.append((loc, _message(loc, err)))
    return found


def _message(loc: KeyPath, err: Any) -> str:
    key = ".".join(str(part) for part in loc)
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        known = f" (known keys: {', '.join(BUDGET_KEYS)})" if loc[0] == "budget" else ""
        return f"unknown key '{key}'{known}"
    if kind == "missing":
        return f"missing key '{key}'"
    if kind in ("greater_than_equal", "greater_than"):
        return f"{key}: must not be negative (got {shown(value)})"
    if kind == "string_pattern_mismatch" and loc == ("id",):
        return f"id: {shown(value)} is not an item id like AS-12"
    if kind == "value_error":
        return f"{key}: {shorten(str(err['msg']).removeprefix('Value error, '), MAX_QUOTED)}"
    return f"{key}: {shorten(str(err['msg']), MAX_QUOTED)} (got {shown(value)})"
