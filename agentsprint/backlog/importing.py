"""Issue-tracker exports -> item drafts: the JSON of `gh issue list --json ...` and a spreadsheet's CSV.

Pure mapping: nothing here reads or writes files. Each draft is validated like an item file, so a bad
issue or row is reported with where it is and the others still become items.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from agentsprint.backlog.errors import MAX_QUOTED, BacklogError, shown
from agentsprint.backlog.service import build_item, merge_fields
from agentsprint.domain import ItemType, Priority
from agentsprint.text import shorten

CSV_COLUMNS = ("title", "type", "priority", "value", "body", "tokens", "usd", "source")
_BUDGET_COLUMNS = ("tokens", "usd")


class ImportFileError(BacklogError):
    """The export as a whole cannot be read (not JSON, no header row): nothing is imported."""


@dataclass(frozen=True)
class Draft:
    """One item to create: front-matter data (with its `source`), its body, and where it came from."""

    where: str
    data: dict[str, Any]
    body: str

    @property
    def source(self) -> str:
        return str(self.data["source"])


@dataclass
class Drafts:
    """The drafts of one export, and `(where, message)` for each issue or row that cannot be one."""

    drafts: list[Draft] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, where: str, make: Any) -> None:
        """Add the draft `make()` returns, or record why it could not be made."""
        try:
            draft = make()
        except (BacklogError, ValueError) as exc:
            self.problems.append((where, shorten(str(exc).removeprefix("invalid item: "), MAX_QUOTED)))
            return
        twin = next((d.where for d in self.drafts if d.source == draft.source), None)
        if twin is not None:
            self.problems.append((where, f"same source as {twin} ({shorten(draft.source, MAX_QUOTED)}): skipped"))
        else:
            self.drafts.append(draft)


def github_drafts(text: str, name: str, labels: dict[str, str], defaults: dict[str, Any],
                  epics: frozenset[str] = frozenset()) -> Drafts:
    """Drafts from `gh issue list --json number,title,body,labels,url,milestone`; ImportFileError if not JSON."""
    issues = _json_list(text, name)
    mapping = {label.lower(): target for label, target in labels.items()}
    found = Drafts()
    for index, issue in enumerate(issues, 1):
        where = _issue_where(issue, index)
        found.add(where, lambda issue=issue, where=where: _issue_draft(issue, where, mapping, defaults, epics))
    return found


def _json_list(text: str, name: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"{name}:{exc.lineno}: not JSON ({exc.msg} at column {exc.colno}); expected the "
                              "output of `gh issue list --json number,title,body,labels,url,milestone`") from None
    if not isinstance(data, list):
        raise ImportFileError(f"{name}:1: expected a JSON array of issues, got {type(data).__name__}")
    return data


def _issue_where(issue: Any, index: int) -> str:
    number = issue.get("number") if isinstance(issue, dict) else None
    return f"issue #{number}" if isinstance(number, int) else f"entry {index}"


def _issue_draft(issue: Any, where: str, mapping: dict[str, str], defaults: dict[str, Any],
                 epics: frozenset[str]) -> Draft:
    """One issue as a draft; ValueError or BacklogError naming what is wrong with it."""
    if not isinstance(issue, dict):
        raise ValueError(f"not an issue object: {shown(issue)}")
    url = issue.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ValueError("no url: export with `--json number,title,body,labels,url,milestone`")
    names = _label_names(issue.get("labels"))
    explicit = {"title": issue.get("title"), "source": url.strip(), "labels": names or None,
                "type": _mapped(names, mapping, ItemType), "priority": _mapped(names, mapping, Priority),
                "epic": _epic(issue.get("milestone"), epics)}
    return _draft(where, merge_fields(defaults, explicit), issue.get("body"))


def _label_names(labels: Any) -> list[str]:
    """Label names from gh's label objects (plain strings are taken as names too)."""
    if labels is None:
        return []
    if not isinstance(labels, list):
        raise ValueError(f"labels: expected a list, got {shown(labels)}")
    names = [label.get("name") if isinstance(label, dict) else label for label in labels]
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"labels: every label needs a name, got {shown(labels)}")
    return [str(name) for name in names]


def _mapped(names: list[str], mapping: dict[str, str], kind: type[ItemType] | type[Priority]) -> str | None:
    """The target of the first label that maps to a value of `kind` (None: the default applies)."""
    values = {member.value for member in kind}
    return next((mapping[n.lower()] for n in names if mapping.get(n.lower()) in values), None)


def _epic(milestone: Any, epics: frozenset[str]) -> str | None:
    """A milestone whose title is an epic of the backlog becomes the item's epic."""
    title = milestone.get("title") if isinstance(milestone, dict) else None
    return title if title in epics else None


def _draft(where: str, data: dict[str, Any], body: Any) -> Draft:
    """A validated draft (checked as an item with a placeholder id)."""
    if body is not None and not isinstance(body, str):
        raise ValueError(f"body: expected text, got {shown(body)}")
    text = body or ""
    text = text if not text or text.endswith("\n") else text + "\n"
    build_item({**data, "id": "AS-0"}, text)
    return Draft(where, data, text)


def csv_drafts(text: str, name: str, defaults: dict[str, Any]) -> Drafts:
    """Drafts from a CSV with a header row naming some of CSV_COLUMNS (title required); row 1 is the header."""
    reader = csv.reader(io.StringIO(text, newline=""))
    found = Drafts()
    try:
        columns = _header(next(reader, None), name)
        for number, row in enumerate(reader, 2):
            if any(cell.strip() for cell in row):
                found.add(f"row {number}", lambda row=row, where=f"row {number}": _row_draft(where, row, columns, name,
                                                                                          defaults))
    except csv.Error as exc:
        raise ImportFileError(f"{name}:{reader.line_num}: not CSV: {exc}") from None
    return found


def _header(row: list[str] | None, name: str) -> list[str]:
    columns = [cell.strip().lower() for cell in row or []]
    if "title" not in columns:
        raise ImportFileError(f"{name}: row 1: no title column (the header row names the columns: "
                              f"{', '.join(CSV_COLUMNS)})")
    unknown = [column for column in columns if column not in CSV_COLUMNS]
    if unknown:
        raise ImportFileError(f"{name}: row 1: unknown column {shown(unknown[0])} (known: {', '.join(CSV_COLUMNS)})")
    return columns


def _row_draft(where: str, row: list[str], columns: list[str], name: str, defaults: dict[str, Any]) -> Draft:
    """One spreadsheet row as a draft; empty cells take the defaults."""
    if len(row) > len(columns):
        raise ValueError(f"{len(row)} fields but {len(columns)} columns")
    cells = {column: cell.strip() for column, cell in zip(columns, row, strict=False) if cell.strip()}
    budget = {key: cells.pop(key) for key in _BUDGET_COLUMNS if key in cells}
    cells.update({key: cells[key].lower() for key in ("type", "priority") if key in cells})
    body = cells.pop("body", None)
    cells.setdefault("source", f"csv:{name}#{cells.get('title', '')}")
    return _draft(where, merge_fields(defaults, {**cells, "budget": budget}), body)
